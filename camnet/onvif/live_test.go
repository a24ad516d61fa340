package onvif

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"cordon/auth/audit"
	"cordon/democam"
	"cordon/internal/testtool"
	"cordon/ptz"
)

func startDome(t *testing.T, q democam.ONVIFQuirks) *democam.PTZCamera {
	t.Helper()
	cam := &democam.PTZCamera{ID: "dome", Listen: "127.0.0.6:0", Username: camUser, Password: camPass, ONVIF: q}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// waitIdle waits until the dome stops (the move timeout or Stop).
func waitIdle(t *testing.T, cam *democam.PTZCamera) (pan, tilt, zoom float64) {
	t.Helper()
	testtool.WaitFor(t, 5*time.Second, "the dome to stop", func() bool { // its mechanics have no event to wait on
		_, _, _, moving := cam.Position()
		return !moving
	})
	p, tl, z, _ := cam.Position()
	return p, tl, z
}

// The client against the democam dome, one quirk at a time.
func TestAgainstDemocamQuirks(t *testing.T) {
	for name, q := range map[string]democam.ONVIFQuirks{
		"clean":          {},
		"soap11":         {SOAP11: true},
		"httpdigest":     {HTTPDigestOnly: true},
		"clock2h":        {ClockOffset: 2 * time.Hour},
		"clockbehind":    {ClockOffset: -26 * time.Hour},
		"foreignxaddrs":  {ForeignXAddrs: true},
		"nocapabilities": {NoGetCapabilities: true},
		"continuousonly": {ContinuousOnly: true},
	} {
		t.Run(name, func(t *testing.T) {
			cam := startDome(t, q)
			c := newClient(t, cam.ONVIFURL())
			ctx := context.Background()
			caps, err := c.Capabilities(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if caps.Presets == q.ContinuousOnly || caps.Home == q.ContinuousOnly || !caps.PanTilt || !caps.Zoom {
				t.Fatalf("%+v", caps)
			}
			if err := c.ContinuousMove(ctx, ptz.Velocity{Pan: 1, Tilt: -1}, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			st, err := c.Status(ctx)
			if err != nil || st.Position == nil {
				t.Fatalf("%+v %v", st, err)
			}
			pan, tilt, _ := waitIdle(t, cam)
			if pan < 0.05 || tilt > -0.05 {
				t.Fatalf("dome at %.3f %.3f after the move", pan, tilt)
			}
			if err := c.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			err = c.GotoPreset(ctx, "2")
			if q.ContinuousOnly {
				if err == nil {
					t.Fatal("preset on a continuous-only dome")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p, err := c.Presets(ctx); err != nil || len(p) != 3 || p[1] != (ptz.Preset{Token: "2", Name: "Yard"}) {
				t.Fatalf("%+v %v", p, err)
			}
			if pan, tilt, _ := waitIdle(t, cam); pan != 0.6 || tilt != -0.3 {
				t.Fatalf("preset 2: %.3f %.3f", pan, tilt)
			}
			if err := c.GotoHome(ctx); err != nil {
				t.Fatal(err)
			}
			for _, call := range cam.Calls() {
				if strings.HasSuffix(call, "(refused)") && !q.HTTPDigestOnly {
					t.Errorf("a call was refused: %q", cam.Calls())
				}
			}
		})
	}
}

func TestWrongPasswordAgainstDemocam(t *testing.T) {
	for _, q := range []democam.ONVIFQuirks{{}, {HTTPDigestOnly: true}} {
		cam := startDome(t, q)
		c := &Client{CameraID: "dome", URL: cam.ONVIFURL(), Username: camUser, Password: "wrong-" + camPass}
		if err := c.Initialize(); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetDeviceInformation(context.Background())
		c.Close()
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%+v: %v", q, err)
		}
		noSecret(t, err)
	}
}

// The device-management calls the hardening work uses: read, set, read
// back, and a factory reset that undoes it (drift).
func TestDeviceManagementRoundTrip(t *testing.T) {
	cam := startDome(t, democam.ONVIFQuirks{})
	c := newClient(t, cam.ONVIFURL())
	ctx := context.Background()
	ntp, err := c.GetNTP(ctx)
	if err != nil || len(ntp.Manual) != 2 || ntp.Manual[0] != (NetworkHost{"DNS", "pool.ntp.org"}) {
		t.Fatalf("%+v %v", ntp, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetNTP(ctx, false, []NetworkHost{Host("10.20.0.1")}))
	must(c.SetDNS(ctx, false, nil, []string{"10.20.0.1"}))
	must(c.SetNetworkDefaultGateway(ctx, Gateway{}))
	protos, err := c.GetNetworkProtocols(ctx)
	must(err)
	for i := range protos {
		protos[i].Enabled = protos[i].Name == "RTSP"
	}
	must(c.SetNetworkProtocols(ctx, protos))
	if on, err := c.GetDiscoveryMode(ctx); err != nil || !on {
		t.Fatalf("discovery %v %v", on, err)
	}
	must(c.SetDiscoveryMode(ctx, false))
	if on, err := c.GetDiscoveryMode(ctx); err != nil || on {
		t.Fatalf("discovery after set %v %v", on, err)
	}
	ntp, _ = c.GetNTP(ctx)
	dns, _ := c.GetDNS(ctx)
	gw, _ := c.GetNetworkDefaultGateway(ctx)
	protos, _ = c.GetNetworkProtocols(ctx)
	if len(ntp.Manual) != 1 || ntp.Manual[0] != (NetworkHost{"IPv4", "10.20.0.1"}) || !slices.Equal(dns.Manual, []string{"10.20.0.1"}) ||
		len(gw.IPv4) != 0 || len(protos) != 3 || protos[0].Enabled || !protos[2].Enabled || protos[2].Ports[0] != 554 {
		t.Fatalf("read back: %+v %+v %+v %+v", ntp, dns, gw, protos)
	}
	if err := c.SetDNS(ctx, false, nil, []string{"dns.example"}); err == nil {
		t.Fatal("a DNS name as DNS server")
	}
	cam.FactoryReset()
	dns, _ = c.GetDNS(ctx)
	if on, _ := c.GetDiscoveryMode(ctx); !slices.Equal(dns.Manual, democam.FactorySettings().DNSServers) || !on {
		t.Fatalf("after reset: %+v", dns)
	}
	info, err := c.GetDeviceInformation(ctx)
	if err != nil || info.SerialNumber != "dome" {
		t.Fatalf("%+v %v", info, err)
	}
}

type auditLines struct{ events []audit.Event }

func (a *auditLines) Record(e audit.Event) error { a.events = append(a.events, e); return nil }

// The whole command path: ptz.Control over this client against the dome.
// Takeover stops the dome before the new holder's move; a camera that
// ignores ContinuousMove's Timeout is stopped by cordon at the timeout.
func TestControlAgainstDemocam(t *testing.T) {
	cam := startDome(t, democam.ONVIFQuirks{IgnoreTimeout: true})
	c := newClient(t, cam.ONVIFURL())
	sink := &auditLines{}
	ctl := &ptz.Control{CameraID: "dome", Camera: c, Auditor: sink}
	if err := ctl.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctx := context.Background()
	alice := ptz.Controller{Name: "alice", Priority: 100}
	chief := ptz.Controller{Name: "chief", Priority: 500}
	if err := ctl.Do(ctx, alice, ptz.Command{Move: &ptz.Velocity{Pan: 1}, TimeoutMS: 5000}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Do(ctx, ptz.Controller{Name: "bob", Priority: 100}, ptz.Command{Home: true}); ptz.StatusCode(err) != 409 {
		t.Fatalf("bob: %v", err)
	}
	if err := ctl.Do(ctx, chief, ptz.Command{Move: &ptz.Velocity{Tilt: 1}, TimeoutMS: 300}); err != nil {
		t.Fatal(err)
	}
	var ptzCalls []string
	for _, call := range cam.Calls() {
		if call == "ContinuousMove" || call == "Stop" {
			ptzCalls = append(ptzCalls, call)
		}
	}
	if strings.Join(ptzCalls, ",") != "ContinuousMove,Stop,ContinuousMove" {
		t.Fatalf("calls %q", cam.Calls())
	}
	// the dome ignores the 300 ms Timeout; cordon's own Stop ends the move
	// (without it the dome would never be idle, and tilt would reach 1)
	pan, tilt, _ := waitIdle(t, cam)
	if tilt <= 0 || tilt >= 1 || pan <= 0 {
		t.Fatalf("dome at %.3f %.3f", pan, tilt)
	}
	st := ctl.Status(ctx)
	if st.Holder != "chief" || st.Status == nil || st.Status.Moving || len(st.Presets) != 3 {
		t.Fatalf("%+v", st)
	}
	var names []string
	for _, e := range sink.events {
		names = append(names, e.Event+":"+e.Actor)
	}
	if strings.Join(names, ",") != "ptz_start:alice,ptz_end:alice,ptz_takeover:chief,ptz_start:chief" {
		t.Fatalf("%q", names)
	}
}

// A camera that loses its profile (reset, reconfigured) is discovered
// again on the next command.
func TestRediscoverAfterNoProfile(t *testing.T) {
	cam := startDome(t, democam.ONVIFQuirks{})
	c := newClient(t, cam.ONVIFURL())
	ctx := context.Background()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.disc.profile = "Profile_gone"
	c.mu.Unlock()
	if err := c.Stop(ctx); err == nil {
		t.Fatal("stale profile accepted")
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("not rediscovered: %v", err)
	}
}
