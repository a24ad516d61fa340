package auth

import (
	"errors"
	"fmt"
	"net/http"
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

func withAggregator(t *testing.T, f *fixture) *audit.Aggregator {
	t.Helper()
	agg := &audit.Aggregator{Log: f.audit, Interval: time.Hour, Logger: quiet()}
	if err := agg.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agg.Close)
	f.svc.Hostile = agg
	return agg
}

// TestLockoutsAggregated: the failures that start a lock are their own
// kind, "lockout", through the aggregator: one address locked again and
// again adds one lockout line (with its duration) and a count; a botnet of
// fresh addresses, each locked once, adds at most the aggregator's bound
// of lines, not one per address.
func TestLockoutsAggregated(t *testing.T) {
	f := newFixture(t)
	agg := withAggregator(t, f)
	const one = "198.51.100.9"
	locks := 0
	for i := range 8 { // threshold 5: failures 5..8 each lock (1 s, 2 s, 4 s, 8 s)
		err := f.svc.RecordAuthFailure(fmt.Sprintf("guess-%d", i), one, "rtsp", "", "bad credentials")
		var lo *LockedOutError
		if errors.As(err, &lo) {
			locks++
			f.clock.Advance(lo.RetryAfter) // let it pass: the next failure counts
		}
	}
	if locks != 4 {
		t.Fatalf("%d locks", locks)
	}
	const botnet = 300
	for a := range botnet {
		remote := fmt.Sprintf("10.%d.%d.1", a/250, a%250)
		for i := range f.svc.Lockout.Threshold {
			_ = f.svc.RecordAuthFailure(fmt.Sprintf("guess-%d", i), remote, "http", "", "bad credentials")
		}
	}
	agg.Flush()
	var lockLines []auditLine
	var summary string
	lines := f.auditEvents(t)
	for _, e := range lines {
		if e.Remote == one {
			if strings.Contains(e.Detail, "locked out for") {
				lockLines = append(lockLines, e)
			}
			if e.Event == audit.Suppressed {
				summary = e.Detail
			}
		}
	}
	if len(lockLines) != 1 || !strings.HasSuffix(lockLines[0].Detail, "locked out for 1s") {
		t.Fatalf("lockout lines for %s: %+v", one, lockLines)
	}
	if !strings.Contains(summary, "lockout 3") || !strings.Contains(summary, "login_failed 3") {
		t.Fatalf("summary for %s: %q", one, summary)
	}
	if limit := 2*audit.DefaultMaxLinesPerInterval + 1; len(lines) > limit {
		t.Fatalf("%d lines for %d addresses each locked out (limit %d)", len(lines), botnet+1, limit)
	}
	t.Logf("%d addresses locked out: %d audit lines", botnet+1, len(lines))
}

// TestIPv6SourceIsTheSlash64: failures from two addresses of one /64 are
// one source for the aggregator, as they are one key for the lockout.
func TestIPv6SourceIsTheSlash64(t *testing.T) {
	f := newFixture(t)
	agg := withAggregator(t, f)
	for _, remote := range []string{"[2001:db8:1:2::10]:5000", "[2001:db8:1:2:aaaa::77]:6000", "2001:db8:1:2::99"} {
		if _, err := f.svc.AuthenticatePassword("mallory", "guess", remote, "rtsp"); err == nil {
			t.Fatal("bad credentials accepted")
		}
	}
	agg.Flush()
	var failed, supp int
	for _, e := range f.auditEvents(t) {
		switch e.Event {
		case audit.LoginFailed:
			failed++
		case audit.Suppressed:
			supp++
			if !strings.Contains(e.Detail, "2 repeated events from 2001:db8:1:2::/64") {
				t.Fatalf("summary %q", e.Detail)
			}
		}
	}
	if failed != 1 || supp != 1 {
		t.Fatalf("%d login_failed and %d suppressed lines for 3 failures from one /64", failed, supp)
	}
	if AddrID("[2001:db8:1:2::10%eth0]:1") != "2001:db8:1:2::/64" || AddrID("192.0.2.7:99") != "192.0.2.7" {
		t.Fatal("AddrID")
	}
}

// TestDenialsAggregatedPerPrincipal: an authenticated principal repeating
// a refused request (a camera without the right, the admin API) adds one
// denied line per protocol and interval, then a count; the path a client
// chose is clipped.
func TestDenialsAggregatedPerPrincipal(t *testing.T) {
	f := rolesFixture(t)
	agg := withAggregator(t, f)
	carol := lookup(t, f, "carol", KindUser)
	for _, proto := range []string{"webrtc", "webrtc", "rtsp", "webrtc", "rtsp"} {
		err := f.svc.Authorize(t.Context(), Access{Principal: carol, Right: RightExport, Camera: "gate-north", Remote: "192.0.2.5", Protocol: proto})
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("export without the right: %v", err)
		}
	}
	tok := f.token(t, "carol", "carol-pw")
	admin := f.svc.RequireAdmin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served a non-admin") }))
	long := "/api/v1/admin/" + strings.Repeat("x", 5000)
	for range 20 {
		w := newRecorder()
		admin.ServeHTTP(w, bearerRequest(http.MethodGet, long, tok))
		if w.Code != http.StatusForbidden {
			t.Fatalf("admin API as carol: %d", w.Code)
		}
	}
	agg.Flush()
	denied := map[string]int{}
	var summary string
	for _, e := range f.auditEvents(t) {
		switch e.Event {
		case audit.Denied:
			denied[e.Protocol]++
			if e.Actor != "carol" || len(e.Detail) > 200 {
				t.Fatalf("denied line %+v", e)
			}
		case audit.Suppressed:
			summary = e.Detail
		}
	}
	if denied["webrtc"] != 1 || denied["rtsp"] != 1 || denied["http"] != 1 || len(denied) != 3 {
		t.Fatalf("denied lines per protocol %v", denied)
	}
	if !strings.Contains(summary, "22 repeated events from actor:carol") {
		t.Fatalf("summary %q", summary)
	}
}
