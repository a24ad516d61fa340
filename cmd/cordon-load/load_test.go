package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cordon-load against a real gateway and camera: every WHEP viewer (signed
// in with a password) and every RTSP reader connects, gets frames without a
// sequence gap; exit status 0.
func TestLoadAgainstGateway(t *testing.T) {
	cam := &democam.Camera{ID: "load", Listen: net.JoinHostPort("127.0.0.41", "0"), Path: "s", Username: "cam", Password: "cam-load-pw"}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}}},
		[]config.Camera{{ID: "load", URL: cam.URL(), Username: "cam", Password: "cam-load-pw", Transport: "tcp"}})
	g := e2eutil.Start(t, cfg)
	for _, args := range [][]string{
		{"--viewers", "3", "--duration", "3s"},
		// RTSP Basic is checked against the argon2id hash once per reader
		// (slow under -race on a loaded machine): a longer window
		{"--viewers", "2", "--duration", "8s", "--rtsp", g.RTSPAddr(), "--tcp"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"--url", g.Base, "--user", "alice", "--password", "alice-pw-1", "--camera", "load", "--quiet"}, args...), &out, &errOut)
		t.Logf("cordon-load %v:\n%s%s", args, out.String(), errOut.String())
		if code != 0 {
			t.Fatalf("cordon-load %v exited %d", args, code)
		}
		n := args[1]
		if !strings.Contains(out.String(), "viewers: "+n+" requested, "+n+" connected, 0 failed") || !strings.Contains(out.String(), "sequence gaps: 0") {
			t.Fatalf("cordon-load %v report:\n%s", args, out.String())
		}
	}
}
