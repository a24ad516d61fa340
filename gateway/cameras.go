package gateway

import (
	"cordon/auth/audit"
	"cordon/camera"
	"cordon/config"
	"cordon/relay"
	"cordon/relay/sanitize"
)

func sanitizeOptions(cfg *config.Config) sanitize.Options {
	return sanitize.Options{AllowSEIUUIDs: cfg.Sanitize.SEIUUIDs()}
}

// initCameras builds the camera registry: one unit per camera, each
// registering its streams in the hub the outputs read.
func (g *Gateway) initCameras() error {
	g.hub = relay.NewHub()
	g.cameras = &camera.Registry{
		Logger: g.Logger,
		New: func(c config.Camera) *camera.Unit {
			u := &camera.Unit{
				Hub:           g.hub,
				Events:        cameraEvents{g},
				Connected:     g.cameraConnected,
				Logger:        g.Logger.With("component", "camera"),
				Redactor:      g.Redactor,
				Metrics:       g.cameraM,
				RelayMetrics:  g.relayM,
				IngestMetrics: g.ingestM,
				Linger:        g.CameraLinger,
				Hostile:       cameraHostile{g},
			}
			if g.clustered() { // pull what this node owns, relay the rest (clustersource.go)
				u.NewSource, u.Remote = g.newClusterSource, !g.owner(c.ID).Self
			}
			return u
		},
	}
	return g.cameras.Apply(g.Config.Cameras, sanitizeOptions(g.Config))
}

// cameraEvents audits camera online/offline transitions.
type cameraEvents struct{ g *Gateway }

func (e cameraEvents) CameraOnline(id string) {
	if !e.g.cameraLocal(id) { // a relay of another node's pull: the owner audits the camera
		return
	}
	e.g.auditCameraOnline(audit.Event{Event: audit.CameraOnline, Camera: id})
}

func (e cameraEvents) CameraOffline(id string, err error) {
	if !e.g.cameraLocal(id) {
		return
	}
	detail := ""
	if err != nil {
		detail = e.g.Redactor.Redact(err.Error())
	}
	e.g.auditCameraOffline(audit.Event{Event: audit.CameraOffline, Camera: id, Detail: detail}, err)
}

// cameraLocal reports whether this node pulls the camera itself (always on
// a single node).
func (g *Gateway) cameraLocal(id string) bool {
	if u := g.cameras.Get(id); u != nil {
		return u.Local()
	}
	return true
}
