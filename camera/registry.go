package camera

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"cordon/config"
	"cordon/relay/sanitize"
)

// Registry holds the units of a config, in config order. Apply
// reconciles it with a (re)loaded config.
type Registry struct {
	// New returns a configured, not yet initialized unit for a camera
	// (shared fields: hub, metrics, events, logger...).
	New    func(config.Camera) *Unit
	Logger *slog.Logger

	mu     sync.RWMutex
	units  map[string]*Unit
	order  []string
	closed bool
}

// Apply reconciles the running units with cams: removed cameras close
// (their readers end), added ones start, the others Reload (a changed pull
// restarts its source; readers stay) and get opts.
func (r *Registry) Apply(cams []config.Camera, opts sanitize.Options) error {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	want := map[string]bool{}
	order := make([]string, 0, len(cams))
	for _, c := range cams {
		want[c.ID] = true
		order = append(order, c.ID)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrStopped
	}
	if r.units == nil {
		r.units = map[string]*Unit{}
	}
	var removed []*Unit
	for id, u := range r.units {
		if !want[id] {
			removed = append(removed, u)
			delete(r.units, id)
		}
	}
	existing := map[string]*Unit{}
	for id, u := range r.units {
		existing[id] = u
	}
	r.mu.Unlock()

	for _, u := range removed {
		u.Close()
		log.Info("camera removed", "camera", u.ID())
	}
	var errs []error
	for _, c := range cams {
		if u := existing[c.ID]; u != nil {
			u.SetSanitize(opts)
			if err := u.Reload(c); err != nil {
				errs = append(errs, fmt.Errorf("cameras[%s]: %w", c.ID, err))
			}
			continue
		}
		u := r.New(c)
		u.Config, u.Sanitize = c, opts
		if err := u.Initialize(); err != nil {
			errs = append(errs, fmt.Errorf("cameras[%s]: %w", c.ID, err))
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			u.Close()
			return ErrStopped
		}
		r.units[c.ID] = u
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.order = order
	r.mu.Unlock()
	return errors.Join(errs...)
}

// Get returns the unit of a camera, or nil.
func (r *Registry) Get(id string) *Unit {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.units[id]
}

// Units returns the running units in config order.
func (r *Registry) Units() []*Unit {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Unit, 0, len(r.order))
	for _, id := range r.order {
		if u := r.units[id]; u != nil {
			out = append(out, u)
		}
	}
	return out
}

// Close closes every unit.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	units := r.units
	r.units = nil
	r.mu.Unlock()
	for _, u := range units {
		u.Close()
	}
}
