package auth

import (
	"fmt"
	"testing"
	"time"

	"cordon/auth/audit"
)

// TestFailedSignInsAggregated: failed RTSP/password sign-ins from two
// addresses, each with a different made-up name, add one login_failed line
// per address and one suppressed line per address, not one line each.
func TestFailedSignInsAggregated(t *testing.T) {
	f := newFixture(t)
	agg := &audit.Aggregator{Log: f.audit, Interval: time.Hour, Logger: quiet()}
	if err := agg.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer agg.Close()
	f.svc.Hostile = agg
	attempts := 0
	for i := range 12 {
		remote := fmt.Sprintf("198.51.100.%d", 1+i%2)
		if _, err := f.svc.AuthenticatePassword(fmt.Sprintf("attacker-%d", i), "guess", remote, "rtsp"); err == nil {
			t.Fatal("bad credentials accepted")
		}
		attempts++
	}
	agg.Flush()
	failed, supp := f.countEvents(t, audit.LoginFailed), f.countEvents(t, audit.Suppressed)
	if failed != 2 || supp != 2 {
		t.Fatalf("%d login_failed and %d suppressed lines for %d attempts from 2 addresses", failed, supp, attempts)
	}
	for _, e := range f.auditEvents(t) {
		if e.Event == audit.Suppressed && e.Protocol != "rtsp" {
			t.Fatalf("summary %+v", e)
		}
	}
}
