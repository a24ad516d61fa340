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
	if cond() {
		return
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
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
