package main

import "runtime/debug"

// serveGCPercent is serve's GC target (GOGC) unless the environment sets
// GOGC: Go's default (100) lets the heap grow to twice what is live before
// collecting, which for a gateway is most of each viewer's resident memory
// (pion's per-session state is small and long-lived). At 50 the headroom
// halves; the collector's CPU share stays small (README "Measured": memory
// per viewer and CPU per viewer-minute at GOGC 50 and 100).
const serveGCPercent = 50

// applyGCPercent sets serveGCPercent unless GOGC is set, and returns the
// percent in force.
func applyGCPercent(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		p := debug.SetGCPercent(-1) // read the current value...
		debug.SetGCPercent(p)       // ...and put it back
		return p
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}
