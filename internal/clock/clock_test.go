package clock

import (
	"testing"
	"time"
)

func TestFakeFiresDueTimersInOrder(t *testing.T) {
	f := NewFake(time.Time{})
	start := f.Now()
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	fired := make(chan string, 2)
	f.AfterFunc(1500*time.Millisecond, func() { fired <- "func" })
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true then false")
	}
	if d, ok := f.Next(); !ok || d != time.Second {
		t.Fatalf("Next = %v %v", d, ok)
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-b.C():
		t.Fatal("fired early")
	default:
	}
	f.Advance(time.Millisecond)
	if got := <-b.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("b fired at %v", got.Sub(start))
	}
	f.Advance(time.Second)
	<-a.C()
	if <-fired != "func" {
		t.Fatal("AfterFunc did not run")
	}
	if f.Timers() != 0 {
		t.Fatalf("%d timers left", f.Timers())
	}
}

func TestFakeWaitTimers(t *testing.T) {
	f := NewFake(time.Time{})
	go f.NewTimer(time.Minute)
	if !f.WaitTimers(1, nil) {
		t.Fatal("WaitTimers")
	}
	done := make(chan struct{})
	close(done)
	if f.WaitTimers(2, done) {
		t.Fatal("WaitTimers returned true without a second timer")
	}
}

func TestRealClock(t *testing.T) {
	c := Or(nil)
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	ran := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(ran) })
	<-ran
	if c.Now().IsZero() {
		t.Fatal("zero time")
	}
}
