// Package e2e holds cordon's end-to-end tests: real RTSP cameras (democam,
// ffmpeg), the whole gateway, and real clients (pion WHEP viewers, ffmpeg
// RTSP clients, headless chromium).
package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
)

func TestMain(m *testing.M) {
	// packageRun: package-wide fixtures end after the tests (helpers_cluster_test.go);
	// withDirectoryServers stops the shared slapd and OpenID Provider (helpers_directory_test.go)
	goleak.VerifyTestMain(packageRun{withDirectoryServers{m}},
		// chromedp/pion may leave these briefly; everything else must be gone
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func startCam(t *testing.T, id, host string, q democam.Quirks) *democam.Camera {
	t.Helper()
	c := &democam.Camera{ID: id, Listen: host + ":0", Path: "Streaming/Channels/101", Username: "cam", Password: "cam-" + id + "-pw", Quirks: q}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func camCfg(c *democam.Camera, onDemand bool) config.Camera {
	return config.Camera{ID: c.ID, Name: c.ID, URL: c.URL(), Username: c.Username, Password: c.Password, Transport: "tcp", OnDemand: onDemand}
}

// The spine: two cameras, several viewers each, access units in decode
// order starting SPS, PPS, IDR; permissions enforced.
func TestPipelineSeveralCamerasAndViewers(t *testing.T) {
	a := startCam(t, "cam-a", "127.0.0.2", democam.Quirks{})
	b := startCam(t, "cam-b", "127.0.0.3", democam.Quirks{})
	g := e2eutil.Start(t, e2eutil.Config(t, []e2eutil.Account{
		{Name: "alice", Password: "alice-pw-1", Cameras: []string{"cam-*"}},
		{Name: "bob", Password: "bob-pw-1", Cameras: []string{"cam-a"}},
	}, []config.Camera{camCfg(a, false), camCfg(b, false)}))
	alice := e2eutil.Login(t, g.Base, "alice", "alice-pw-1")
	bob := e2eutil.Login(t, g.Base, "bob", "bob-pw-1")

	var viewers []*e2eutil.Viewer
	for _, cam := range []string{"cam-a", "cam-b"} {
		for range 3 {
			v, status, body := e2eutil.Dial(t, g.Base, cam, alice, e2eutil.ViewerOptions{})
			if v == nil {
				t.Fatalf("POST /whep/%s: %d %s", cam, status, body)
			}
			viewers = append(viewers, v)
		}
	}
	for i, v := range viewers {
		au := v.NextAU(t, 10*time.Second)
		if got := e2eutil.H264Types(au.NALUs); len(got) < 3 || got[0] != 7 || got[1] != 8 || !slices.Contains(got, 5) {
			t.Fatalf("viewer %d: first access unit NAL types %v, want SPS, PPS, IDR", i, got)
		}
		for range 20 {
			au = v.NextAU(t, 3*time.Second)
		}
		if gaps, back := v.Continuity(); gaps != 0 || back != 0 {
			t.Fatalf("viewer %d: %d sequence gaps, %d timestamp steps back", i, gaps, back)
		}
	}
	if _, status, _ := e2eutil.Dial(t, g.Base, "cam-b", bob, e2eutil.ViewerOptions{}); status != http.StatusForbidden {
		t.Fatalf("bob on cam-b: %d, want 403", status)
	}
	// unknown camera inside the caller's globs: 404; outside them: 403, so
	// ids outside one's rights cannot be probed
	if _, status, _ := e2eutil.Dial(t, g.Base, "cam-zzz", alice, e2eutil.ViewerOptions{}); status != http.StatusNotFound {
		t.Fatalf("unknown camera: %d, want 404", status)
	}
	if _, status, _ := e2eutil.Dial(t, g.Base, "nope", alice, e2eutil.ViewerOptions{}); status != http.StatusForbidden {
		t.Fatalf("unknown camera outside the globs: %d, want 403", status)
	}
	if _, status, _ := e2eutil.Dial(t, g.Base, "cam-a", "", e2eutil.ViewerOptions{}); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", status)
	}
}
