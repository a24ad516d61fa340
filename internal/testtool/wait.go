package testtool

import (
	"testing"
	"time"
)

// WaitFor checks cond every 10 ms until it holds, and fails the test naming
// what it waited for when within passes first. Use it for state that has
// no signal to wait on; prefer a channel where there is one.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitEvery(t, within, 10*time.Millisecond, what, cond)
}

// WaitEvery is WaitFor checking every period: for conditions whose check
// is itself a request that a rate limit under test would count.
func WaitEvery(t testing.TB, within, period time.Duration, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %v waiting for %s", within, what)
		case <-tick.C:
			if cond() {
				return
			}
		}
	}
}

// Recv receives from ch, and fails the test naming what it waited for
// when within passes first (or ch is closed).
func Recv[T any](t testing.TB, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
	var zero T
	return zero
}
