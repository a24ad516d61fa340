package gateway

import (
	"errors"
	"reflect"

	"cordon/auth/audit"
	"cordon/config"
	"cordon/ingest"
	"cordon/relay"
	"cordon/relay/sanitize"
)

// cameraUnit is one configured camera: its relay stream (which viewers
// attach to and which survives puller restarts) and its puller.
type cameraUnit struct {
	cfg    config.Camera
	stream *relay.Stream
	puller *ingest.Camera
}

func (u *cameraUnit) close() {
	u.puller.Close()
	u.stream.Close()
}

func (g *Gateway) sanitizeOptions() sanitize.Options {
	return sanitize.Options{AllowSEIUUIDs: g.cfg.Sanitize.SEIUUIDs()}
}

// addCamera creates and starts a camera's stream and puller.
func (g *Gateway) addCamera(c config.Camera) error {
	st := &relay.Stream{
		Camera:   c.ID,
		Sanitize: g.sanitizeOptions(),
		Metrics:  g.relayM,
		Log:      g.Logger.With("component", "relay"),
	}
	if err := st.Initialize(); err != nil {
		return err
	}
	p, err := g.newPuller(c, st)
	if err != nil {
		st.Close()
		return err
	}
	if err := p.Initialize(); err != nil {
		st.Close()
		return err
	}
	st.SetDemand(p)
	g.camMu.Lock()
	g.cameras[c.ID] = &cameraUnit{cfg: c, stream: st, puller: p}
	g.camMu.Unlock()
	g.hub.Put(st)
	return nil
}

func (g *Gateway) newPuller(c config.Camera, st *relay.Stream) (*ingest.Camera, error) {
	u, err := c.PullURL()
	if err != nil {
		return nil, err
	}
	return &ingest.Camera{
		ID:        c.ID,
		URL:       u,
		Transport: c.Transport,
		OnDemand:  c.OnDemand,
		Sink:      st,
		Logger:    g.Logger.With("component", "ingest"),
		Metrics:   g.ingestM,
		Events:    cameraEvents{g},
		Hostile:   cameraHostile{g},
		Limits:    ingest.Limits{MaxBitrate: c.MaxBitrate()},
	}, nil
}

// applyCameras reconciles the running cameras with a new config: removed
// cameras stop (their viewers end), added ones start, changed ones restart
// their puller only, so viewers stay attached and resume.
func (g *Gateway) applyCameras(cfg *config.Config) error {
	want := map[string]config.Camera{}
	for _, c := range cfg.Cameras {
		want[c.ID] = c
	}
	g.camMu.Lock()
	var removed []*cameraUnit
	var changed []*cameraUnit
	for id, u := range g.cameras {
		c, ok := want[id]
		switch {
		case !ok:
			removed = append(removed, u)
			delete(g.cameras, id)
		case !reflect.DeepEqual(c, u.cfg):
			changed = append(changed, u)
		}
	}
	var added []config.Camera
	for id, c := range want {
		if _, ok := g.cameras[id]; !ok {
			added = append(added, c)
		}
	}
	g.camMu.Unlock()

	opts := g.sanitizeOptions()
	g.camMu.RLock()
	for _, u := range g.cameras {
		u.stream.SetSanitize(opts)
	}
	g.camMu.RUnlock()
	for _, u := range removed {
		g.hub.Remove(u.cfg.ID)
		u.close()
		g.Logger.Info("camera removed", "camera", u.cfg.ID)
	}
	var errs []error
	for _, u := range changed {
		c := want[u.cfg.ID]
		u.puller.Close()
		p, err := g.newPuller(c, u.stream)
		if err == nil {
			err = p.Initialize()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		u.stream.SetDemand(p)
		g.camMu.Lock()
		u.cfg, u.puller = c, p
		g.camMu.Unlock()
		g.Logger.Info("camera reconfigured", "camera", c.ID)
	}
	for _, c := range added {
		if err := g.addCamera(c); err != nil {
			errs = append(errs, err)
			continue
		}
		g.Logger.Info("camera added", "camera", c.ID)
	}
	return errors.Join(errs...)
}

// cameraEvents audits camera online/offline transitions.
type cameraEvents struct{ g *Gateway }

func (e cameraEvents) CameraOnline(id string) {
	e.g.auditCameraOnline(audit.Event{Event: audit.CameraOnline, Camera: id})
}

func (e cameraEvents) CameraOffline(id string, err error) {
	detail := ""
	if err != nil {
		detail = e.g.Redactor.Redact(err.Error())
	}
	e.g.auditCameraOffline(audit.Event{Event: audit.CameraOffline, Camera: id, Detail: detail}, err)
}
