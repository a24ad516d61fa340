package ptz

import (
	"context"
	"time"
)

// Status is the answer of `GET /api/v1/cameras/{id}/ptz`.
type Status struct {
	Capabilities *Capabilities `json:"capabilities"`
	Presets      []Preset      `json:"presets"`
	// Status is the camera's position and motion (nil when unknown).
	Status *CameraStatus `json:"status"`
	// Holder is who has control ("" = nobody), HolderPriority their
	// priority, Until when control lapses without another command.
	Holder         string     `json:"holder"`
	HolderPriority int        `json:"holder_priority,omitempty"`
	Until          *time.Time `json:"until,omitempty"`
	// LastError is the camera's last PTZ error ("" = none since start) and
	// LastErrorAt when it happened.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Status reports capabilities, presets, the camera's position and motion,
// and the lock. Camera answers are cached briefly (capabilities for good,
// a failure to get them 10 s, presets 30 s, position 250 ms) so that many
// viewers polling do not flood the camera (or wait on a dead one); camera errors become LastError, never a failure of
// Status.
func (c *Control) Status(ctx context.Context) Status {
	ctx, cancel := context.WithTimeout(ctx, c.CommandTimeout)
	defer cancel()
	var st Status
	st.Capabilities = c.capabilities(ctx)
	if st.Capabilities != nil && st.Capabilities.Presets {
		st.Presets, _ = c.presetList(ctx)
	}
	if st.Presets == nil {
		st.Presets = []Preset{}
	}
	// without capabilities the camera did not answer just now (or within
	// capsFailureTTL): do not wait on it again for its position
	if st.Capabilities != nil && st.Capabilities.Status {
		st.Status = c.cameraStatus(ctx)
	}
	holder, until := c.Holder()
	if holder.Name != "" {
		st.Holder, st.HolderPriority, st.Until = holder.Name, holder.Priority, &until
	}
	c.mu.Lock()
	if c.lastErr != "" {
		at := c.lastErrAt
		st.LastError, st.LastErrorAt = c.lastErr, &at
	}
	c.mu.Unlock()
	return st
}

// capabilities asks the camera once and keeps the answer; a failure is
// kept for capsFailureTTL, so that status polls of a dead camera do not
// each wait for it (up to CommandTimeout).
func (c *Control) capabilities(ctx context.Context) *Capabilities {
	c.mu.Lock()
	caps, failedAt := c.caps, c.capsErrAt
	c.mu.Unlock()
	if caps != nil {
		return caps
	}
	if !failedAt.IsZero() && c.Clock.Now().Sub(failedAt) < capsFailureTTL {
		return nil
	}
	got, err := c.Camera.Capabilities(ctx)
	if err != nil {
		c.noteError("capabilities", err)
		c.mu.Lock()
		c.capsErrAt = c.Clock.Now()
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	c.caps = &got
	c.mu.Unlock()
	return &got
}

func (c *Control) presetList(ctx context.Context) ([]Preset, error) {
	c.mu.Lock()
	if c.presets != nil && c.Clock.Now().Sub(c.presetsAt) < presetCacheTTL {
		p := c.presets
		c.mu.Unlock()
		return p, nil
	}
	c.mu.Unlock()
	p, err := c.Camera.Presets(ctx)
	if err != nil {
		c.noteError("GetPresets", err)
		return nil, err
	}
	if p == nil {
		p = []Preset{}
	}
	c.mu.Lock()
	c.presets, c.presetsAt = p, c.Clock.Now()
	c.mu.Unlock()
	return p, nil
}

func (c *Control) cameraStatus(ctx context.Context) *CameraStatus {
	c.mu.Lock()
	if c.status != nil && c.Clock.Now().Sub(c.statusAt) < statusCacheTTL {
		s := *c.status
		c.mu.Unlock()
		return &s
	}
	c.mu.Unlock()
	s, err := c.Camera.Status(ctx)
	if err != nil {
		c.noteError("GetStatus", err)
		return nil
	}
	c.mu.Lock()
	c.status, c.statusAt = &s, c.Clock.Now()
	c.mu.Unlock()
	return &s
}

// checkPreset refuses a preset token the camera does not list (when the
// list can be had), so junk never reaches the camera.
func (c *Control) checkPreset(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, c.CommandTimeout)
	defer cancel()
	list, err := c.presetList(ctx)
	if err != nil {
		return &CameraError{Op: "GetPresets", Err: err}
	}
	for _, p := range list {
		if p.Token == token {
			return nil
		}
	}
	return invalid("unknown preset %q", token)
}
