package gateway

import (
	"context"
	"testing"

	"cordon/auth"
	"cordon/config"
	"cordon/democam"
	"cordon/ptz"
	"cordon/relay/onvifserve"
)

// The face steers a camera through its cameraPTZ attachment (the control
// the HTTP PTZ API uses), and PTZGranted hands the Guard the principal the
// face signed in, only while that principal holds control.
func TestONVIFAccessPTZIsTheCamerasControl(t *testing.T) {
	dome := &democam.PTZCamera{ID: "dome", Listen: "127.0.0.1:0", Path: "ptz", Username: "cam", Password: "cam-dome-secret"}
	if err := dome.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dome.Close)
	g := onvifGateway(t, func(cfg *config.Config) {
		cfg.Cameras = []config.Camera{{ID: "dome", URL: dome.URL(), ONVIF: dome.ONVIFURL(), Username: "cam", Password: "cam-dome-secret",
			Transport: "tcp", OnDemand: true}}
		cfg.Auth.Roles = []config.Role{{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view", "ptz"}, PTZPriority: 100}}
		cfg.Auth.Users[0].Roles = []string{"operator"}
	})
	a := onvifAccess{g}
	if a.PTZ("nope") != nil {
		t.Fatal("a camera that does not exist has a PTZ control")
	}
	att, err := a.BeginAttempt("alice", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := att.Succeeded()
	if err != nil {
		t.Fatal(err)
	}
	prio, err := a.AuthorizePTZ(context.Background(), p, "dome", "127.0.0.1")
	if err != nil || prio != 100 {
		t.Fatalf("alice's priority %d %v", prio, err)
	}
	ctl := a.PTZ("dome")
	if c, ok := ctl.(*cameraPTZ); !ok || c.Control() != g.PTZ("dome") || c.Control() == nil {
		t.Fatalf("the face's control %T is not the camera's attachment", ctl)
	}
	cp := g.cameraPTZ("dome")
	reported := func() *auth.Principal {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return cp.holders["alice"]
	}
	// nobody holds control: nothing to remember
	a.PTZGranted("dome", p)
	if _, h := cp.holder(); h != nil || reported() != nil {
		t.Fatalf("holder %v before any command", h)
	}
	if err := ctl.Do(context.Background(), ptz.Controller{Name: p.Name, Priority: prio, Remote: "127.0.0.1", Protocol: "onvif"},
		ptz.Command{Stop: true}); err != nil {
		t.Fatal(err)
	}
	if reported() != nil {
		t.Fatal("a holder reported before the face said so")
	}
	a.PTZGranted("dome", p)
	if _, h := cp.holder(); h != p.Ref.(*auth.Principal) || reported() != h {
		t.Fatalf("the Guard's holder %v is not the principal the face reported", h)
	}
	// a reference that is not the gateway's principal changes nothing
	a.PTZGranted("dome", onvifserve.Principal{Name: "alice"})
	if _, h := cp.holder(); h != p.Ref.(*auth.Principal) {
		t.Fatalf("holder replaced by %v", h)
	}
}
