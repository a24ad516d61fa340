package ptz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"cordon/auth/audit"

	"golang.org/x/time/rate"
)

// Defaults of a Control's limits.
const (
	DefaultHold           = 10 * time.Second
	DefaultMoveTimeout    = time.Second
	DefaultMinMoveTimeout = 100 * time.Millisecond
	DefaultMaxMoveTimeout = 5 * time.Second
	DefaultCommandTimeout = 5 * time.Second
	DefaultRate           = 10 // commands per second per principal
	DefaultBurst          = 20
	maxLimiters           = 1024
	presetCacheTTL        = 30 * time.Second
	statusCacheTTL        = 250 * time.Millisecond
	maxLastErrorLen       = 300
)

// Control is the PTZ lock and command path of one camera. Set the fields,
// call Initialize, then Do / Status / Release / EndPrincipal from any
// goroutine; Close when the camera goes away.
type Control struct {
	// CameraID names the camera in audit lines, logs and metrics.
	CameraID string
	// Camera is the camera's PTZ (camnet/onvif).
	Camera Camera
	// Auditor receives ptz_start, ptz_end and ptz_takeover (nil = none).
	Auditor Auditor
	Logger  *slog.Logger
	Metrics *Metrics
	// Clock (nil = the wall clock).
	Clock Clock
	// Hold is how long control stays with the last commander (10 s).
	Hold time.Duration
	// DefaultMoveTimeout applies to a move without timeout_ms (1 s);
	// timeout_ms is clamped to MinMoveTimeout..MaxMoveTimeout (0.1..5 s).
	DefaultMoveTimeout, MinMoveTimeout, MaxMoveTimeout time.Duration
	// CommandTimeout bounds each camera call (5 s).
	CommandTimeout time.Duration
	// Rate and Burst limit commands per principal (10/s, burst 20).
	Rate  float64
	Burst int

	log     *slog.Logger
	sem     chan struct{} // serializes lock decisions and camera commands
	wg      sync.WaitGroup
	closeCh chan struct{}

	mu        sync.Mutex
	closed    bool
	cur       *session
	gen       uint64 // bumped by every command and every end of control
	expiry    Timer
	moveStop  Timer
	limiters  map[string]*limiter
	lastErr   string
	lastErrAt time.Time
	caps      *Capabilities
	presets   []Preset
	presetsAt time.Time
	status    *CameraStatus
	statusAt  time.Time
}

type session struct {
	ctl      Controller
	start    time.Time
	last     time.Time
	commands int
}

type limiter struct {
	l    *rate.Limiter
	seen time.Time
}

// Initialize checks the fields and applies the defaults.
func (c *Control) Initialize() error {
	if c.Camera == nil {
		return errors.New("ptz: Camera is nil")
	}
	if c.CameraID == "" {
		return errors.New("ptz: CameraID is empty")
	}
	c.log = c.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("camera", c.CameraID, "component", "ptz")
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	setDefault(&c.Hold, DefaultHold)
	setDefault(&c.DefaultMoveTimeout, DefaultMoveTimeout)
	setDefault(&c.MinMoveTimeout, DefaultMinMoveTimeout)
	setDefault(&c.MaxMoveTimeout, DefaultMaxMoveTimeout)
	setDefault(&c.CommandTimeout, DefaultCommandTimeout)
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.MinMoveTimeout > c.MaxMoveTimeout {
		return errors.New("ptz: MinMoveTimeout above MaxMoveTimeout")
	}
	c.sem = make(chan struct{}, 1)
	c.closeCh = make(chan struct{})
	c.limiters = make(map[string]*limiter)
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Close ends control (ptz_end, Stop to the camera) and refuses further
// commands. It waits for a command in progress.
func (c *Control) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.closeCh)
	c.mu.Unlock()
	c.sem <- struct{}{}
	c.endControl("closed", true)
	<-c.sem
	c.wg.Wait()
}

// acquire takes the command slot, or fails when ctx ends or the Control
// closes.
func (c *Control) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closeCh:
		return ErrClosed
	}
}

func (c *Control) release() { <-c.sem }

// Do runs one command for ctl: lock decision, then the camera call.
func (c *Control) Do(ctx context.Context, ctl Controller, cmd Command) error {
	err := c.do(ctx, ctl, cmd)
	c.Metrics.command(c.CameraID, err)
	return err
}

func (c *Control) do(ctx context.Context, ctl Controller, cmd Command) error {
	if err := cmd.Validate(); err != nil {
		return err
	}
	if ctl.Name == "" {
		return invalid("PTZ command without a principal")
	}
	if ctl.Priority <= 0 {
		return ErrNoPriority
	}
	if !c.allow(ctl.Name) {
		return ErrRateLimited
	}
	if cmd.Preset != "" {
		if err := c.checkPreset(ctx, cmd.Preset); err != nil {
			return err
		}
	}
	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	events, stop, gen, err := c.take(ctl)
	c.record(events)
	if err != nil {
		return err
	}
	if stop {
		c.cameraStop("control moved")
	}
	return c.run(ctx, cmd, gen)
}

// take applies the lock rules for one command of ctl; it returns the audit
// events to write, whether the camera must be stopped first (control moved
// or lapsed), and the command's generation.
func (c *Control) take(ctl Controller) ([]audit.Event, bool, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, 0, ErrClosed
	}
	now := c.Clock.Now()
	var events []audit.Event
	stop := false
	if c.cur != nil && !now.Before(c.cur.last.Add(c.Hold)) {
		events = append(events, c.endLocked(now, "expired"))
		stop = true
	}
	if c.cur != nil && c.cur.ctl.Name != ctl.Name {
		if ctl.Priority <= c.cur.ctl.Priority {
			return events, stop, 0, &ConflictError{Holder: c.cur.ctl.Name, Until: c.cur.last.Add(c.Hold)}
		}
		prev := c.cur.ctl
		events = append(events, c.endLocked(now, "taken over by "+ctl.Name))
		events = append(events, c.event(audit.PTZTakeover, ctl,
			fmt.Sprintf("from %s (priority %d) to %s (priority %d)", prev.Name, prev.Priority, ctl.Name, ctl.Priority)))
		c.Metrics.takeover(c.CameraID)
		stop = true
	}
	if c.cur == nil {
		c.cur = &session{ctl: ctl, start: now}
		events = append(events, c.event(audit.PTZStart, ctl, fmt.Sprintf("priority %d", ctl.Priority)))
	}
	c.cur.ctl = ctl
	c.cur.last = now
	c.cur.commands++
	c.gen++
	gen := c.gen
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = c.Clock.AfterFunc(c.Hold, func() { c.expire(gen) })
	return events, stop, gen, nil
}

// endLocked ends the current session and returns its ptz_end event.
func (c *Control) endLocked(now time.Time, reason string) audit.Event {
	s := c.cur
	c.cur = nil
	c.gen++
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if c.moveStop != nil {
		c.moveStop.Stop()
		c.moveStop = nil
	}
	e := c.event(audit.PTZEnd, s.ctl, fmt.Sprintf("commands=%d duration_s=%.1f reason=%s",
		s.commands, now.Sub(s.start).Seconds(), reason))
	e.DurationS = now.Sub(s.start).Seconds()
	return e
}

func (c *Control) event(name string, ctl Controller, detail string) audit.Event {
	return audit.Event{Event: name, Actor: ctl.Name, Camera: c.CameraID, Remote: ctl.Remote, Protocol: ctl.Protocol, Detail: detail}
}

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

// run sends the command to the camera (the command slot is held).
func (c *Control) run(ctx context.Context, cmd Command, gen uint64) error {
	cctx, cancel := context.WithTimeout(ctx, c.CommandTimeout)
	defer cancel()
	var op string
	var err error
	switch {
	case cmd.Move != nil:
		op = "ContinuousMove"
		d := c.moveTimeout(cmd.TimeoutMS)
		err = c.Camera.ContinuousMove(cctx, *cmd.Move, d)
		if err == nil {
			c.scheduleMoveStop(gen, d)
		}
	case cmd.Stop:
		op = "Stop"
		err = c.Camera.Stop(cctx)
	case cmd.Preset != "":
		op = "GotoPreset"
		err = c.Camera.GotoPreset(cctx, cmd.Preset)
	case cmd.Home:
		op = "GotoHomePosition"
		err = c.Camera.GotoHome(cctx)
	}
	c.mu.Lock()
	c.status = nil // the next Status asks the camera
	c.mu.Unlock()
	if err != nil {
		c.noteError(op, err)
		return &CameraError{Op: op, Err: err}
	}
	return nil
}

func (c *Control) moveTimeout(ms int) time.Duration {
	if ms == 0 {
		return c.DefaultMoveTimeout
	}
	d := time.Duration(ms) * time.Millisecond
	return min(max(d, c.MinMoveTimeout), c.MaxMoveTimeout)
}

// scheduleMoveStop sends Stop when a move's timeout elapses without a newer
// command: the camera's ONVIF Timeout should already have stopped it, but
// a camera that ignores Timeout must not keep moving.
func (c *Control) scheduleMoveStop(gen uint64, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moveStop != nil {
		c.moveStop.Stop()
	}
	c.moveStop = c.Clock.AfterFunc(d, func() { c.timerStop(gen, "") })
}

// expire ends control Hold after the last command of generation gen.
func (c *Control) expire(gen uint64) { c.timerStop(gen, "expired") }

// timerStop runs a timer's work if no command came since gen: end control
// (reason != "") and/or Stop the camera.
func (c *Control) timerStop(gen uint64, reason string) {
	if !c.enterTimer() {
		return
	}
	defer c.wg.Done()
	select {
	case c.sem <- struct{}{}:
	case <-c.closeCh:
		return
	}
	defer c.release()
	c.mu.Lock()
	if c.gen != gen || c.closed {
		c.mu.Unlock()
		return
	}
	var events []audit.Event
	if reason != "" && c.cur != nil {
		events = append(events, c.endLocked(c.Clock.Now(), reason))
	}
	c.mu.Unlock()
	c.record(events)
	c.cameraStop(map[bool]string{true: "control " + reason, false: "move timeout"}[reason != ""])
}

func (c *Control) enterTimer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// cameraStop sends Stop (command slot held); a failure is the camera's
// last error.
func (c *Control) cameraStop(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.CommandTimeout)
	defer cancel()
	if err := c.Camera.Stop(ctx); err != nil {
		c.noteError("Stop", err)
		c.log.Warn("PTZ stop failed", "why", why, "err", err)
	}
}

// endControl ends the current session (if any) for reason and stops the
// camera (command slot held).
func (c *Control) endControl(reason string, stop bool) bool {
	c.mu.Lock()
	if c.cur == nil {
		c.mu.Unlock()
		return false
	}
	e := c.endLocked(c.Clock.Now(), reason)
	c.mu.Unlock()
	c.record([]audit.Event{e})
	if stop {
		c.cameraStop(reason)
	}
	return true
}

// Release ends whoever holds control (an administrator's "release PTZ");
// by names the administrator in the ptz_end line. It reports whether
// someone held control.
func (c *Control) Release(ctx context.Context, by string) (bool, error) {
	if err := c.acquire(ctx); err != nil {
		return false, err
	}
	defer c.release()
	return c.endControl("released by "+by, true), nil
}

// EndPrincipal ends control if name holds it (its session ended, it
// logged out, or its rights changed); reason goes into ptz_end.
func (c *Control) EndPrincipal(ctx context.Context, name, reason string) (bool, error) {
	if err := c.acquire(ctx); err != nil {
		return false, err
	}
	defer c.release()
	c.mu.Lock()
	held := c.cur != nil && c.cur.ctl.Name == name
	c.mu.Unlock()
	if !held {
		return false, nil
	}
	return c.endControl(reason, true), nil
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

func (c *Control) noteError(op string, err error) {
	msg := op + ": " + err.Error()
	if len(msg) > maxLastErrorLen {
		msg = msg[:maxLastErrorLen] + "…"
	}
	c.mu.Lock()
	c.lastErr, c.lastErrAt = msg, c.Clock.Now()
	c.mu.Unlock()
}

// allow applies the per-principal rate limit.
func (c *Control) allow(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Clock.Now()
	l := c.limiters[name]
	if l == nil {
		if len(c.limiters) >= maxLimiters {
			for k, v := range c.limiters {
				if now.Sub(v.seen) > time.Minute {
					delete(c.limiters, k)
				}
			}
		}
		if len(c.limiters) >= maxLimiters {
			return false
		}
		l = &limiter{l: rate.NewLimiter(rate.Limit(c.Rate), c.Burst)}
		c.limiters[name] = l
	}
	l.seen = now
	return l.l.AllowN(now, 1)
}
