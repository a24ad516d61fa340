// Package ratelimit is cordon's one token-bucket limiter per source (WHEP
// requests per client address, DNS and NTP queries per camera address).
// Its table is bounded: an attacker sending from many addresses evicts
// idle entries first, then the least recently used, never grows memory. It
// lives in internal/ because several packages use it and none owns it.
package ratelimit

import (
	"sync"
	"time"
)

// DefaultMaxKeys bounds the table when MaxKeys is 0.
const DefaultMaxKeys = 4096

// Limiter is a token bucket per key. Rate <= 0 allows everything.
type Limiter[K comparable] struct {
	Rate    float64 // tokens per second
	Burst   int     // bucket size
	MaxKeys int     // table bound; 0 = DefaultMaxKeys

	mu      sync.Mutex
	buckets map[K]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter of rate tokens a second, burst deep, for at most
// maxKeys keys (0 = DefaultMaxKeys).
func New[K comparable](rate float64, burst, maxKeys int) *Limiter[K] {
	return &Limiter[K]{Rate: rate, Burst: burst, MaxKeys: maxKeys}
}

// Allow takes a token for key at now; when none is left it returns false
// and how long until one is.
func (l *Limiter[K]) Allow(key K, now time.Time) (bool, time.Duration) {
	if l == nil || l.Rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[K]*bucket{}
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys() {
			l.evict(now)
		}
		b = &bucket{tokens: float64(l.Burst), last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+el*l.Rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
}

func (l *Limiter[K]) maxKeys() int {
	if l.MaxKeys <= 0 {
		return DefaultMaxKeys
	}
	return l.MaxKeys
}

// evict removes the buckets that have refilled (idle sources behave like
// new ones); if none has, the least recently used one. Called under mu.
func (l *Limiter[K]) evict(now time.Time) {
	full := time.Duration(float64(l.Burst) / l.Rate * float64(time.Second))
	var oldest K
	var oldestT time.Time
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
			continue
		}
		if oldestT.IsZero() || b.last.Before(oldestT) {
			oldest, oldestT = k, b.last
		}
	}
	if len(l.buckets) >= l.maxKeys() {
		delete(l.buckets, oldest)
	}
}

// Len returns how many keys the table holds.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
