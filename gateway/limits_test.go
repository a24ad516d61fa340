package gateway_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/gateway"
	"cordon/internal/connlimit"
)

// Connection caps that, with the cameras' reserve, exceed the open-file
// limit refuse the start with an error naming the fields to change.
func TestStartRefusedOverDescriptorBudget(t *testing.T) {
	limit, err := connlimit.OpenFileLimit()
	if err != nil {
		t.Skip("no open-file limit on this system:", err)
	}
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}}}, nil)
	cfg.Limits.HTTP = config.ConnLimit{PerAddress: 16, Total: int(limit)}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	g := &gateway.Gateway{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err = g.Initialize()
	if err == nil {
		g.Close()
		t.Fatal("started with connection caps above the open-file limit")
	}
	for _, want := range []string{"limits.http.total", "open-file limit", "per camera"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
