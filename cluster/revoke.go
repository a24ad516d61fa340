package cluster

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Logout revocations. A revoked token id is written to live/revoked/<id>
// under a lease that ends shortly after the token would have expired
// anyway (one lease per minute of expiry, so a burst of logouts grants a
// handful of leases); every node's watch delivers it to its
// RevocationSink within a watch round trip. The node that revoked keeps
// it in its own store first, so etcd being unreachable delays the other
// nodes (until it is back: the revocation waits in a bounded queue), never
// this one.

// RevocationSink receives every revocation made on any node (this one
// included): auth's local revocation store. Revoked must be idempotent
// and quick.
type RevocationSink interface {
	Revoked(id string, expires time.Time)
}

// Bounds of revocation sharing.
const (
	maxRevocationID      = 128
	maxPendingRevocation = 10000
	revocationLeeway     = 30 * time.Second // the lease outlives the token by this much
)

// ErrBadTokenID: a revocation id must be 1..128 characters of [A-Za-z0-9_-].
var ErrBadTokenID = errors.New("cluster: token id must be 1..128 characters of [A-Za-z0-9_-]")

type pendingRevocation struct {
	id      string
	expires time.Time
}

type revocationQueue struct {
	mu      sync.Mutex
	pending []pendingRevocation
	wake    chan struct{}
	leases  map[int64]clientv3.LeaseID // expiry minute -> lease
}

func (q *revocationQueue) init() {
	q.wake = make(chan struct{}, 1)
	q.leases = map[int64]clientv3.LeaseID{}
}

// Revoke shares a token revocation with every node. It returns at once;
// the revocation is published in the background and retried while etcd
// is unreachable. The caller has already applied it locally.
func (n *Node) Revoke(id string, expires time.Time) error {
	if !tokenIDOK(id) {
		return ErrBadTokenID
	}
	if time.Until(expires) <= 0 {
		return nil
	}
	q := &n.revs
	q.mu.Lock()
	if len(q.pending) >= maxPendingRevocation {
		// Keep the newest: the oldest expire first. Logged, never silent.
		q.pending = q.pending[1:]
		n.Logger.Warn("cluster: revocation queue full while etcd is unreachable; dropped the oldest (it stays revoked on this node)")
	}
	q.pending = append(q.pending, pendingRevocation{id: id, expires: expires})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

func (n *Node) revocationLoop() {
	q := &n.revs
	retry := time.NewTicker(500 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-q.wake:
		case <-retry.C:
		}
		n.publishRevocations()
	}
}

func (n *Node) publishRevocations() {
	q := &n.revs
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.mu.Unlock()
			return
		}
		r := q.pending[0]
		q.mu.Unlock()
		if time.Until(r.expires) > 0 {
			if err := n.publishRevocation(r); err != nil {
				n.Logger.Debug("cluster: revocation not published yet", "err", err)
				return
			}
		}
		q.mu.Lock()
		if len(q.pending) > 0 && q.pending[0] == r {
			q.pending = q.pending[1:]
		}
		q.mu.Unlock()
	}
}

func (n *Node) publishRevocation(r pendingRevocation) error {
	q := &n.revs
	minute := r.expires.Add(revocationLeeway).Unix()/60 + 1
	ctx, cancel := context.WithTimeout(n.ctx, n.LeaseTTL/2)
	defer cancel()
	lease, ok := q.leases[minute]
	if !ok {
		ttl := time.Until(time.Unix(minute*60, 0)) + time.Second
		g, err := n.cli.Grant(ctx, int64(max(ttl/time.Second, 1)))
		if err != nil {
			return err
		}
		lease = g.ID
		now := time.Now().Unix() / 60
		for m := range q.leases {
			if m < now {
				delete(q.leases, m)
			}
		}
		q.leases[minute] = lease
	}
	_, err := n.cli.Put(ctx, n.k.revoked(r.id), strconv.FormatInt(r.expires.Unix(), 10), clientv3.WithLease(lease))
	n.Metrics.Writes.WithLabelValues("revocation").Inc()
	if err != nil {
		delete(q.leases, minute) // it may have lapsed: grant a new one next time
		return err
	}
	n.Metrics.Revocations.WithLabelValues("published").Inc()
	return nil
}

// revocationArrived hands a revocation from the watch to the sink.
func (n *Node) revocationArrived(id string, expires time.Time) {
	n.Metrics.Revocations.WithLabelValues("received").Inc()
	if n.Revocations != nil {
		n.Revocations.Revoked(id, expires)
	}
}

func decodeRevocation(id string, b []byte) (time.Time, error) {
	if !tokenIDOK(id) || len(b) > 20 {
		return time.Time{}, errBadValue
	}
	sec, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || sec <= 0 || sec > 1<<40 {
		return time.Time{}, errBadValue
	}
	return time.Unix(sec, 0), nil
}

func tokenIDOK(id string) bool {
	if id == "" || len(id) > maxRevocationID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
