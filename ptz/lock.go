package ptz

import (
	"context"
	"fmt"
	"time"

	"cordon/auth/audit"
)

// decide applies the lock rules for one command of ctl and returns the
// session the command runs under and its generation. Granting control
// (ptz_start, and ptz_takeover) is refused with ErrAudit unless its lines
// are recorded; ending control always happens (its line is logged when it
// cannot be written). Only c.dmu is held while audit lines are written.
func (c *Control) decide(ctl Controller) (*session, uint64, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, 0, ErrClosed
	}
	now := c.Clock.Now()
	var ended []audit.Event
	if c.cur != nil && !now.Before(c.cur.last.Add(c.Hold)) {
		ended = append(ended, c.endEvent(now, "expired"))
		c.endSessionLocked()
	}
	prev := c.cur
	switch {
	case prev != nil && prev.ctl.Name == ctl.Name:
		sess, gen := c.extendLocked(ctl, now)
		c.mu.Unlock()
		return sess, gen, nil
	case prev != nil && ctl.Priority <= prev.ctl.Priority:
		err := &ConflictError{Holder: prev.ctl.Name, Until: prev.last.Add(c.Hold)}
		c.mu.Unlock()
		return nil, 0, err
	}
	var grant []audit.Event
	if prev != nil {
		grant = append(grant, c.endEvent(now, "taken over by "+ctl.Name),
			c.event(audit.PTZTakeover, ctl, fmt.Sprintf("from %s (priority %d) to %s (priority %d)",
				prev.ctl.Name, prev.ctl.Priority, ctl.Name, ctl.Priority)))
	}
	grant = append(grant, c.event(audit.PTZStart, ctl, fmt.Sprintf("priority %d", ctl.Priority)))
	c.mu.Unlock()

	c.record(ended)
	written, err := c.recordAll(grant)
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev != nil && written > 0 && c.cur == prev {
		// the previous holder's ptz_end is on record: its control ends,
		// whatever happens to the new holder's lines
		c.endSessionLocked()
	}
	if err != nil {
		c.log.Error("audit write failed: PTZ control refused", "principal", ctl.Name, "err", err)
		return nil, 0, fmt.Errorf("%w: %v", ErrAudit, err)
	}
	if prev != nil {
		c.Metrics.takeover(c.CameraID)
	}
	c.cur = &session{ctl: ctl, start: now}
	sess, gen := c.extendLocked(ctl, now)
	return sess, gen, nil
}

// extendLocked counts a command of the holder and restarts the hold.
func (c *Control) extendLocked(ctl Controller, now time.Time) (*session, uint64) {
	c.cur.ctl = ctl
	c.cur.last = now
	c.cur.commands++
	c.gen++
	gen := c.gen
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = c.Clock.AfterFunc(c.Hold, func() { c.expire(gen) })
	return c.cur, gen
}

// endEvent is the ptz_end line of the current session.
func (c *Control) endEvent(now time.Time, reason string) audit.Event {
	s := c.cur
	e := c.event(audit.PTZEnd, s.ctl, fmt.Sprintf("commands=%d duration_s=%.1f reason=%s",
		s.commands, now.Sub(s.start).Seconds(), reason))
	e.DurationS = now.Sub(s.start).Seconds()
	return e
}

// endSessionLocked ends the current session: its timers stop, its command
// in flight is cancelled, and a Stop is owed to the camera.
func (c *Control) endSessionLocked() {
	if c.inflight != nil && c.inflight.sess == c.cur {
		c.inflight.cancel()
	}
	c.cur = nil
	c.gen++
	c.needStop = true
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if c.moveStop != nil {
		c.moveStop.Stop()
		c.moveStop = nil
	}
}

func (c *Control) event(name string, ctl Controller, detail string) audit.Event {
	return audit.Event{Event: name, Actor: ctl.Name, Camera: c.CameraID, Remote: ctl.Remote, Protocol: ctl.Protocol, Detail: detail}
}

// record writes lines that end control: a failure is logged, never
// refused (control ends anyway).
func (c *Control) record(events []audit.Event) {
	if c.Auditor == nil {
		return
	}
	for _, e := range events {
		if err := c.Auditor.Record(e); err != nil {
			c.log.Error("audit write failed", "event", e.Event, "err", err)
		}
	}
}

// recordAll writes lines in order up to the first failure; it returns how
// many were written.
func (c *Control) recordAll(events []audit.Event) (int, error) {
	if c.Auditor == nil {
		return len(events), nil
	}
	for i, e := range events {
		if err := c.Auditor.Record(e); err != nil {
			return i, err
		}
	}
	return len(events), nil
}

// endControl ends the current session when end(session) says so (called
// with c.mu held) and writes its ptz_end; the owed Stop is left to the
// caller. It reports whether a session ended.
func (c *Control) endControl(end func(*session) bool, reason string) bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.mu.Lock()
	if c.cur == nil || !end(c.cur) {
		c.mu.Unlock()
		return false
	}
	e := c.endEvent(c.Clock.Now(), reason)
	c.endSessionLocked()
	c.mu.Unlock()
	c.record([]audit.Event{e})
	return true
}

// stopNow sends the owed Stop once the command slot is free, or from a
// goroutine when ctx ends first.
func (c *Control) stopNow(ctx context.Context) {
	if err := c.acquire(ctx); err != nil {
		c.stopLater()
		return
	}
	defer c.release()
	c.flushStop()
}

// Release ends whoever holds control (an administrator's "release PTZ");
// by names the administrator in the ptz_end line. It reports whether
// someone held control. A command of the holder in flight is cancelled;
// Stop goes to the camera (in the background if ctx ends first).
func (c *Control) Release(ctx context.Context, by string) (bool, error) {
	if !c.endControl(func(*session) bool { return true }, "released by "+by) {
		return false, nil
	}
	c.stopNow(ctx)
	return true, nil
}

// EndPrincipal ends control if name holds it (its session ended, it
// logged out, or its rights changed); reason goes into ptz_end.
func (c *Control) EndPrincipal(ctx context.Context, name, reason string) (bool, error) {
	if !c.endControl(func(s *session) bool { return s.ctl.Name == name }, reason) {
		return false, nil
	}
	c.stopNow(ctx)
	return true, nil
}

// Holder returns who holds control and until when ("" when nobody).
func (c *Control) Holder() (Controller, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || !c.Clock.Now().Before(c.cur.last.Add(c.Hold)) {
		return Controller{}, time.Time{}
	}
	return c.cur.ctl, c.cur.last.Add(c.Hold)
}
