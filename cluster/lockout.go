package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lockout counts. Failed authentications are counted where they happen
// (auth's own lockout, in memory); each node shares a summary: at most
// once per second, one document live/lockout/<node> under its lease with
// at most MaxShared entries (the keys that are locked or have failed at
// least twice, most locked first). Every node adds the other nodes' counts
// to its own. A new lock is written at once (at most one write per
// LockoutUrgent), so the first lock, which lasts only auth.lockout.base,
// reaches the other nodes before it ends. So a brute-force flood costs etcd
// at most 1/LockoutUrgent small writes per node per second whatever its
// rate or spread, and an attacker spreading tries over N nodes gets at
// most N times the local threshold before the lock is cluster-wide.

// LockoutEntry is one lockout key's state on one node, as shared. Key is
// auth's (an address, or a name and address); Expires is when to forget it.
type LockoutEntry struct {
	Key         string    `json:"k"`
	Failures    int       `json:"f"`
	LockedUntil time.Time `json:"l,omitzero"`
	Expires     time.Time `json:"e"`
}

type lockoutDoc struct {
	Entries []LockoutEntry `json:"entries"`
}

// Bounds of lockout sharing.
const (
	maxLockoutKey   = 256
	maxLockoutLocal = 4096
	// MaxSharedLockouts bounds the entries in a node's lockout document.
	MaxSharedLockouts = 256
	// LockoutFlush is how often a node's changed counts are written, by
	// default (Node.LockoutFlush).
	LockoutFlush = time.Second
	// LockoutUrgent is the shortest time between two writes when a key
	// becomes locked.
	LockoutUrgent = 100 * time.Millisecond
	// minSharedFailures: single failures stay local (a spray of one try per
	// address would otherwise fill the document with noise).
	minSharedFailures = 2
)

// Lockouts shares lockout counts between nodes. Auth calls Record after
// each failure (and with failures 0 after a success) and adds Remote to
// its own count. Its methods take plain values, so auth can declare the
// interface it needs without importing this package (or etcd). Safe for
// concurrent use; never blocks on etcd.
type Lockouts struct {
	n *Node

	urgent chan struct{} // a key became locked: flush now

	mu         sync.Mutex
	local      map[string]LockoutEntry
	dirty      bool
	index      map[string]LockoutEntry // other nodes' entries, summed
	indexValid bool
	indexAt    time.Time
}

func newLockouts(n *Node) *Lockouts {
	return &Lockouts{n: n, local: map[string]LockoutEntry{}, urgent: make(chan struct{}, 1)}
}

// Lockouts returns the node's shared lockout counts.
func (n *Node) Lockouts() *Lockouts { return n.lockouts }

// Record sets this node's state of one key: its failures, the lock it
// holds (zero = none) and when to forget it (failures 0 forgets it now).
func (l *Lockouts) Record(key string, failures int, lockedUntil, expires time.Time) {
	e := LockoutEntry{Key: key, Failures: failures, LockedUntil: lockedUntil, Expires: expires}
	if e.Key == "" || len(e.Key) > maxLockoutKey {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dirty = true
	if e.Failures <= 0 {
		delete(l.local, e.Key)
		return
	}
	old, ok := l.local[e.Key]
	if !ok && len(l.local) >= maxLockoutLocal {
		l.evict(time.Now())
	}
	l.local[e.Key] = e
	if e.LockedUntil.After(old.LockedUntil) && e.LockedUntil.After(time.Now()) {
		select {
		case l.urgent <- struct{}{}:
		default:
		}
	}
}

// evict drops the expired entries and the eighth that expire first, so a
// flood of new keys costs O(log n) per key, not a scan each.
func (l *Lockouts) evict(now time.Time) {
	es := make([]LockoutEntry, 0, len(l.local))
	for k, e := range l.local {
		if e.Expires.Before(now) {
			delete(l.local, k)
			continue
		}
		es = append(es, e)
	}
	if len(l.local) < maxLockoutLocal {
		return
	}
	slices.SortFunc(es, func(a, b LockoutEntry) int { return a.Expires.Compare(b.Expires) })
	for _, e := range es[:len(es)/8] {
		delete(l.local, e.Key)
	}
}

// Remote returns the failures other nodes counted for key and the latest
// lock they hold on it (as of their last flush).
func (l *Lockouts) Remote(key string, now time.Time) (failures int, lockedUntil time.Time) {
	l.mu.Lock()
	if !l.indexValid || now.Sub(l.indexAt) > time.Second { // entries expire too
		l.index = l.buildIndex(now)
		l.indexValid, l.indexAt = true, now
	}
	e, ok := l.index[key]
	l.mu.Unlock()
	if !ok {
		return 0, time.Time{}
	}
	return e.Failures, e.LockedUntil
}

// buildIndex sums the other nodes' documents per key, dropping expired
// entries (their own expiry, as the owning node set it).
func (l *Lockouts) buildIndex(now time.Time) map[string]LockoutEntry {
	idx := map[string]LockoutEntry{}
	l.n.m.view(lockoutDir, func(d map[string]*mirrorEntry) {
		for node, e := range d {
			if node == l.n.Self.ID {
				continue
			}
			for _, x := range e.value.(lockoutDoc).Entries {
				if x.Expires.Before(now) {
					continue
				}
				a := idx[x.Key]
				a.Key = x.Key
				a.Failures += x.Failures
				if x.LockedUntil.After(a.LockedUntil) {
					a.LockedUntil = x.LockedUntil
				}
				idx[x.Key] = a
			}
		}
	})
	return idx
}

func (l *Lockouts) invalidate() {
	l.mu.Lock()
	l.indexValid = false
	l.mu.Unlock()
}

// run flushes this node's document once per LockoutFlush when it changed,
// when an entry in it expired, or when the lease changed; and at once
// (but at most once per LockoutUrgent) when a key became locked.
func (l *Lockouts) run() {
	t := time.NewTicker(l.n.LockoutFlush)
	defer t.Stop()
	var published clientv3.LeaseID
	var oldest time.Time // earliest expiry in the published document
	var last time.Time   // last write
	for {
		select {
		case <-l.n.ctx.Done():
			return
		case <-t.C:
		case <-l.urgent:
			if wait := time.Until(last.Add(LockoutUrgent)); wait > 0 {
				w := time.NewTimer(wait)
				select {
				case <-l.n.ctx.Done():
					w.Stop()
					return
				case <-w.C:
				}
			}
		}
		l.n.mu.Lock()
		lease, degraded := l.n.lease, l.n.health.Degraded
		l.n.mu.Unlock()
		now := time.Now()
		l.mu.Lock()
		due := l.dirty || lease != published || (!oldest.IsZero() && oldest.Before(now))
		if lease == 0 || degraded || !due {
			l.mu.Unlock()
			continue
		}
		doc := l.document(now)
		l.dirty = false
		l.mu.Unlock()
		last = time.Now()
		if err := l.put(lease, doc); err != nil {
			l.mu.Lock()
			l.dirty = true
			l.mu.Unlock()
			continue
		}
		published, oldest = lease, time.Time{}
		for _, e := range doc.Entries {
			if oldest.IsZero() || e.Expires.Before(oldest) {
				oldest = e.Expires
			}
		}
	}
}

// document picks the shared entries. Called with l.mu held.
func (l *Lockouts) document(now time.Time) lockoutDoc {
	var es []LockoutEntry
	for _, e := range l.local {
		if e.Expires.After(now) && (e.Failures >= minSharedFailures || e.LockedUntil.After(now)) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b LockoutEntry) int {
		if c := b.LockedUntil.Compare(a.LockedUntil); c != 0 {
			return c
		}
		if a.Failures != b.Failures {
			return b.Failures - a.Failures
		}
		return compareStrings(a.Key, b.Key)
	})
	if len(es) > MaxSharedLockouts {
		es = es[:MaxSharedLockouts]
	}
	return lockoutDoc{Entries: es}
}

func (l *Lockouts) put(lease clientv3.LeaseID, doc lockoutDoc) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(l.n.ctx, l.n.LeaseTTL/3)
	defer cancel()
	key := l.n.k.lockout(l.n.Self.ID)
	if len(doc.Entries) == 0 {
		_, err = l.n.cli.Delete(ctx, key)
	} else {
		_, err = l.n.cli.Put(ctx, key, string(b), clientv3.WithLease(lease))
	}
	l.n.Metrics.Writes.WithLabelValues("lockout").Inc()
	return err
}

func decodeLockoutDoc(b []byte) (lockoutDoc, error) {
	var d lockoutDoc
	if len(b) > maxValueBytes || json.Unmarshal(b, &d) != nil || len(d.Entries) > MaxSharedLockouts {
		return lockoutDoc{}, errBadValue
	}
	for _, e := range d.Entries {
		if e.Key == "" || len(e.Key) > maxLockoutKey || e.Failures < 0 || e.Failures > 1<<30 {
			return lockoutDoc{}, errBadValue
		}
	}
	return d, nil
}
