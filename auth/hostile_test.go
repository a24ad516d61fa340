package auth

import (
	"fmt"
	"strings"
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
	failed, supp, locks := 0, f.countEvents(t, audit.Suppressed), 0
	for _, e := range f.auditEvents(t) {
		if e.Event == audit.LoginFailed {
			failed++
			if strings.Contains(e.Detail, "locked out for") {
				locks++
			}
		}
	}
	// per address: the first failure, and the one that locked it (the
	// threshold is 5 of the 6 attempts; the 6th is refused as locked)
	if failed-locks != 2 || locks != 2 || supp != 2 {
		t.Fatalf("%d login_failed (%d lockouts) and %d suppressed lines for %d attempts from 2 addresses", failed, locks, supp, attempts)
	}
	for _, e := range f.auditEvents(t) {
		if e.Event == audit.Suppressed && e.Protocol != "rtsp" {
			t.Fatalf("summary %+v", e)
		}
	}
}
