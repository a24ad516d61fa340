package main

import (
	"runtime/debug"
	"testing"
)

// serve lowers GOGC to serveGCPercent, except when the environment sets it.
func TestApplyGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	if got := applyGCPercent(func(string) string { return "" }); got != serveGCPercent {
		t.Fatalf("without GOGC: %d, want %d", got, serveGCPercent)
	}
	if now := debug.SetGCPercent(100); now != serveGCPercent {
		t.Fatalf("runtime GC percent %d, want %d", now, serveGCPercent)
	}
	env := func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}
	if got := applyGCPercent(env); got != 100 {
		t.Fatalf("with GOGC=100: %d", got)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Fatalf("GOGC=100 from the environment was overridden: %d", now)
	}
}
