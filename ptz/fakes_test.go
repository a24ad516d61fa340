package ptz

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"cordon/auth/audit"
)

// fakeClock runs AfterFunc callbacks synchronously in Advance, in due order.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time forward, firing due timers one by one.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(end) {
				next = t
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
			}
			break
		}
		if next == nil {
			c.now = end
			c.timers = compact(c.timers)
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

func compact(ts []*fakeTimer) []*fakeTimer {
	out := ts[:0]
	for _, t := range ts {
		if !t.stopped {
			out = append(out, t)
		}
	}
	return out
}

// Set moves time without firing timers (a timer that is late).
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// fakeCamera records calls and checks they never overlap.
type fakeCamera struct {
	mu       sync.Mutex
	calls    []string
	inFlight atomic.Int32
	overlap  atomic.Bool
	fail     error
	presets  []Preset
	status   CameraStatus
	statusN  int
	block    chan struct{} // when set, the next command waits on it (or its context)
	entered  chan string   // when set, receives each call as it starts
	noPreset bool
	capsFail error
	capsN    int
}

// enter records call, then waits on block (a slow camera) or ctx, as a
// real client's HTTP request would.
func (f *fakeCamera) enter(ctx context.Context, call string) error {
	if f.inFlight.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.inFlight.Add(-1)
	f.mu.Lock()
	f.calls = append(f.calls, call)
	block, entered := f.block, f.entered
	f.block = nil
	f.mu.Unlock()
	if entered != nil {
		entered <- call
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *fakeCamera) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeCamera) Capabilities(context.Context) (Capabilities, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capsN++
	if f.capsFail != nil {
		return Capabilities{}, f.capsFail
	}
	return Capabilities{PanTilt: true, Zoom: true, Presets: !f.noPreset, Home: true, Status: true, MaxPresets: 8}, nil
}

func (f *fakeCamera) Presets(context.Context) ([]Preset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noPreset {
		return nil, errors.New("ActionNotSupported")
	}
	return f.presets, nil
}

func (f *fakeCamera) Status(context.Context) (CameraStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusN++
	return f.status, f.fail
}

func (f *fakeCamera) ContinuousMove(ctx context.Context, v Velocity, d time.Duration) error {
	return f.enter(ctx, fmt.Sprintf("move %.1f %.1f %.1f %v", v.Pan, v.Tilt, v.Zoom, d))
}
func (f *fakeCamera) Stop(ctx context.Context) error { return f.enter(ctx, "stop") }
func (f *fakeCamera) GotoPreset(ctx context.Context, t string) error {
	return f.enter(ctx, "preset "+t)
}
func (f *fakeCamera) GotoHome(ctx context.Context) error { return f.enter(ctx, "home") }

// auditSink keeps events in order; failing names events it refuses (as
// a full or broken audit log would).
type auditSink struct {
	mu      sync.Mutex
	events  []audit.Event
	failing map[string]bool
}

func (a *auditSink) Record(e audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failing[e.Event] {
		return errors.New("audit: writing audit.log: no space left on device")
	}
	a.events = append(a.events, e)
	return nil
}

func (a *auditSink) fail(events ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing = map[string]bool{}
	for _, e := range events {
		a.failing[e] = true
	}
}

func (a *auditSink) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

func (a *auditSink) Names() []string {
	var out []string
	for _, e := range a.Events() {
		out = append(out, e.Event+":"+e.Actor)
	}
	return out
}
