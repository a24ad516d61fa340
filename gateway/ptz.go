package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/camera"
	"cordon/camnet/onvif"
	"cordon/config"
	"cordon/ptz"
)

// PTZ wiring (issue 14): every camera unit with cameras[].onvif carries a
// cameraPTZ under PTZAttachment, holding the camera's one ptz.Control (an
// ONVIF client to the camera behind the lock), which the HTTP API and the
// ONVIF device face both steer through (g.PTZ, or the attachment's own Do
// and Status). A Guard ends the control of a principal whose session ended
// (logout) or whose rights changed.

// PTZAttachment is the name a camera unit's PTZ control hangs under.
const PTZAttachment = "ptz"

// cameraPTZ follows the camera's config: a change of onvif URL or
// credentials replaces the Control (the old one ends control and stops
// the camera). It implements Do and Status over the current Control.
type cameraPTZ struct {
	g *Gateway

	mu      sync.Mutex
	cfg     config.Camera
	client  *onvif.Client
	ctl     *ptz.Control
	holders map[string]*auth.Principal // name -> the principal of its last granted command
	closed  bool
}

// attachPTZ follows the config after each Registry.Apply: a camera with
// onvif and no PTZ attachment gets one, one without onvif loses it (a
// changed onvif URL or credentials reach the attachment through Reload).
func (g *Gateway) attachPTZ() {
	for _, u := range g.cameras.Units() {
		has := u.Attachment(PTZAttachment) != nil
		switch c := u.Current(); {
		case c.ONVIF != "" && !has:
			a := &cameraPTZ{g: g, holders: map[string]*auth.Principal{}}
			a.Reload(c)
			u.Attach(PTZAttachment, a)
		case c.ONVIF == "" && has:
			u.Detach(PTZAttachment) // ends control, stops the camera
		}
	}
}

// PTZ returns the PTZ control of a camera, nil when the camera does not
// exist or has no onvif. The ONVIF device face uses it too: one lock per
// camera whatever the door.
//
// In a cluster only the camera's owner has it (nil elsewhere): no other
// node talks to the camera (clusterptz.go carries API requests there).
func (g *Gateway) PTZ(cameraID string) *ptz.Control {
	if !g.ptzHere(cameraID) {
		return nil
	}
	a := g.cameraPTZ(cameraID)
	if a == nil {
		return nil
	}
	return a.control()
}

// PTZGranted tells the gateway that p's command on a camera was granted
// control: p's logout or loss of the ptz right then ends that control.
// Every door that steers a camera calls it (HTTP API, ONVIF face).
func (g *Gateway) PTZGranted(cameraID string, p *auth.Principal) {
	if a := g.cameraPTZ(cameraID); a != nil && p != nil {
		a.granted(p)
	}
}

func (g *Gateway) cameraPTZ(cameraID string) *cameraPTZ {
	if g.cameras == nil {
		return nil
	}
	u := g.cameras.Get(cameraID)
	if u == nil {
		return nil
	}
	a, _ := u.Attachment(PTZAttachment).(*cameraPTZ)
	return a
}

func (a *cameraPTZ) control() *ptz.Control {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctl
}

// Control returns the camera's PTZ control now (nil while the ONVIF client
// cannot be built).
func (a *cameraPTZ) Control() *ptz.Control { return a.control() }

// Do runs a command on the current control (ptz.ErrClosed without one).
func (a *cameraPTZ) Do(ctx context.Context, ctl ptz.Controller, cmd ptz.Command) error {
	c := a.control()
	if c == nil {
		return ptz.ErrClosed
	}
	return c.Do(ctx, ctl, cmd)
}

// Status is the current control's status (empty without one).
func (a *cameraPTZ) Status(ctx context.Context) ptz.Status {
	c := a.control()
	if c == nil {
		return ptz.Status{Presets: []ptz.Preset{}, LastError: "the camera's ONVIF client could not be set up"}
	}
	return c.Status(ctx)
}

// Reload implements camera.Attachment.
func (a *cameraPTZ) Reload(c config.Camera) {
	a.mu.Lock()
	if a.closed || (a.ctl != nil && sameONVIF(a.cfg, c)) || (a.ctl == nil && c.ONVIF == "") {
		a.cfg = c
		a.mu.Unlock()
		return
	}
	oldCtl, oldClient := a.ctl, a.client
	a.cfg, a.ctl, a.client = c, nil, nil
	a.holders = map[string]*auth.Principal{}
	a.mu.Unlock()
	if oldCtl != nil {
		oldCtl.Close() // ends control, stops the camera
		oldClient.Close()
	}
	if c.ONVIF == "" {
		return
	}
	client, ctl, err := a.g.newPTZ(c)
	if err != nil {
		a.g.Logger.Error("camera PTZ not available", "camera", c.ID, "err", a.g.Redactor.Redact(err.Error()))
		return
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		ctl.Close()
		client.Close()
		return
	}
	a.ctl, a.client = ctl, client
	a.mu.Unlock()
}

// Close implements camera.Attachment.
func (a *cameraPTZ) Close() {
	a.mu.Lock()
	a.closed = true
	ctl, client := a.ctl, a.client
	a.ctl, a.client = nil, nil
	a.mu.Unlock()
	if ctl != nil {
		ctl.Close()
		client.Close()
	}
}

// granted remembers the principal whose command was granted, for the
// Guard (logout and rights changes end its control).
func (a *cameraPTZ) granted(p *auth.Principal) {
	a.mu.Lock()
	a.holders[p.Name] = p
	a.mu.Unlock()
}

// holder returns who holds control now, as a principal: the one whose
// command a door reported (PTZGranted), else the configured principal of
// that name (a door that has no token, e.g. ONVIF).
func (a *cameraPTZ) holder() (*ptz.Control, *auth.Principal) {
	a.mu.Lock()
	ctl := a.ctl
	a.mu.Unlock()
	if ctl == nil {
		return nil, nil
	}
	h, _ := ctl.Holder()
	if h.Name == "" {
		return ctl, nil
	}
	a.mu.Lock()
	for name := range a.holders { // forget the others: bounded by who held control
		if name != h.Name {
			delete(a.holders, name)
		}
	}
	p := a.holders[h.Name]
	a.mu.Unlock()
	if p == nil {
		var ok bool
		if p, ok = a.g.auth.Lookup(h.Name, auth.KindUser); !ok {
			p, _ = a.g.auth.Lookup(h.Name, auth.KindAPIKey)
		}
	}
	return ctl, p
}

// sameONVIF reports whether two configs reach the camera's ONVIF the same
// way (URL and credentials).
func sameONVIF(a, b config.Camera) bool {
	sa, errA := a.Secret()
	sb, errB := b.Secret()
	return a.ONVIF == b.ONVIF && a.Username == b.Username && sa == sb && (errA == nil) == (errB == nil) && a.URL == b.URL
}

// newPTZ builds a camera's ONVIF client and PTZ control.
func (g *Gateway) newPTZ(c config.Camera) (*onvif.Client, *ptz.Control, error) {
	user, pass, err := onvifCredentials(c)
	if err != nil {
		return nil, nil, err
	}
	client := &onvif.Client{CameraID: c.ID, URL: c.ONVIF, Username: user, Password: pass,
		Logger: g.Logger.With("component", "onvif")}
	if err := client.Initialize(); err != nil {
		return nil, nil, err
	}
	ctl := &ptz.Control{CameraID: c.ID, Camera: client, Auditor: ptzAuditor{g.audit}, Logger: g.Logger, Metrics: g.ptzM}
	if err := ctl.Initialize(); err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, ctl, nil
}

// onvifCredentials are the camera's: username + password (or file), or
// the userinfo of its url.
func onvifCredentials(c config.Camera) (string, string, error) {
	u, err := c.PullURL()
	if err != nil {
		return "", "", err
	}
	if u.User == nil {
		return "", "", nil
	}
	pass, _ := u.User.Password()
	return u.User.Username(), pass, nil
}

// ptzAuditor records PTZ lines in the audit log; an error refuses the
// control (ptz.ErrAudit, 503).
type ptzAuditor struct{ log *audit.Log }

func (a ptzAuditor) Record(e audit.Event) error { return a.log.Append(e) }

// initPTZ attaches the PTZ controls and starts their Guard.
func (g *Gateway) initPTZ() error {
	g.ptzM = ptz.NewMetrics(g.reg)
	g.attachPTZ()
	return g.initPTZGuard()
}

// initPTZGuard ends PTZ control held by a principal that logged out, was
// removed or lost the ptz right (within the Guard's sweep, 2 s at most).
func (g *Gateway) initPTZGuard() error {
	g.ptzGuard = &auth.Guard{
		Service: g.auth,
		Logger:  g.Logger.With("component", "ptz"),
		List: func() []auth.Live {
			var out []auth.Live
			for _, u := range g.cameras.Units() {
				a, _ := u.Attachment(PTZAttachment).(*cameraPTZ)
				if a == nil {
					continue
				}
				if _, p := a.holder(); p != nil {
					out = append(out, auth.Live{ID: "ptz/" + u.ID(), Principal: p, Right: auth.RightPTZ, Camera: u.ID()})
				}
			}
			return out
		},
		End: func(l auth.Live, err error) {
			ctl := g.PTZ(l.Camera)
			if ctl == nil {
				return
			}
			ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
			defer cancel()
			if ended, _ := ctl.EndPrincipal(ctx, l.Principal.Name, auth.EndReason(err)); ended {
				g.Logger.Info("PTZ control ended", "camera", l.Camera, "actor", l.Principal.Name, "reason", auth.EndReason(err))
			}
		},
	}
	if err := g.ptzGuard.Initialize(); err != nil {
		return fmt.Errorf("ptz guard: %w", err)
	}
	return nil
}

var _ camera.Attachment = (*cameraPTZ)(nil)
