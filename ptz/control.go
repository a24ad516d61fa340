package ptz

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

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
	capsFailureTTL        = 10 * time.Second
	maxLastErrorLen       = 300
)

// Control is the PTZ lock and command path of one camera. Set the fields,
// call Initialize, then Do / Status / Release / EndPrincipal from any
// goroutine; Close when the camera goes away.
//
// Lock decisions (and their audit lines) are taken apart from camera
// commands: a slow or hostile camera never delays a decision, and when
// control moves, the previous holder's command in flight is cancelled so
// the new holder's Stop and command go out at once.
type Control struct {
	// CameraID names the camera in audit lines, logs and metrics.
	CameraID string
	// Camera is the camera's PTZ (camnet/onvif).
	Camera Camera
	// Auditor receives ptz_start, ptz_end and ptz_takeover (nil = none).
	// Control is granted only once its ptz_start (and ptz_takeover) line
	// is recorded: an audit failure refuses the command (ErrAudit, 503).
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
	dmu     sync.Mutex    // serializes lock decisions and their audit lines; never held over a camera call
	sem     chan struct{} // the camera command slot: one camera call at a time
	wg      sync.WaitGroup
	closeCh chan struct{}

	mu        sync.Mutex // the state below; never held over a camera call or an audit write
	closed    bool
	cur       *session
	gen       uint64 // bumped by every decision and every end of control
	needStop  bool   // control moved or ended: Stop goes out before the next command
	inflight  *inflight
	expiry    Timer
	moveStop  Timer
	limiters  map[string]*limiter
	lastErr   string
	lastErrAt time.Time
	caps      *Capabilities
	capsErrAt time.Time // when the last capabilities call failed
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

// inflight is the camera command running for a session.
type inflight struct {
	sess   *session
	cancel context.CancelFunc
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
// commands. It cancels a command in progress and waits for it.
func (c *Control) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.closeCh)
	c.mu.Unlock()
	c.endControl(func(*session) bool { return true }, "closed")
	c.sem <- struct{}{}
	c.flushStop()
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
	sess, gen, err := c.decide(ctl)
	if err != nil {
		c.stopIfOwed(ctx) // a refused takeover may still have ended the previous control
		return err
	}
	if err := c.acquire(ctx); err != nil {
		c.stopLater()
		return err
	}
	defer c.release()
	c.flushStop()
	cctx, done, err := c.begin(ctx, sess, gen)
	if err != nil || cctx == nil {
		return err
	}
	err = c.run(cctx, cmd, gen)
	if lost := done(); lost != nil && err != nil {
		return lost // cancelled because control moved on: say so
	}
	return err
}

// begin checks, with the command slot held, that the decision for sess
// still stands and registers the command as in flight. A nil context and
// nil error: a newer command of the same holder superseded this one (it
// is dropped). done unregisters and returns the error to give if control
// moved on meanwhile.
func (c *Control) begin(ctx context.Context, sess *session, gen uint64) (context.Context, func() error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, nil, ErrClosed
	case c.cur != sess:
		return nil, nil, c.lostLocked()
	case c.gen != gen:
		return nil, nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.CommandTimeout)
	inf := &inflight{sess: sess, cancel: cancel}
	c.inflight = inf
	return cctx, func() error {
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.inflight == inf {
			c.inflight = nil
		}
		if c.cur != sess {
			return c.lostLocked()
		}
		return nil
	}, nil
}

// lostLocked is the error of a command whose control ended before it ran.
func (c *Control) lostLocked() error {
	if c.closed {
		return ErrClosed
	}
	if c.cur != nil {
		return &ConflictError{Holder: c.cur.ctl.Name, Until: c.cur.last.Add(c.Hold)}
	}
	return ErrControlLost
}

// run sends the command to the camera (the command slot is held).
func (c *Control) run(ctx context.Context, cmd Command, gen uint64) error {
	var op string
	var err error
	switch {
	case cmd.Move != nil:
		op = "ContinuousMove"
		d := c.moveTimeout(cmd.TimeoutMS)
		err = c.Camera.ContinuousMove(ctx, *cmd.Move, d)
		if err == nil {
			c.scheduleMoveStop(gen, d)
		}
	case cmd.Stop:
		op = "Stop"
		err = c.Camera.Stop(ctx)
	case cmd.Preset != "":
		op = "GotoPreset"
		err = c.Camera.GotoPreset(ctx, cmd.Preset)
	case cmd.Home:
		op = "GotoHomePosition"
		err = c.Camera.GotoHome(ctx)
	}
	c.mu.Lock()
	c.status = nil // the next Status asks the camera
	c.mu.Unlock()
	if err != nil {
		if !errors.Is(ctx.Err(), context.Canceled) {
			c.noteError(op, err)
		}
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
	c.moveStop = c.Clock.AfterFunc(d, func() { c.moveTimedOut(gen) })
}

// moveTimedOut stops the camera if no command came since gen.
func (c *Control) moveTimedOut(gen uint64) {
	if !c.enterTimer() {
		return
	}
	defer c.wg.Done()
	if c.acquire(context.Background()) != nil {
		return // closed
	}
	defer c.release()
	c.flushStop()
	c.mu.Lock()
	stale := c.gen != gen || c.closed
	c.mu.Unlock()
	if !stale {
		c.cameraStop("move timeout")
	}
}

// expire ends control Hold after the last command of generation gen.
func (c *Control) expire(gen uint64) {
	if !c.enterTimer() {
		return
	}
	defer c.wg.Done()
	// c.mu is held while the predicate runs
	if !c.endControl(func(*session) bool { return c.gen == gen }, "expired") {
		return
	}
	if c.acquire(context.Background()) != nil {
		return // Close sends the Stop
	}
	defer c.release()
	c.flushStop()
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

// flushStop sends the Stop owed since control moved or ended (command
// slot held).
func (c *Control) flushStop() {
	c.mu.Lock()
	owed := c.needStop
	c.needStop = false
	c.mu.Unlock()
	if owed {
		c.cameraStop("control moved or ended")
	}
}

// stopIfOwed sends the owed Stop, if any (see stopNow).
func (c *Control) stopIfOwed(ctx context.Context) {
	c.mu.Lock()
	owed := c.needStop
	c.mu.Unlock()
	if owed {
		c.stopNow(ctx)
	}
}

// stopLater sends the owed Stop from a goroutine that waits for the
// command slot (when the caller could not get it; Close sends it anyway).
func (c *Control) stopLater() {
	c.mu.Lock()
	owed := c.needStop && !c.closed
	if owed {
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if !owed {
		return
	}
	go func() {
		defer c.wg.Done()
		if c.acquire(context.Background()) != nil {
			return // closed
		}
		defer c.release()
		c.flushStop()
	}()
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
