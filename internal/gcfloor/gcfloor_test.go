package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live     uint64
		base     int
		headroom uint64
		want     int
	}{
		{0, 50, 16 * mib, MaxPercent},
		{9_000_000, 50, 16 * mib, 187}, // 50 RTSP readers of one camera: 16 MiB, not 4.5 MB
		{32 * mib, 50, 16 * mib, 50},   // the floor ends here
		{200 * mib, 50, 16 * mib, 50},  // a large heap: GOGC 50
		{10_000, 50, 16 * mib, MaxPercent},
		{16 * mib, 100, 16 * mib, 100},
	} {
		if got := Percent(c.live, c.base, c.headroom); got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.base, c.headroom, got, c.want)
		}
	}
}

// TestFloorFollowsCollections: after each collection the percent follows
// the live heap: the floor on a small heap, the base once the live heap
// is large, the floor again when it shrinks; after Close it stays.
func TestFloorFollowsCollections(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	applied := make(chan int, 64)
	f := &Floor{Percent: 50, Headroom: 16 << 20, onApply: func(p int) {
		select {
		case applied <- p:
		default:
		}
	}}
	f.Initialize()
	defer f.Close()
	if p := <-applied; p <= 50 || f.Current() != p {
		t.Fatalf("small heap: percent %d (current %d), want above 50", p, f.Current())
	}
	// collect until the Floor has seen a collection with want(p) true
	await := func(what string, want func(int) bool) {
		t.Helper()
		for range 20 {
			runtime.GC()
			timer := time.NewTimer(time.Second)
			select {
			case p := <-applied:
				timer.Stop()
				if want(p) {
					return
				}
			case <-timer.C:
			}
		}
		t.Fatalf("no collection re-set the percent to %s (now %d)", what, f.Current())
	}
	func() {
		hold := make([]byte, 64<<20) // live: 64 MiB, past the floor
		await("50 with 64 MiB live", func(p int) bool { return p == 50 })
		runtime.KeepAlive(hold)
	}()
	await("the floor again", func(p int) bool { return p > 50 })
	if got := debug.SetGCPercent(f.Current()); got != f.Current() {
		t.Fatalf("runtime percent %d, Floor says %d", got, f.Current())
	}
	f.Close()
	last := f.Current()
	runtime.GC()
	runtime.GC()
	if f.Current() != last {
		t.Fatalf("percent changed after Close: %d -> %d", last, f.Current())
	}
}
