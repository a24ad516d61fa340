package camera

import (
	"math/rand/v2"
	"time"
)

// backoff doubles from min to max; reset starts over.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // 0: next is min
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// jitter spreads retries of many cameras: a delay in [3/4 b, b].
func jitter(b time.Duration) time.Duration {
	q := int64(b / 4)
	if q <= 0 {
		return b
	}
	return b - time.Duration(rand.Int64N(q+1))
}
