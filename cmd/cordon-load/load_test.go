package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cordon-load against a real gateway and camera: every WHEP viewer (signed
// in with a password, or given a token and the endpoint's full URL, in
// light mode too), every RTSP reader and every sequential join connects
// and gets frames without a lost packet; the JSON summary says the same;
// exit status 0.
func TestLoadAgainstGateway(t *testing.T) {
	cam := &democam.Camera{ID: "load", Listen: net.JoinHostPort("127.0.0.41", "0"), Path: "s", Username: "cam", Password: "cam-load-pw"}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}},
		{Name: "nvr-1", Password: "nvr-1-secret", Cameras: []string{"*"}, APIKey: true}, {Name: "nvr-2", Password: "nvr-2-secret", Cameras: []string{"*"}, APIKey: true}},
		[]config.Camera{{ID: "load", URL: cam.URL(), Username: "cam", Password: "cam-load-pw", Transport: "tcp"}})
	g := e2eutil.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token, err := login(ctx, http.DefaultClient, g.Base, "alice", "alice-pw-1")
	if err != nil {
		t.Fatal(err)
	}
	signIn := []string{"--url", g.Base, "--user", "alice", "--password", "alice-pw-1", "--camera", "load"}
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("key:nvr-1:nvr-1-secret\nkey:nvr-2:nvr-2-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		append(signIn, "--viewers", "3", "--duration", "3s"),
		{"--whep-url", g.Base + "/whep/load", "--token", token, "--light", "--viewers", "3", "--duration", "3s"},
		{"--whep-url", g.Base + "/whep/load", "--token", token, "--joins", "2", "--join-watch", "1500ms"},
		// RTSP Basic is checked against the argon2id hash once per reader
		// (slow under -race on a loaded machine): a longer window
		append(signIn, "--viewers", "2", "--duration", "8s", "--rtsp", g.RTSPAddr(), "--tcp"),
		// the keys in turn, from two source addresses (bench-compare's RTSP row)
		{"--rtsp-url", "rtsp://" + g.RTSPAddr() + "/load", "--token-file", keys, "--sources", "2", "--viewers", "2", "--duration", "8s"},
	} {
		var out, errOut bytes.Buffer
		code := run(append(args, "--quiet"), &out, &errOut)
		t.Logf("cordon-load %v:\n%s%s", args, out.String(), errOut.String())
		if code != 0 {
			t.Fatalf("cordon-load %v exited %d", args, code)
		}
		n := "3"
		for i, a := range args {
			if a == "--viewers" || a == "--joins" {
				n = args[i+1]
			}
		}
		if !strings.Contains(out.String(), "viewers: "+n+" requested, "+n+" connected, 0 failed") || !strings.Contains(out.String(), "sequence gaps: 0 packets lost") ||
			!strings.Contains(out.String(), "a keyframe: "+n+" of "+n) {
			t.Fatalf("cordon-load %v report:\n%s", args, out.String())
		}
	}
	// the key-file readers: one per key, one per source address
	b, err := os.ReadFile(cfg.Audit.Path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for l := range strings.SplitSeq(string(b), "\n") {
		var e struct{ Event, Actor, Remote, Protocol string }
		if json.Unmarshal([]byte(l), &e) == nil && e.Event == "view_start" && e.Protocol == "rtsp" && strings.HasPrefix(e.Actor, "nvr-") {
			seen[e.Actor+"@"+e.Remote] = true
		}
	}
	if !seen["nvr-1@127.0.0.1"] || !seen["nvr-2@127.0.0.2"] || len(seen) != 2 {
		t.Fatalf("RTSP readers with --token-file --sources 2 were seen as %v, want nvr-1@127.0.0.1 and nvr-2@127.0.0.2", seen)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--whep-url", g.Base + "/whep/load", "--token", token, "--light", "--viewers", "2", "--duration", "2s", "--json", "--markers", "--quiet"}, &out, &errOut); code != 0 {
		t.Fatalf("--json exited %d: %s", code, errOut.String())
	}
	text := out.String()
	if !strings.HasPrefix(text, "STEADY-BEGIN\nSTEADY-END\n") {
		t.Fatalf("markers missing:\n%s", text)
	}
	var r report
	if err := json.Unmarshal([]byte(strings.TrimPrefix(text, "STEADY-BEGIN\nSTEADY-END\n")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Connected != 2 || r.Lost != 0 || r.FPS.N != 2 || r.FPS.Min <= 0 || r.Window < 1.5 || r.TTFF.P50 <= 0 {
		t.Fatalf("JSON report %+v", r)
	}
}

// Flags that address nothing, or a remote target without --allow-remote,
// are refused with status 2.
func TestFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--whep-url", "ftp://127.0.0.1/x"},
		{"--whep-url", "http://10.1.2.3:8889/cam/whep"},
		{"--rtsp-url", "rtsp://127.0.0.1:1/x", "--viewers", "0"},
		{"--camera", "x", "--url", "http://127.0.0.1:1"},
		{"--whep-url", "http://127.0.0.1:1/x", "--rcvbuf", "-1"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("cordon-load %v exited %d, want 2: %s", args, code, errOut.String())
		}
	}
}
