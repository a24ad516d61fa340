package record

import (
	"sync"
	"time"
)

// Clock gives recording times: the wall clock read once at the anchor plus
// the monotonic time elapsed since. Wall-clock steps while running do not
// move it (they show as Offset); a new Clock (a restart) takes the new
// wall clock.
type Clock struct {
	// Wall reads the system's wall clock; nil = time.Now. Tests inject a
	// clock that jumps.
	Wall func() time.Time
	// Mono returns a monotonic reading; nil = time since the anchor as
	// measured by Go's monotonic clock.
	Mono func() time.Duration

	once       sync.Once
	anchorWall time.Time
	anchorMono time.Duration
	start      time.Time // holds Go's monotonic reading
}

func (c *Clock) init() {
	c.once.Do(func() {
		c.start = time.Now()
		c.anchorWall = c.wall()
		c.anchorMono = c.mono()
	})
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
	c.init()
	return c.anchorWall.Add(c.mono() - c.anchorMono)
}

// Offset returns how far the wall clock is from the recording clock
// (positive: the wall clock is ahead). Zero unless the wall clock was
// stepped (or drifted) since the anchor.
func (c *Clock) Offset() time.Duration {
	c.init()
	return c.wall().Sub(c.Now())
}
