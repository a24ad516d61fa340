package camnet

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a per-source-address token bucket with a bounded table. When
// the table is full, idle entries are evicted; if none is idle, the oldest
// entry (by last use) is evicted, so memory stays bounded even if a spoofing
// host sends from many addresses.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, maxEntries int) *limiter {
	if maxEntries <= 0 {
		maxEntries = 4096
	}
	return &limiter{rate: rate, burst: float64(burst), max: maxEntries, buckets: map[netip.Addr]*bucket{}}
}

// allow takes one token for addr at time now.
func (l *limiter) allow(addr netip.Addr, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[addr] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * l.rate
		if b.tokens > l.burst {
			b.tokens = l.burst
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict removes buckets that have refilled completely (idle sources); if
// none has, it removes the least recently used one. Called with mu held.
func (l *limiter) evict(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	var oldest netip.Addr
	var oldestT time.Time
	for a, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, a)
			continue
		}
		if oldestT.IsZero() || b.last.Before(oldestT) {
			oldest, oldestT = a, b.last
		}
	}
	if len(l.buckets) >= l.max {
		delete(l.buckets, oldest)
	}
}

func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
