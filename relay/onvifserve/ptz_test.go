package onvifserve

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"cordon/internal/soap"
	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
	"cordon/ptz"
)

// waitDome waits until the dome is idle (its move timeout or Stop).
func waitDome(t *testing.T) (pan, tilt, zoom float64) {
	t.Helper()
	testtool.WaitFor(t, 8*time.Second, "the dome to stop", func() bool { // its mechanics have no event to wait on
		_, _, _, moving := fx.dome.Position()
		return !moving
	})
	p, tl, z, _ := fx.dome.Position()
	return p, tl, z
}

// PTZ through the face moves the democam dome: the npm client's
// ContinuousMove pans it, Stop stops it, GotoPreset and GotoHomePosition
// put it where the camera's presets say, GetStatus reports it.
func TestNodeClientSteersTheDome(t *testing.T) {
	fx.access.setPTZ("dome", fx.newControl())
	fx.dome.FactoryReset() // home, idle
	res := onvifnode.Run(t, nodeClient, fx.face.Addr().String(), map[string]any{"username": "alice", "password": aliceONVIF},
		onvifnode.Step{"op": "connect"},
		onvifnode.Step{"op": "continuousMove", "profileToken": "dome", "x": 1, "y": 0.5, "zoom": 0, "timeout": 400},
		onvifnode.Step{"op": "wait", "ms": 150},
		onvifnode.Step{"op": "status", "profileToken": "dome"},
		onvifnode.Step{"op": "stop", "profileToken": "dome"},
		onvifnode.Step{"op": "presets", "profileToken": "dome"},
		onvifnode.Step{"op": "nodes"})
	for _, r := range res {
		if !r.OK {
			t.Fatalf("%s: %s", r.Op, r.Error)
		}
	}
	pan, tilt, _ := waitDome(t)
	if pan < 0.02 || tilt < 0.01 {
		t.Fatalf("dome at pan %.3f tilt %.3f after ContinuousMove through the face", pan, tilt)
	}
	st := onvifnode.Value[map[string]any](t, res[3])
	if _, ok := st["position"]; !ok {
		t.Fatalf("GetStatus %v", st)
	}
	presets := string(res[5].Value)
	if !strings.Contains(presets, "Yard") || !strings.Contains(presets, "Gate") {
		t.Fatalf("GetPresets %s", presets)
	}
	nodes := string(res[6].Value)
	if !strings.Contains(nodes, "VelocityGenericSpace") || !strings.Contains(nodes, `"homeSupported":true`) {
		t.Fatalf("GetNodes %s", nodes)
	}
	res = onvifnode.Run(t, nodeClient, fx.face.Addr().String(), map[string]any{"username": "alice", "password": aliceONVIF},
		onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "gotoPreset", "profileToken": "dome", "preset": "2"})
	onvifnode.Value[any](t, res[1])
	pan, tilt, zoom := waitDome(t)
	if math.Abs(pan-0.6) > 0.01 || math.Abs(tilt+0.3) > 0.01 || zoom > 0.01 {
		t.Fatalf("dome at %.3f %.3f %.3f after GotoPreset 2", pan, tilt, zoom)
	}
	res = onvifnode.Run(t, nodeClient, fx.face.Addr().String(), map[string]any{"username": "alice", "password": aliceONVIF},
		onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "gotoHome", "profileToken": "dome"})
	onvifnode.Value[any](t, res[1])
	if pan, tilt, zoom := waitDome(t); math.Abs(pan)+math.Abs(tilt)+zoom > 0.01 {
		t.Fatalf("dome at %.3f %.3f %.3f after GotoHomePosition", pan, tilt, zoom)
	}
}

func move(t *testing.T, user, secret string) reply {
	t.Helper()
	return post(t, fx.url(PTZPath), wsse(t, user, secret, time.Now()),
		`<tptz:ContinuousMove><tptz:ProfileToken>dome</tptz:ProfileToken><tptz:Velocity>`+
			`<tt:PanTilt x="0.2" y="0" space="http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"/>`+
			`</tptz:Velocity><tptz:Timeout>PT0.2S</tptz:Timeout></tptz:ContinuousMove>`)
}

// The lock through the face: while alice (priority 100) holds control,
// erin (50) gets a fault naming the holder; dave (200) takes over; a
// principal without the ptz right is refused before the lock; an unknown
// profile and a foreign velocity space are argument faults.
func TestPTZLockAndRightsThroughTheFace(t *testing.T) {
	fx.access.setPTZ("dome", fx.newControl())
	move(t, "alice", aliceONVIF).mustOK(t)
	r := move(t, "erin", erinONVIF)
	if r.fault == nil || r.fault.Code != soap.CodeReceiver || !r.fault.Has(soap.NsError, "Action") ||
		!r.fault.Has(nsCordon, "PTZControlHeld") || !strings.Contains(r.fault.Reason, "held by alice") ||
		!strings.Contains(r.fault.Detail, "holder=alice") {
		t.Fatalf("conflict answered %d %+v", r.status, r.fault)
	}
	fx.access.mu.Lock()
	fx.access.granted = nil
	fx.access.mu.Unlock()
	move(t, "dave", daveONVIF).mustOK(t)
	if h, _ := fx.access.PTZ("dome").(*ptz.Control).Holder(); h.Name != "dave" || h.Protocol != "onvif" || h.Remote != "127.0.0.1" {
		t.Fatalf("holder after takeover %+v", h)
	}
	fx.access.mu.Lock()
	granted := slices.Clone(fx.access.granted)
	fx.access.mu.Unlock()
	if !slices.Equal(granted, []string{"dave/dome"}) {
		t.Fatalf("the owner was told %v after dave's command, want [dave/dome]", granted)
	}
	// bob views no PTZ camera: the dome's profile is not his
	r = move(t, "bob", bobONVIF)
	if r.fault == nil || !r.fault.Has(soap.NsError, "NoProfile") {
		t.Fatalf("bob: %+v", r.fault)
	}
	// a view-only principal on a PTZ camera: the owner's authorizer is
	// asked (and refuses: NotAuthorized), nothing reaches the lock
	fx.access.mu.Lock()
	fx.access.users["frank"].view = append(fx.access.users["frank"].view, "dome")
	fx.access.users["frank"].onvif = "frank-onvif-secret-0A0"
	fx.access.mu.Unlock()
	t.Cleanup(func() {
		fx.access.mu.Lock()
		fx.access.users["frank"].view = []string{"gate"}
		fx.access.users["frank"].onvif = ""
		fx.access.mu.Unlock()
	})
	r = move(t, "frank", "frank-onvif-secret-0A0")
	if r.fault == nil || !r.fault.Has(soap.NsError, "NotAuthorized") {
		t.Fatalf("frank: %+v", r.fault)
	}
	fx.access.mu.Lock()
	denied := slices.Clone(fx.access.denied)
	fx.access.mu.Unlock()
	if !slices.Contains(denied, "frank/dome") {
		t.Fatalf("frank's move was not put to the authorizer: denied %v", denied)
	}
	if h, _ := fx.access.PTZ("dome").(*ptz.Control).Holder(); h.Name != "dave" {
		t.Fatalf("holder after frank's refused move %+v", h)
	}
	r = post(t, fx.url(PTZPath), wsse(t, "dave", daveONVIF, time.Now()),
		`<tptz:ContinuousMove><tptz:ProfileToken>dome</tptz:ProfileToken><tptz:Velocity>`+
			`<tt:PanTilt x="0.2" y="0" space="http://example/OtherSpace"/></tptz:Velocity></tptz:ContinuousMove>`)
	if r.fault == nil || !r.fault.Has(soap.NsError, "InvalidVelocity") || r.status != 400 {
		t.Fatalf("foreign space: %d %+v", r.status, r.fault)
	}
	r = post(t, fx.url(PTZPath), wsse(t, "dave", daveONVIF, time.Now()),
		`<tptz:GotoPreset><tptz:ProfileToken>dome</tptz:ProfileToken><tptz:PresetToken>99</tptz:PresetToken></tptz:GotoPreset>`)
	if r.fault == nil || !r.fault.Has(soap.NsError, "NoToken") {
		t.Fatalf("unknown preset: %+v", r.fault)
	}
	post(t, fx.url(PTZPath), wsse(t, "dave", daveONVIF, time.Now()),
		`<tptz:Stop><tptz:ProfileToken>dome</tptz:ProfileToken></tptz:Stop>`).mustOK(t)
	waitDome(t)
}

// ptzFault answers as the HTTP door does: a camera failure names the
// operation, an error that is none of ptz's own says only "internal
// error" (it could carry anything).
func TestPTZFaultSaysNoMoreThanTheHTTPDoor(t *testing.T) {
	f := ptzFault(&ptz.CameraError{Op: "ContinuousMove", Err: errors.New("EOF")}, ptz.Command{})
	if f.Code != soap.CodeReceiver || !strings.Contains(f.Reason, "ContinuousMove") {
		t.Fatalf("camera error: %+v", f)
	}
	f = ptzFault(errors.New("dial tcp 10.20.0.12:80: secret-ish detail"), ptz.Command{})
	if f.Reason != "internal error" || !f.Has(soap.NsError, "Action") {
		t.Fatalf("unknown error: %+v", f)
	}
}
