package relay

import (
	"slices"
	"sync"
)

// Hub is the registry of camera streams by camera id.
type Hub struct {
	mu      sync.RWMutex
	streams map[string]*Stream
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{streams: map[string]*Stream{}} }

// Get returns the stream of a camera, or nil.
func (h *Hub) Get(id string) *Stream {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.streams[id]
}

// Put registers (or replaces) a camera's stream.
func (h *Hub) Put(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[s.Camera] = s
}

// Remove unregisters a camera's stream and returns it (nil if absent).
func (h *Hub) Remove(id string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[id]
	delete(h.streams, id)
	return s
}

// IDs returns the camera ids, sorted.
func (h *Hub) IDs() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ids := make([]string, 0, len(h.streams))
	for id := range h.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
