package relay

import "sync"

// Hub is the registry of camera streams the outputs look up: the main
// stream by camera id, a named stream (e.g. "sub") by "id/name".
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

// Lookup returns a camera's named stream ("" = main), or nil.
func (h *Hub) Lookup(camera, name string) *Stream { return h.Get(hubKey(camera, name)) }

// Put registers (or replaces) a camera's stream under its camera id and
// name.
func (h *Hub) Put(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[hubKey(s.Camera, s.Name)] = s
}

// RemoveStream unregisters s if it is still the registered stream for its
// camera and name.
func (h *Hub) RemoveStream(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := hubKey(s.Camera, s.Name)
	if h.streams[k] == s {
		delete(h.streams, k)
	}
}

func hubKey(camera, name string) string {
	if name == "" {
		return camera
	}
	return camera + "/" + name
}

// Remove unregisters a camera's stream and returns it (nil if absent).
func (h *Hub) Remove(id string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[id]
	delete(h.streams, id)
	return s
}
