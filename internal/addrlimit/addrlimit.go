// Package addrlimit is a per-client-address token bucket with a bounded,
// least-recently-used table, shared by the doors that anyone can knock on
// without credentials (the ONVIF device face, the OIDC sign-in start).
//
// Addresses are keyed the way an attacker's reach is counted: an IPv4
// address by itself, an IPv6 address by its /64 (one subscriber or host
// typically owns a whole /64, so keying by the full address would give an
// attacker 2^64 buckets). When the table is full, the bucket used least
// recently is forgotten; a newcomer is never refused because of how many
// others there are, so an attacker with many addresses cannot lock real
// clients out (it can at most make an idle client start again with a full
// bucket, which changes nothing for that client).
//
// It lives in internal because it is a mechanism several packages share
// and none owns.
package addrlimit

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultMax is the table size when New is given max <= 0.
const DefaultMax = 4096

// Key returns the limiting key of a client address ("ip", "ip:port" or
// "[ipv6]:port"): the IPv4 address (IPv4-mapped IPv6 unmapped), or the
// IPv6 /64 prefix. Anything that is not an IP address is its own key,
// clipped to 64 bytes.
func Key(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > 64 {
			host = host[:64]
		}
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Limiter is a token bucket per Key, at most max buckets. Safe for
// concurrent use.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time

	mu  sync.Mutex
	m   map[string]*list.Element
	lru list.List // front = most recently used; values are *bucket
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// New returns a limiter of rate tokens per second with the given burst,
// keeping at most max buckets (<= 0: DefaultMax); now is the clock (nil =
// time.Now). A rate <= 0 allows everything.
func New(rate float64, burst, max int, now func() time.Time) *Limiter {
	if max <= 0 {
		max = DefaultMax
	}
	if burst < 1 {
		burst = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: rate, burst: float64(burst), max: max, now: now, m: map[string]*list.Element{}}
}

// Allow takes one token from remote's bucket and reports whether there
// was one.
func (l *Limiter) Allow(remote string) bool {
	if l.rate <= 0 {
		return true
	}
	key := Key(remote)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.m[key]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
		if el := now.Sub(b.last).Seconds(); el > 0 {
			b.tokens = min(l.burst, b.tokens+el*l.rate)
			b.last = now
		}
	} else {
		for len(l.m) >= l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.m[key] = l.lru.PushFront(b)
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
