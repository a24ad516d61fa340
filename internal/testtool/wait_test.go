package testtool

import (
	"runtime"
	"testing"
	"time"
)

func TestWaitForAndRecv(t *testing.T) {
	n := 0
	WaitFor(t, time.Second, "three checks", func() bool { n++; return n >= 3 })
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, ch, time.Second, "a value"); v != 7 {
		t.Fatal(v)
	}
	// failures are reported through t: check with a recorder
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Recv(ft, make(chan int), 10*time.Millisecond, "nothing")
	}()
	<-done
	if !ft.failed {
		t.Fatal("Recv did not fail on timeout")
	}
}

// fatalRecorder records Fatalf instead of stopping the test (Recv runs in
// its own goroutine, which Goexit ends).
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}
