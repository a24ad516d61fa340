// Package gcfloor gives the garbage collector a floor of headroom. serve
// runs Go's collector at GOGC 50 (cmd/cordon/gc.go: about a quarter less
// memory per WHEP viewer), which on a small heap is a small step: with
// 9 MB live (one 1080p camera and 50 RTSP readers) the heap may grow only
// 4.5 MB between collections, and the camera's re-originated packets fill
// that in about two seconds. Each cycle then costs its fixed part (stacks,
// workers, waking the process), and the scavenger returns the freed pages
// to the kernel just before the next ones are faulted back in.
//
// A Floor re-sets the percent after every collection so that the heap may
// grow by at least Headroom: max(Percent, Headroom*100/live). A heap live
// above Headroom*100/Percent (32 MiB at 50 % and 16 MiB) is collected
// exactly as at Percent; a smaller one at most once every Headroom bytes
// allocated, for at most Headroom bytes of memory more.
//
// It lives in its own package because it is process-wide runtime policy:
// neither the CLI (cmd/cordon sets it up) nor any component owns it.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// MaxPercent bounds the percent a Floor sets (a nearly empty heap would
// otherwise ask for thousands).
const MaxPercent = 1000

// Floor keeps at least Headroom bytes of GC headroom. Initialize starts
// it; Close stops it at the next collection.
type Floor struct {
	// Percent is the GC percent (GOGC) above the floor.
	Percent int
	// Headroom is the least the heap may grow between collections.
	Headroom uint64

	mu      sync.Mutex // Initialize, Close and the cleanup goroutine
	stopped bool
	last    atomic.Int32 // the percent set last
	sample  []metrics.Sample
	onApply func(percent int) // tests: called after each re-set
}

// sentinel is allocated after each collection and found unreachable by
// the next one; its cleanup re-sets the percent. It holds a pointer so
// that it is never batched with other small objects (a tiny allocation's
// block is freed only when all of it is).
type sentinel struct {
	_ *byte
	_ [4]uint64
}

// Initialize sets the percent for the heap live now and follows every
// collection from now on.
func (f *Floor) Initialize() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	f.apply()
	f.arm()
}

// Close stops following collections (the percent stays as last set): no
// re-set happens after it returns.
func (f *Floor) Close() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
}

// Current is the percent the Floor set last (0 before Initialize).
func (f *Floor) Current() int { return int(f.last.Load()) }

func (f *Floor) arm() {
	runtime.AddCleanup(&sentinel{}, (*Floor).collected, f)
}

// collected runs after each collection (in the runtime's cleanup
// goroutine): it re-sets the percent and arms the next sentinel.
func (f *Floor) collected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.apply()
	f.arm()
}

func (f *Floor) apply() {
	metrics.Read(f.sample)
	var live uint64
	if f.sample[0].Value.Kind() == metrics.KindUint64 {
		live = f.sample[0].Value.Uint64()
	}
	p := Percent(live, f.Percent, f.Headroom)
	if p != int(f.last.Load()) {
		debug.SetGCPercent(p)
		f.last.Store(int32(p))
	}
	if f.onApply != nil {
		f.onApply(p)
	}
}

// Percent is the GC percent that gives a heap of live bytes at least
// headroom bytes to grow, and never less than base nor more than
// MaxPercent.
func Percent(live uint64, base int, headroom uint64) int {
	if live == 0 {
		return MaxPercent
	}
	need := (headroom*100 + live - 1) / live
	if need > MaxPercent {
		return MaxPercent
	}
	return max(base, int(need))
}
