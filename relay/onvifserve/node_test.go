package onvifserve

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/internal/testtool"
)

// The interop tests drive the face with the npm `onvif` client (pinned in
// testdata/nodeclient/package-lock.json, installed by
// scripts/install-test-deps.sh with `npm ci`).

type step map[string]any

type stepResult struct {
	Op    string          `json:"op"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

type nodeProfile struct {
	Token    string `json:"token"`
	Name     string `json:"name"`
	Encoding string `json:"encoding"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	PTZ      bool   `json:"ptz"`
}

type connectValue struct {
	Profiles     []nodeProfile `json:"profiles"`
	VideoSources int           `json:"videoSources"`
	Warnings     []string      `json:"warnings"`
}

// runNode runs the npm client with the plan against the face at addr and
// returns one result per step.
func runNode(t *testing.T, addr string, plan map[string]any, steps ...step) []stepResult {
	t.Helper()
	node := testtool.Require(t, "node")
	dir, err := filepath.Abs("testdata/nodeclient")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onvif", "package.json")); err != nil {
		testtool.Missing(t, "the npm onvif client is not installed (run `make deps`: npm ci in relay/onvifserve/testdata/nodeclient)")
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	plan["hostname"], plan["port"], plan["steps"] = host, p, steps
	b, _ := json.Marshal(plan)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.js"), string(b))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v (stderr: %s)", err, stderrOf(err))
	}
	var res struct{ Results []stepResult }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node client output %q: %v", out, err)
	}
	for _, r := range res.Results {
		if r.Op == "uncaught" || r.Op == "deadline" {
			t.Fatalf("node client: %s", r.Error)
		}
	}
	return res.Results
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func okValue[T any](t *testing.T, r stepResult) T {
	t.Helper()
	var v T
	if !r.OK {
		t.Fatalf("%s failed: %s", r.Op, r.Error)
	}
	if len(r.Value) > 0 && string(r.Value) != "null" {
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("%s: %s: %v", r.Op, r.Value, err)
		}
	}
	return v
}

// ffprobeStream reads one stream's codec and size from an RTSP URI.
func ffprobeStream(t *testing.T, uri string) string {
	t.Helper()
	ffprobe := testtool.Require(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// stdout only: a decoder joining mid-GOP may warn on stderr
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "8000000",
		"-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", uri).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", uri, err, stderrOf(err))
	}
	return strings.TrimSpace(string(out))
}

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
			res := runNode(t, fx.face.Addr().String(), map[string]any{"username": "alice", "password": aliceONVIF, "useWSSecurity": mode.wssec},
				step{"op": "connect"}, step{"op": "deviceInformation"},
				step{"op": "streamUri", "profileToken": "gate"}, step{"op": "streamUri", "profileToken": "gate.sub"},
				step{"op": "streamUri", "profileToken": "dome"}, step{"op": "streamUri", "profileToken": "yard"},
				step{"op": "snapshotUri", "profileToken": "gate"})
			conn := okValue[connectValue](t, res[0])
			want := []nodeProfile{
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
			info := okValue[map[string]any](t, res[1])
			if info["manufacturer"] != Manufacturer || info["model"] != Model || info["serialNumber"] != "node-1" {
				t.Fatalf("device information %v", info)
			}
			port := strconv.Itoa(fx.rtsp.port())
			for i, path := range []string{"gate", "gate/sub", "dome"} {
				uri := okValue[string](t, res[2+i])
				if uri != "rtsp://127.0.0.1:"+port+"/"+path {
					t.Fatalf("stream URI %q", uri)
				}
				t.Run(path, func(t *testing.T) {
					t.Parallel() // each probe waits for a keyframe: wait together
					if got := ffprobeStream(t, uri); got != "h264,320,180" {
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
	res := runNode(t, fx.face.Addr().String(), map[string]any{"username": "carol", "password": carolONVIF},
		step{"op": "connect"}, step{"op": "deviceInformation"})
	conn := okValue[connectValue](t, res[0])
	if len(conn.Profiles) != 0 || conn.VideoSources != 0 {
		t.Fatalf("carol sees %+v", conn)
	}
	okValue[map[string]any](t, res[1])
}

// Wrong credentials are refused and counted towards lockout, named and
// with the client's address; so are the login password (ONVIF needs the
// ONVIF-only secret) and a name without an ONVIF secret.
func TestNodeClientWrongCredentialsRefusedAndCounted(t *testing.T) {
	for _, c := range []struct{ user, pass string }{
		{"alice", "wrong"}, {"alice", alicePass}, {"frank", "frank login password"}, {"nobody", "x"},
	} {
		before, _ := fx.access.record()
		res := runNode(t, fx.face.Addr().String(), map[string]any{"username": c.user, "password": c.pass},
			step{"op": "connect"})
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
