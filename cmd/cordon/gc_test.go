package main

import (
	"runtime/debug"
	"testing"

	"cordon/internal/gcfloor"
)

// serve runs the collector at serveGCPercent with a floor of headroom,
// except when the environment sets GOGC, which it leaves alone.
func TestApplyGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	got, floor := applyGC(func(string) string { return "" })
	if got != serveGCPercent || floor == nil {
		t.Fatalf("without GOGC: %d, floor %v; want %d and a floor", got, floor, serveGCPercent)
	}
	floor.Close()
	// the percent in force is the floor's for this process's live heap
	// (internal/gcfloor tests how it follows the heap)
	if now := debug.SetGCPercent(100); now != floor.Current() || now < serveGCPercent || now > gcfloor.MaxPercent {
		t.Fatalf("runtime GC percent %d (floor says %d); want the floor's, from %d to %d", now, floor.Current(), serveGCPercent, gcfloor.MaxPercent)
	}
	env := func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}
	if got, floor := applyGC(env); got != 100 || floor != nil {
		t.Fatalf("with GOGC=100: %d, floor %v", got, floor)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Fatalf("GOGC=100 from the environment was overridden: %d", now)
	}
}
