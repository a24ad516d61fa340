//go:build !linux

package rtspserve

import "time"

// threadCPU: no per-thread CPU time here (the benchmark reports 0).
func threadCPU() time.Duration { return 0 }
