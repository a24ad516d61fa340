// Package onvifnode is the VMS side of the ONVIF tests: it drives an
// ONVIF device face with the npm `onvif` client
// (relay/onvifserve/testdata/nodeclient, pinned in its package-lock.json
// and installed by scripts/install-test-deps.sh with `npm ci`) and probes
// for devices with WS-Discovery (Prober). It serves relay/onvifserve's
// tests and the end-to-end tests. It lives under internal/testtool because it serves the
// tests of several packages and is part of none of them.
package onvifnode

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cordon/internal/testtool"
)

// Step is one step of the client's plan ({"op": "connect"}, ...).
type Step map[string]any

// Result is one step's result.
type Result struct {
	Op    string          `json:"op"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// Profile is a media profile as the client summarizes it.
type Profile struct {
	Token    string `json:"token"`
	Name     string `json:"name"`
	Encoding string `json:"encoding"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	PTZ      bool   `json:"ptz"`
}

// Connect is the value of a "connect" step.
type Connect struct {
	Profiles     []Profile `json:"profiles"`
	VideoSources int       `json:"videoSources"`
	Warnings     []string  `json:"warnings"`
}

// Run runs the client in dir (the nodeclient folder, relative to the
// test's package) against the face at addr with plan's credentials and
// options, and returns one result per step. A missing node or client skips
// the test (fails it under CI=true); a client that crashes, runs out of
// time or answers a different number of steps fails it.
func Run(t testing.TB, dir, addr string, plan map[string]any, steps ...Step) []Result {
	t.Helper()
	node := testtool.Require(t, "node")
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onvif", "package.json")); err != nil {
		testtool.Missing(t, "the npm onvif client is not installed (run `make deps`: npm ci in relay/onvifserve/testdata/nodeclient)")
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	plan["hostname"], plan["port"], plan["steps"] = host, p, steps
	planJSON, _ := json.Marshal(plan)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.js"), string(planJSON))
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node onvif client: %v (stderr: %s)", err, stderr.String())
	}
	var res struct{ Results []Result }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node client output %q: %v", out, err)
	}
	for _, r := range res.Results {
		if r.Op == "uncaught" || r.Op == "deadline" {
			t.Fatalf("node client: %s", r.Error)
		}
	}
	if len(res.Results) != len(steps) {
		t.Fatalf("node client: %d results for %d steps", len(res.Results), len(steps))
	}
	return res.Results
}

// Value decodes a successful step's value, failing the test when the
// step failed.
func Value[T any](t testing.TB, r Result) T {
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
