package main

import (
	"runtime/debug"

	"cordon/internal/gcfloor"
)

// serveGCPercent is serve's GC target (GOGC) unless the environment sets
// GOGC: Go's default (100) lets the heap grow to twice what is live before
// collecting, which for a gateway is most of each viewer's resident memory
// (pion's per-session state is small and long-lived). At 50 the headroom
// halves; the collector's CPU share stays small (README "Measured": memory
// per viewer and CPU per viewer-minute at GOGC 50 and 100).
const serveGCPercent = 50

// serveGCHeadroom is the least the heap may grow between collections
// (internal/gcfloor): on a heap under 32 MiB live, GOGC 50 would collect
// every few megabytes of packets (README "Measured": the RTSP rows).
const serveGCHeadroom = 16 << 20

// applyGC sets serve's collector policy unless GOGC is set: serveGCPercent
// with a floor of serveGCHeadroom, which it returns (Close it when serve
// ends). With GOGC set it changes nothing and returns nil. percent is the
// base percent in force.
func applyGC(getenv func(string) string) (percent int, floor *gcfloor.Floor) {
	if getenv("GOGC") != "" {
		p := debug.SetGCPercent(-1) // read the current value...
		debug.SetGCPercent(p)       // ...and put it back
		return p, nil
	}
	floor = &gcfloor.Floor{Percent: serveGCPercent, Headroom: serveGCHeadroom}
	floor.Initialize()
	return serveGCPercent, floor
}
