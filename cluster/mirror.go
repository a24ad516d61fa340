package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// mirror keeps an in-memory copy of everything under live/, maintained by
// one watch per node (one list, then a watch from the listed revision;
// after any watch error, list again). Readers get consistent snapshots
// under its lock; values are decoded once, when they arrive.
type mirror struct {
	cli    *clientv3.Client
	prefix string // the live/ prefix
	keys   keys
	log    *slog.Logger
	// decode turns a value into its Go form (nil = malformed, ignored).
	decode func(dir, name string, value []byte) any
	// changed is called on the watch goroutine after each batch of
	// changes (after a new listing: every entry, as puts, and the entries
	// that vanished, as deletes).
	changed func([]mirrorChange)

	mu      sync.RWMutex
	dirs    map[string]map[string]*mirrorEntry // dir -> name -> entry
	rev     int64
	synced  bool
	since   time.Time // when synced last changed
	restart chan struct{}
}

// mirrorChange is one changed entry: its directory, name and new value,
// or deleted.
type mirrorChange struct {
	dir, name string
	value     any
	deleted   bool
}

type mirrorEntry struct {
	lease  clientv3.LeaseID
	mod    int64
	value  any
	create int64
}

const listPage = 1000

func newMirror(cli *clientv3.Client, k keys, log *slog.Logger) *mirror {
	return &mirror{cli: cli, prefix: k.live(), keys: k, log: log,
		dirs: map[string]map[string]*mirrorEntry{}, since: time.Now(), restart: make(chan struct{}, 1)}
}

// run lists and watches until ctx ends.
func (m *mirror) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := m.listAndWatch(ctx)
		m.setSynced(false)
		if ctx.Err() != nil {
			return
		}
		m.log.Debug("cluster: watch ended; listing again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (m *mirror) listAndWatch(ctx context.Context) error {
	rev, err := m.list(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := m.cli.Watch(wctx, m.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for {
		select {
		case <-m.restart:
			return errWatchLagging
		case wr, ok := <-wch:
			if !ok {
				return ctx.Err()
			}
			if err := wr.Err(); err != nil {
				return err
			}
			m.apply(wr.Events, wr.Header.Revision)
		}
	}
}

// list replaces the copy with a fresh listing, page by page at one
// revision, and returns that revision.
func (m *mirror) list(ctx context.Context) (int64, error) {
	fresh := map[string]map[string]*mirrorEntry{}
	end := clientv3.GetPrefixRangeEnd(m.prefix)
	key, rev := m.prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := m.cli.Get(lctx, key, opts...)
		cancel()
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			m.put(fresh, kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	var batch []mirrorChange
	m.mu.Lock()
	for dir, d := range m.dirs {
		for name := range d {
			if _, ok := fresh[dir][name]; !ok {
				batch = append(batch, mirrorChange{dir: dir, name: name, deleted: true})
			}
		}
	}
	for dir, d := range fresh {
		for name, e := range d {
			batch = append(batch, mirrorChange{dir: dir, name: name, value: e.value})
		}
	}
	m.dirs, m.rev = fresh, rev
	m.mu.Unlock()
	m.setSynced(true)
	m.changed(batch)
	return rev, nil
}

// put stores kv in dirs and returns the change (a malformed value is
// dropped, as a delete).
func (m *mirror) put(dirs map[string]map[string]*mirrorEntry, kv *mvccpb.KeyValue) (mirrorChange, bool) {
	dir, name, ok := m.keys.split(string(kv.Key))
	if !ok {
		return mirrorChange{}, false
	}
	v := m.decode(dir, name, kv.Value)
	if v == nil {
		m.log.Warn("cluster: ignoring a malformed value in etcd", "dir", dir, "name", clip(name))
		delete(dirs[dir], name)
		return mirrorChange{dir: dir, name: name, deleted: true}, true
	}
	d := dirs[dir]
	if d == nil {
		d = map[string]*mirrorEntry{}
		dirs[dir] = d
	}
	d[name] = &mirrorEntry{lease: clientv3.LeaseID(kv.Lease), mod: kv.ModRevision, create: kv.CreateRevision, value: v}
	return mirrorChange{dir: dir, name: name, value: v}, true
}

func (m *mirror) apply(evs []*clientv3.Event, rev int64) {
	var batch []mirrorChange
	m.mu.Lock()
	for _, ev := range evs {
		switch ev.Type {
		case clientv3.EventTypePut:
			if c, ok := m.put(m.dirs, ev.Kv); ok {
				batch = append(batch, c)
			}
		case clientv3.EventTypeDelete:
			if dir, name, ok := m.keys.split(string(ev.Kv.Key)); ok {
				delete(m.dirs[dir], name)
				batch = append(batch, mirrorChange{dir: dir, name: name, deleted: true})
			}
		}
	}
	if rev > m.rev {
		m.rev = rev
	}
	m.mu.Unlock()
	if len(batch) > 0 {
		m.changed(batch)
	}
}

func (m *mirror) setSynced(s bool) {
	m.mu.Lock()
	if m.synced != s {
		m.synced, m.since = s, time.Now()
	}
	m.mu.Unlock()
}

// state returns the revision the copy reflects and whether the watch is
// running (and since when it is or is not).
func (m *mirror) state() (rev int64, synced bool, since time.Time) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rev, m.synced, m.since
}

// stateLocked is state for callers inside view (the read lock is held).
func (m *mirror) stateLocked() (rev int64, synced bool, since time.Time) {
	return m.rev, m.synced, m.since
}

// kick makes the watch start over with a fresh listing (it fell behind).
func (m *mirror) kick() {
	select {
	case m.restart <- struct{}{}:
	default:
	}
}

// requestProgress asks etcd to tell the watch the current revision (the
// context carries the same metadata as the watch's, so the request goes
// to its stream).
func (m *mirror) requestProgress(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(context.Background()), timeout)
	defer cancel()
	_ = m.cli.RequestProgress(ctx)
}

// view calls f with the directory's entries under the read lock.
func (m *mirror) view(dir string, f func(map[string]*mirrorEntry)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f(m.dirs[dir])
}

// clip bounds a name taken from etcd before it is logged.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

type mirrorError string

func (e mirrorError) Error() string { return string(e) }

const errWatchLagging = mirrorError("watch fell behind the cluster revision")
