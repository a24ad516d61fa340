package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"cordon/e2e/e2eutil"
	"cordon/gateway"
)

// metrics.pprof serves Go's profiler on the metrics listener only when
// switched on; off (the default) it is not there, and it is never on the
// public HTTP listener.
func TestPProfSwitch(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}}}, nil)
		cfg.Metrics.PProf = on
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatal(errs)
		}
		g := &gateway.Gateway{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := g.Initialize(); err != nil {
			t.Fatal(err)
		}
		get := func(base, path string) (int, string) {
			resp, err := http.Get("http://" + base + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		status, _ := get(g.MetricsAddr(), "/debug/pprof/cmdline")
		if on != (status == http.StatusOK) {
			t.Errorf("pprof %v: /debug/pprof/cmdline on the metrics listener answered %d", on, status)
		}
		if status, body := get(g.MetricsAddr(), "/debug/pprof/"); on && (status != http.StatusOK || !strings.Contains(body, "goroutine")) {
			t.Errorf("pprof on: index %d %q", status, body)
		}
		if status, _ := get(g.MetricsAddr(), "/metrics"); status != http.StatusOK {
			t.Errorf("pprof %v: /metrics answered %d", on, status)
		}
		if status, _ := get(g.HTTPAddr(), "/debug/pprof/cmdline"); status == http.StatusOK {
			t.Errorf("pprof %v: the public listener serves the profiler", on)
		}
		g.Close()
	}
}
