package auth

import (
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// LockoutPolicy: after Threshold failures for one key, each further
// failure locks that key for Base doubling up to Max. Failures are
// forgotten after Decay without one.
//
// Keys are a remote address (all names tried from it) and a (name,
// address) pair. There is deliberately no key for a name alone: failures
// from one address must never refuse correct credentials from another
// (anyone could lock anyone out). A distributed guesser is slowed by the
// per-address keys and by the bounded hashing queue instead.
//
// Attempts are reserved before the work (argon2id) is done: while a key
// has n failures, at most Threshold-n attempts (at least one) may be in
// flight for it, so a parallel burst is locked out like a serial one.
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

func (p LockoutPolicy) valid() bool {
	return p.Threshold >= 1 && p.Base > 0 && p.Max >= p.Base && p.Decay > 0
}

// maxLockoutEntries bounds the memory an attacker spraying names or
// addresses can make the limiter use. When it is reached, one scan frees
// a batch of 1/16 of it, so the scan's cost is spread over the next 4,096
// new keys rather than paid by each.
const maxLockoutEntries = 1 << 16

// busyRetry is the Retry-After of an attempt refused because the key's
// allowance is taken by attempts still in flight.
const busyRetry = time.Second

type lockEntry struct {
	failures    int
	last        time.Time
	lockedUntil time.Time
	inflight    int
}

type lockout struct {
	policy LockoutPolicy
	max    int // entries (maxLockoutEntries; tests lower it)
	// shared, in a cluster, holds the other nodes' counts (shared.go)
	shared SharedLockouts
	mu     sync.Mutex
	m      map[string]*lockEntry
	scans  int // evictions run (tests)
}

func newLockout(p LockoutPolicy) *lockout {
	return &lockout{policy: p, max: maxLockoutEntries, m: map[string]*lockEntry{}}
}

// lockKey is one key an attempt counts against; reset: a success forgets
// its failures (the (name, address) key; never the address key, or a
// guesser could interleave his own valid sign-ins to keep guessing).
type lockKey struct {
	key   string
	reset bool
}

// attemptKeys are the keys of a sign-in as name from remote.
func attemptKeys(name, remote string) []lockKey {
	a := addrKey(remote)
	if name == "" {
		return []lockKey{{key: a}}
	}
	return []lockKey{{key: a}, {key: nameAddrKey(name, a), reset: true}}
}

// decay forgets failures after a quiet Decay. Called with l.mu held.
func (l *lockout) decay(e *lockEntry, now time.Time) {
	if e.failures > 0 && now.Sub(e.last) > l.policy.Decay && !now.Before(e.lockedUntil) {
		e.failures = 0
	}
}

// check returns a *LockedOutError if any key is locked now.
func (l *lockout) check(now time.Time, keys []lockKey) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkLocked(now, keys)
}

// checkLocked is check with l.mu held.
func (l *lockout) checkLocked(now time.Time, keys []lockKey) error {
	var worst time.Duration
	for _, k := range keys {
		if until := l.lockedUntil(k.key, now); now.Before(until) {
			worst = max(worst, until.Sub(now))
		}
	}
	if worst > 0 {
		return &LockedOutError{RetryAfter: worst}
	}
	return nil
}

// clean reports whether remote's address has no failure on record (after
// decay): its sign-ins go first in the hashing queue.
func (l *lockout) clean(remote string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := addrKey(remote)
	if f, _ := l.remote(key, now); f > 0 {
		return false
	}
	e := l.m[key]
	if e == nil {
		return true
	}
	l.decay(e, now)
	return e.failures == 0
}

// reservation is an attempt counted before its work is done. Exactly one
// of finish or cancel must be called.
type reservation struct {
	l    *lockout
	keys []lockKey
}

// reserve admits an attempt against keys, or refuses it with a
// *LockedOutError: a key is locked, or its remaining allowance is taken by
// attempts in flight.
func (l *lockout) reserve(now time.Time, keys []lockKey) (*reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for _, k := range keys {
		rf, rUntil := l.remote(k.key, now)
		if now.Before(rUntil) {
			worst = max(worst, rUntil.Sub(now))
			continue
		}
		e := l.m[k.key]
		if e == nil {
			continue
		}
		l.decay(e, now)
		if now.Before(e.lockedUntil) {
			worst = max(worst, e.lockedUntil.Sub(now))
			continue
		}
		if e.inflight >= max(l.policy.Threshold-e.failures-rf, 1) {
			worst = max(worst, busyRetry)
		}
	}
	if worst > 0 {
		return nil, &LockedOutError{RetryAfter: worst}
	}
	for _, k := range keys {
		l.entry(k.key, now).inflight++
	}
	return &reservation{l: l, keys: keys}, nil
}

// entry returns key's entry, creating it (evicting if full). Called with
// l.mu held.
func (l *lockout) entry(key string, now time.Time) *lockEntry {
	e := l.m[key]
	if e == nil {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		e = &lockEntry{}
		l.m[key] = e
	}
	return e
}

// finish ends the attempt: a success forgets the reset keys' failures, a
// failure counts against every key and returns the lock it now causes
// (0 = none yet).
func (r *reservation) finish(now time.Time, ok bool) time.Duration {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	var locked time.Duration
	for _, k := range r.keys {
		e := l.m[k.key]
		if e == nil {
			continue
		}
		e.inflight = max(e.inflight-1, 0)
		switch {
		case ok && k.reset:
			e.failures, e.lockedUntil = 0, time.Time{}
			if e.inflight == 0 {
				delete(l.m, k.key)
			}
			l.share(k.key, e)
		case !ok:
			locked = max(locked, l.failLocked(k.key, e, now))
		}
	}
	return locked
}

// cancel releases the attempt without judging it (the work was not done:
// overload, cancelled request).
func (r *reservation) cancel() {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range r.keys {
		if e := l.m[k.key]; e != nil {
			e.inflight = max(e.inflight-1, 0)
		}
	}
}

// fail records a failure that was not reserved (an invalid token, a
// failure a door detected) against keys; returns the lock now in force.
func (l *lockout) fail(now time.Time, keys []lockKey) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var locked time.Duration
	for _, k := range keys {
		locked = max(locked, l.failLocked(k.key, l.entry(k.key, now), now))
	}
	return locked
}

// failUnlessLocked is fail, unless a key is locked now: then nothing is
// counted or created and the *LockedOutError is returned.
func (l *lockout) failUnlessLocked(now time.Time, keys []lockKey) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkLocked(now, keys); err != nil {
		return 0, err
	}
	var locked time.Duration
	for _, k := range keys {
		locked = max(locked, l.failLocked(k.key, l.entry(k.key, now), now))
	}
	return locked, nil
}

// failLocked counts a failure of key (with the other nodes' failures, in
// a cluster) and shares the result. Called with l.mu held.
func (l *lockout) failLocked(key string, e *lockEntry, now time.Time) time.Duration {
	l.decay(e, now)
	e.failures++
	e.last = now
	rf, _ := l.remote(key, now)
	over := e.failures + rf - l.policy.Threshold
	if over < 0 {
		l.share(key, e)
		return 0
	}
	d := l.policy.Max
	if over < 40 {
		d = min(l.policy.Base<<over, l.policy.Max)
	}
	e.lockedUntil = now.Add(d)
	l.share(key, e)
	return d
}

// evict makes room for a batch of new keys (1/16 of the bound) in one
// scan: stale entries go first, then, if that is not enough, the entries
// without attempts in flight that are not locked, least recently failed
// first, and only then locked ones (an attacker spraying fresh keys
// should not free the addresses he locked). Called with l.mu held.
func (l *lockout) evict(now time.Time) {
	l.scans++
	target := l.max - max(l.max/16, 1)
	type cand struct {
		key    string
		locked bool
		last   time.Time
	}
	var cands []cand
	for k, e := range l.m {
		if e.inflight > 0 {
			continue
		}
		if now.Sub(e.last) > l.policy.Decay && !now.Before(e.lockedUntil) {
			delete(l.m, k)
			continue
		}
		cands = append(cands, cand{k, now.Before(e.lockedUntil), e.last})
	}
	if len(l.m) <= target {
		return
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].locked != cands[j].locked {
			return !cands[i].locked
		}
		return cands[i].last.Before(cands[j].last)
	})
	for _, c := range cands {
		if len(l.m) <= target {
			break
		}
		delete(l.m, c.key)
	}
}

// addrKey is the lockout key of a remote address: the IP, with IPv6
// aggregated to its /64 (one host usually owns a whole /64).
func addrKey(remote string) string {
	return "addr:" + addrID(remote)
}

// AddrID is the identity of a remote address ("ip", "ip:port", an IPv6
// literal with zone): the IP, IPv6 aggregated to its /64. Lockout,
// hashing slots and the audit aggregation of failed sign-ins all key
// addresses by it, so that one host is one source everywhere.
func AddrID(remote string) string { return addrID(remote) }

// addrID is AddrID.
func addrID(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return clipKey(host)
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// nameAddrKey is the key of name tried from the address whose addrKey is a.
func nameAddrKey(name, a string) string { return "name:" + clipKey(name) + "|" + a }

func clipKey(s string) string {
	if len(s) > maxNameLen {
		return s[:maxNameLen]
	}
	return s
}
