package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// LockoutPolicy: after Threshold failures for one key (a remote address or
// a user name), each further failure locks that key for Base doubling up
// to Max. Failures are forgotten after Decay without one.
type LockoutPolicy struct {
	Threshold int
	Base      time.Duration
	Max       time.Duration
	Decay     time.Duration
}

// DefaultLockoutPolicy: 5 failures, then 1 s doubling to 15 min; counters
// reset after 30 min without a failure.
func DefaultLockoutPolicy() LockoutPolicy {
	return LockoutPolicy{Threshold: 5, Base: time.Second, Max: 15 * time.Minute, Decay: 30 * time.Minute}
}

// maxLockoutEntries bounds the memory an attacker spraying names or
// addresses can make the limiter use.
const maxLockoutEntries = 1 << 16

type lockEntry struct {
	failures    int
	last        time.Time
	lockedUntil time.Time
}

type lockout struct {
	policy LockoutPolicy
	mu     sync.Mutex
	m      map[string]*lockEntry
}

func newLockout(p LockoutPolicy) *lockout {
	return &lockout{policy: p, m: map[string]*lockEntry{}}
}

// remaining returns how long key is still locked (0 = not locked).
func (l *lockout) remaining(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.m[key]; e != nil && now.Before(e.lockedUntil) {
		return e.lockedUntil.Sub(now)
	}
	return 0
}

// fail records a failure for key and returns the lock it now has (0 if
// none yet).
func (l *lockout) fail(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	if e == nil {
		if len(l.m) >= maxLockoutEntries {
			l.evict(now)
		}
		e = &lockEntry{}
		l.m[key] = e
	}
	if now.Sub(e.last) > l.policy.Decay {
		e.failures = 0
	}
	e.failures++
	e.last = now
	over := e.failures - l.policy.Threshold
	if over < 0 {
		return 0
	}
	d := l.policy.Max
	if over < 40 {
		d = min(l.policy.Base<<over, l.policy.Max)
	}
	e.lockedUntil = now.Add(d)
	return d
}

// reset forgets key's failures (after a success).
func (l *lockout) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// evict drops stale entries, and if none are stale the least recently
// failed one. Called with l.mu held.
func (l *lockout) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, e := range l.m {
		if now.Sub(e.last) > l.policy.Decay && !now.Before(e.lockedUntil) {
			delete(l.m, k)
			continue
		}
		if oldestKey == "" || e.last.Before(oldest) {
			oldestKey, oldest = k, e.last
		}
	}
	if len(l.m) >= maxLockoutEntries {
		delete(l.m, oldestKey)
	}
}

// addrKey is the lockout key of a remote address: the IP, with IPv6
// aggregated to its /64 (one host usually owns a whole /64).
func addrKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + clipKey(host)
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + ip.String()
}

func userKey(name string) string { return "user:" + clipKey(name) }

func clipKey(s string) string {
	if len(s) > maxNameLen {
		return s[:maxNameLen]
	}
	return s
}
