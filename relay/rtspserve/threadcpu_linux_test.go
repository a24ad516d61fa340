package rtspserve

import (
	"syscall"
	"time"
)

// threadCPU is the calling thread's CPU time (user and system): with the
// goroutine locked to its thread, what a benchmark's writes cost whether
// or not they waited for the readers.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
