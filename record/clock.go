package record

import (
	"sync"
	"time"
)

// MaxClockOffset is how far the wall clock may drift or step from the
// recording clock before the recorder warns and re-anchors.
const MaxClockOffset = 2 * time.Second

// maxEpochs bounds the re-anchors a Clock remembers for Convert.
const maxEpochs = 64

// Clock gives recording times: the wall clock read at the anchor plus the
// monotonic time elapsed since. A wall-clock step does not move it (it
// shows as Offset) until Reanchor takes the wall clock again; the
// Recorder does that at a segment boundary (see the package doc, "Time").
type Clock struct {
	// Wall reads the system's wall clock; nil = time.Now. Tests inject a
	// clock that jumps.
	Wall func() time.Time
	// Mono returns a monotonic reading; nil = time since the Clock's first
	// use as measured by Go's monotonic clock.
	Mono func() time.Duration

	mu         sync.Mutex
	inited     bool
	anchorWall time.Time
	anchorMono time.Duration
	start      time.Time // holds Go's monotonic reading
	epoch      uint64    // number of re-anchors
	// shifts[e % maxEpochs] is the total step applied from epoch 0 to e
	shifts [maxEpochs]time.Duration
}

func (c *Clock) initLocked() {
	if c.inited {
		return
	}
	c.inited = true
	c.start = time.Now()
	c.anchorWall = c.wall()
	c.anchorMono = c.mono()
}

func (c *Clock) wall() time.Time {
	if c.Wall != nil {
		return c.Wall().UTC().Round(0)
	}
	return time.Now().UTC().Round(0)
}

func (c *Clock) mono() time.Duration {
	if c.Mono != nil {
		return c.Mono()
	}
	return time.Since(c.start)
}

// Now returns the recording time: UTC, monotonic since the anchor.
func (c *Clock) Now() time.Time {
	t, _ := c.NowEpoch()
	return t
}

// NowEpoch returns the recording time and the anchor (epoch) it was
// measured on.
func (c *Clock) NowEpoch() (time.Time, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	return c.anchorWall.Add(c.mono() - c.anchorMono), c.epoch
}

// Stamp returns the recording time, its epoch and the wall clock, read
// together (a sample's arrival).
func (c *Clock) Stamp() (time.Time, uint64, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	return c.anchorWall.Add(c.mono() - c.anchorMono), c.epoch, c.wall()
}

// Offset returns how far the wall clock is from the recording clock
// (positive: the wall clock is ahead). Zero unless the wall clock was
// stepped (or drifted) since the anchor.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	return c.wall().Sub(c.anchorWall.Add(c.mono() - c.anchorMono))
}

// Reanchor moves the recording clock onto the wall clock if, at the
// instant stamped (rec on epoch, and wall, from Stamp), they were more
// than max apart; it returns the step (new recording time minus old) and
// whether it re-anchored. Deciding on a sample's own stamps keeps the
// decision right however long the sample waited in a queue.
func (c *Clock) Reanchor(rec time.Time, epoch uint64, wall time.Time, max time.Duration) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	step := wall.Sub(c.convertLocked(rec, epoch))
	if step <= max && step >= -max {
		return step, false
	}
	c.anchorWall = c.anchorWall.Add(step)
	prev := c.shifts[c.epoch%maxEpochs]
	c.epoch++
	c.shifts[c.epoch%maxEpochs] = prev + step
	return step, true
}

// Epoch returns the number of re-anchors so far.
func (c *Clock) Epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// Convert moves t, measured on epoch, to the current anchor (what the
// current clock would have read at that instant) and returns it with the
// current epoch. Epochs older than the last maxEpochs re-anchors are
// taken as the oldest one remembered.
func (c *Clock) Convert(t time.Time, epoch uint64) (time.Time, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.convertLocked(t, epoch), c.epoch
}

func (c *Clock) convertLocked(t time.Time, epoch uint64) time.Time {
	if epoch >= c.epoch {
		return t
	}
	if c.epoch-epoch >= maxEpochs {
		epoch = c.epoch - maxEpochs + 1
	}
	return t.Add(c.shifts[c.epoch%maxEpochs] - c.shifts[epoch%maxEpochs])
}
