package onvifserve

import (
	"strconv"
	"strings"
	"testing"

	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
)

// The interop tests drive the face with the npm `onvif` client
// (internal/testtool/onvifnode).

const nodeClient = "testdata/nodeclient"

// A principal's VMS view: the profiles of exactly the cameras it may
// view (main and sub), cordon's identity, stream URIs on the host the
// client used, and every URI plays. Both WS-Security digest and HTTP
// Digest sign-in.
func TestNodeClientSeesItsCamerasAndTheyPlay(t *testing.T) {
	for _, mode := range []struct {
		name   string
		wssec  bool
		digest bool
	}{{"ws-security", true, false}, {"http-digest", false, true}} {
		t.Run(mode.name, func(t *testing.T) {
			failsBefore, before := fx.access.record()
			res := onvifnode.Run(t, nodeClient, fx.face.Addr().String(), map[string]any{"username": "alice", "password": aliceONVIF, "useWSSecurity": mode.wssec},
				onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "deviceInformation"},
				onvifnode.Step{"op": "streamUri", "profileToken": "gate"}, onvifnode.Step{"op": "streamUri", "profileToken": "gate.sub"},
				onvifnode.Step{"op": "streamUri", "profileToken": "dome"}, onvifnode.Step{"op": "streamUri", "profileToken": "yard"},
				onvifnode.Step{"op": "snapshotUri", "profileToken": "gate"})
			conn := onvifnode.Value[onvifnode.Connect](t, res[0])
			want := []onvifnode.Profile{
				{Token: "gate", Name: "Gate north", Encoding: "H264", Width: 320, Height: 180},
				{Token: "gate.sub", Name: "Gate north (sub)", Encoding: "H264", Width: 320, Height: 180},
				{Token: "dome", Name: "Dome", Encoding: "H264", Width: 320, Height: 180, PTZ: true},
			}
			if len(conn.Profiles) != len(want) || conn.VideoSources != 2 || len(conn.Warnings) != 0 {
				t.Fatalf("connect: %+v", conn)
			}
			for i := range want {
				if conn.Profiles[i] != want[i] {
					t.Fatalf("profile %d: %+v, want %+v", i, conn.Profiles[i], want[i])
				}
			}
			info := onvifnode.Value[map[string]any](t, res[1])
			if info["manufacturer"] != Manufacturer || info["model"] != Model || info["serialNumber"] != "node-1" {
				t.Fatalf("device information %v", info)
			}
			port := strconv.Itoa(fx.rtsp.port())
			for i, path := range []string{"gate", "gate/sub", "dome"} {
				uri := onvifnode.Value[string](t, res[2+i])
				if uri != "rtsp://127.0.0.1:"+port+"/"+path {
					t.Fatalf("stream URI %q", uri)
				}
				t.Run(path, func(t *testing.T) {
					t.Parallel() // each probe waits for a keyframe: wait together
					if got := testtool.ProbeVideo(t, uri); got != "h264,320,180" {
						t.Errorf("ffprobe %s: %q", uri, got)
					}
				})
			}
			if res[5].OK || !strings.Contains(res[5].Error, "no such profile") {
				t.Fatalf("a camera alice may not view: %+v", res[5])
			}
			if res[6].OK || !strings.Contains(res[6].Error, "Not Implemented") {
				t.Fatalf("snapshots are not served: %+v", res[6])
			}
			failures, after := fx.access.record()
			if len(after) <= len(before) || len(failures) != len(failsBefore) {
				t.Fatalf("sign-ins %v, failures %v", after, failures[len(failsBefore):])
			}
		})
	}
}

// A principal without rights signs in and sees no profiles (not an error).
func TestNodeClientWithoutRightsSeesNothing(t *testing.T) {
	res := onvifnode.Run(t, nodeClient, fx.face.Addr().String(), map[string]any{"username": "carol", "password": carolONVIF},
		onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "deviceInformation"})
	conn := onvifnode.Value[onvifnode.Connect](t, res[0])
	if len(conn.Profiles) != 0 || conn.VideoSources != 0 {
		t.Fatalf("carol sees %+v", conn)
	}
	onvifnode.Value[map[string]any](t, res[1])
}

// Wrong credentials are refused and counted towards lockout, named and
// with the client's address; so are the login password (ONVIF needs the
// ONVIF-only secret) and a name without an ONVIF secret.
func TestNodeClientWrongCredentialsRefusedAndCounted(t *testing.T) {
	for _, c := range []struct{ user, pass string }{
		{"alice", "wrong"}, {"alice", alicePass}, {"frank", "frank login password"}, {"nobody", "x"},
	} {
		before, _ := fx.access.record()
		res := onvifnode.Run(t, nodeClient, fx.face.Addr().String(), map[string]any{"username": c.user, "password": c.pass},
			onvifnode.Step{"op": "connect"})
		if res[0].OK {
			t.Fatalf("%s/%s signed in", c.user, c.pass)
		}
		// the client tries GetServices, then falls back to GetCapabilities:
		// each refused request is one counted failure
		after, _ := fx.access.record()
		if len(after) != len(before)+2 {
			t.Fatalf("%s: failures %v -> %v", c.user, before, after)
		}
		for _, f := range after[len(before):] {
			if f.name != c.user || f.remote != "127.0.0.1" {
				t.Fatalf("failure recorded as %+v", f)
			}
		}
	}
}
