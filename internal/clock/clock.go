// Package clock lets components that wait (reconnect backoff, on-demand
// linger, a stream's timeline, refusal windows) take their time from an
// injected Clock, so their tests advance a Fake instead of sleeping. It
// lives in internal/ because it serves several packages and belongs to none.
package clock

import (
	"slices"
	"sync"
	"time"
)

// Clock tells the time and makes timers. Real is the wall clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer whose C receives the time once, after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable timer. C is nil for AfterFunc timers.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; false if it already fired or
	// was stopped.
	Stop() bool
}

// Real is the wall clock.
var Real Clock = realClock{}

// Or returns c, or Real when c is nil (for optional Clock fields).
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{t: time.NewTimer(d)} }

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{t: time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Fake is a Clock that moves only when Advance is called. Timers due at or
// before the new time fire in deadline order: channel timers receive the
// fake time, AfterFunc timers run f in a new goroutine.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever a timer is added
}

// NewFake returns a Fake set to start (the zero time is replaced by a fixed
// date, so Now never returns the zero Time).
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Fake{now: start, changed: make(chan struct{})}
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	ch chan time.Time
	fn func()
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	i := slices.Index(t.f.timers, t)
	if i < 0 {
		return false
	}
	t.f.timers = slices.Delete(t.f.timers, i, i+1)
	return true
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer implements Clock.
func (f *Fake) NewTimer(d time.Duration) Timer {
	return f.add(d, make(chan time.Time, 1), nil)
}

// AfterFunc implements Clock.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	return f.add(d, nil, fn)
}

func (f *Fake) add(d time.Duration, ch chan time.Time, fn func()) *fakeTimer {
	f.mu.Lock()
	t := &fakeTimer{f: f, at: f.now.Add(d), ch: ch, fn: fn}
	f.timers = append(f.timers, t)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	if d <= 0 {
		f.Advance(0)
	}
	return t
}

// Advance moves the clock forward by d and fires the timers now due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	now := f.now
	var due []*fakeTimer
	keep := f.timers[:0]
	for _, t := range f.timers {
		if !t.at.After(now) {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	clear(f.timers[len(keep):])
	f.timers = keep
	f.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		if t.fn != nil {
			go t.fn()
		} else {
			t.ch <- now
		}
	}
}

// Timers returns how many timers are waiting.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// Next returns the duration until the earliest waiting timer, and false
// when none waits.
func (f *Fake) Next() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return 0, false
	}
	first := f.timers[0].at
	for _, t := range f.timers[1:] {
		if t.at.Before(first) {
			first = t.at
		}
	}
	return first.Sub(f.now), true
}

// WaitTimers blocks until at least n timers are waiting or done closes;
// false when done closed first. Tests use it to know a component armed its
// timer before they Advance.
func (f *Fake) WaitTimers(n int, done <-chan struct{}) bool {
	for {
		f.mu.Lock()
		have, ch := len(f.timers), f.changed
		f.mu.Unlock()
		if have >= n {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}
