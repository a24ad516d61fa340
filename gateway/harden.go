package gateway

import (
	"fmt"
	"strings"

	"cordon/api"
	"cordon/auth/audit"
	"cordon/camnet/harden"
	"cordon/config"
)

// The drift watch (camnet/harden.Watcher) in serve: every camera's
// outbound settings are checked at start, every
// camera_network.harden_interval and after each camera connect (the unit's
// Connected hook); results are served at GET /api/v1/admin/hardening, an
// administrator applies the wanted settings with POST
// /api/v1/admin/hardening/{camera}/apply.

// initHardening starts the watcher (unless NoHardening).
func (g *Gateway) initHardening() error {
	if g.NoHardening {
		return nil
	}
	cfg := g.Config
	wanted, refused := g.hardenWanted(cfg)
	g.hardenRefused = refused
	if refused != nil {
		g.Logger.Error("camera hardening cannot run: "+refused.Error(), "component", "harden")
	}
	w := &harden.Watcher{
		Wanted:   wanted,
		Interval: cfg.CameraNetwork.HardenEvery(),
		MinGap:   g.HardenMinGap,
		Auditor:  hardenAudit{g},
		Metrics:  harden.NewMetrics(g.reg),
		Logger:   g.Logger.With("component", "harden"),
	}
	if g.clustered() { // a camera hears from its owner only
		w.Elsewhere = func(id string) bool { return !g.owner(id).Self }
	}
	w.SetTargets(g.hardenTargets(cfg))
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("camera hardening: %w", err)
	}
	g.hardenW.Store(w)
	return nil
}

// hardenWanted is the wanted state from camera_network, with the
// addresses the sinkhole and SNTP server are bound to. An address a camera
// cannot be pointed at (":53") is a refusal every camera reports.
func (g *Gateway) hardenWanted(cfg *config.Config) (harden.Wanted, error) {
	cn := cfg.CameraNetwork
	if g.sinkhole != nil {
		cn.DNSListen = g.sinkhole.Addr().String()
	}
	if g.ntp != nil {
		cn.NTPListen = g.ntp.Addr().String()
	}
	w, err := harden.WantedFrom(cn)
	if err != nil {
		return w, fmt.Errorf("hardening needs a camera-side address: %w", err)
	}
	return w, nil
}

// hardenTargets are the cameras of cfg as the watcher reaches them; a
// camera whose target cannot be built (unreadable password_file, bad
// admin_url) is reported with that error and never contacted.
func (g *Gateway) hardenTargets(cfg *config.Config) []harden.Target {
	ts, err := harden.TargetsFrom(cfg, "")
	if err != nil { // find the camera(s) at fault; the others stay checked
		ts = ts[:0]
		for _, c := range cfg.Cameras {
			one, err := harden.TargetsFrom(cfg, c.ID)
			if err != nil {
				ts = append(ts, harden.Target{Camera: c.ID, Vendor: c.Vendor, Refused: err})
				continue
			}
			ts = append(ts, one...)
		}
	}
	if g.hardenRefused != nil {
		for i := range ts {
			ts[i].Refused = g.hardenRefused
		}
	}
	return ts
}

// reloadHardening applies a reloaded config's cameras to the watcher.
func (g *Gateway) reloadHardening(cfg *config.Config) {
	if w := g.hardenW.Load(); w != nil {
		w.SetTargets(g.hardenTargets(cfg))
	}
}

// cameraConnected is the camera units' Connected hook: a check at each
// connect (coalesced by the watcher to one per camera and MinGap).
func (g *Gateway) cameraConnected(id string) {
	if w := g.hardenW.Load(); w != nil {
		w.CameraConnected(id)
	}
}

func (g *Gateway) closeHardening() {
	if w := g.hardenW.Load(); w != nil {
		w.Close()
	}
}

// Hardening is the drift watcher (nil when off).
func (g *Gateway) Hardening() *harden.Watcher { return g.hardenW.Load() }

// hardenAudit writes the watcher's events. An administrator's apply (it
// has an actor) and a camera's drift at its first check (once per camera)
// are written at once; what a camera can repeat by itself (settings
// changed back, "as wanted again") goes through the camera aggregator,
// one source per camera: a camera that flips its settings at every
// reconnect writes one line per kind and hour, then a count.
type hardenAudit struct{ g *Gateway }

func (h hardenAudit) Record(e audit.Event) error {
	if e.Actor != "" || (e.Event == audit.HardeningDrift && strings.HasPrefix(e.Detail, harden.DriftFirstCheck)) {
		return h.g.audit.Append(e)
	}
	h.g.camHostile.Record("harden:"+e.Camera, e.Event, e)
	return nil
}

// hardeningAPI is the watcher for the admin routes (nil when off).
func (g *Gateway) hardeningAPI() api.HardeningWatcher {
	if w := g.hardenW.Load(); w != nil {
		return w
	}
	return nil
}
