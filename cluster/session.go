package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The node's lease is renewed every LeaseTTL/3 with KeepAliveOnce (one
// renewal, one answer, a deadline of LeaseTTL/4, retried 100 ms after a
// failure), rather than with the
// client's background keep-alive or a concurrency.Session: the answers are
// what tell whether etcd is reachable (degraded mode), the answer's
// revision tells whether the watch is behind, and after an outage the same
// lease is resumed when it is still alive in etcd (a new etcd leader
// extends every lease), so a full etcd restart changes no ownership.

// firstRegister registers synchronously in Initialize. A node id held by
// another lease is waited out for up to two TTLs (a crashed predecessor's
// lease lapsing); unreachable etcd is not an error (the node starts
// degraded and keeps trying).
func (n *Node) firstRegister() error {
	deadline := time.Now().Add(n.DialTimeout + 2*n.LeaseTTL)
	var err error
	for {
		ctx, cancel := context.WithTimeout(n.ctx, n.DialTimeout)
		err = n.register(ctx)
		cancel()
		if err == nil || !errors.Is(err, ErrNodeIDInUse) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: node id %q: %w (cluster.node_id must be unique per node)", n.Self.ID, err)
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return n.ctx.Err()
		case <-t.C:
		}
	}
	if err != nil {
		n.Logger.Warn("cluster: etcd unreachable at start; running degraded, owning no camera, until it answers", "err", err)
	}
	return nil
}

// register grants a lease and creates this node's key under it, unless a
// live node holds the key.
func (n *Node) register(ctx context.Context) error {
	start := time.Now()
	g, err := n.cli.Grant(ctx, int64(n.LeaseTTL/time.Second))
	if err != nil {
		n.setEtcdErr(err)
		return err
	}
	doc, err := json.Marshal(n.Self)
	if err != nil {
		return err
	}
	key := n.k.node(n.Self.ID)
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(doc), clientv3.WithLease(g.ID)), clientv3.OpPut(n.k.known(n.Self.ID), string(doc))).
		Commit()
	n.Metrics.Writes.WithLabelValues("register").Inc()
	if err != nil {
		n.setEtcdErr(err)
		n.revokeQuietly(g.ID)
		return err
	}
	if !resp.Succeeded {
		n.revokeQuietly(g.ID)
		n.mu.Lock()
		n.inUse = true
		n.mu.Unlock()
		return ErrNodeIDInUse
	}
	n.mu.Lock()
	n.lease, n.leaseRev, n.lastRenew, n.etcdErr = g.ID, resp.Header.Revision, start, nil
	n.registeredAt = time.Now()
	n.registrations++
	again := n.registered
	n.registered, n.inUse = true, false
	n.mu.Unlock()
	if again {
		n.Logger.Warn("cluster: registered again with a new lease; reconciling the cameras kept meanwhile")
	} else {
		n.Logger.Info("cluster: registered", "advertise", n.Self.Advertise, "lease_ttl", n.LeaseTTL)
	}
	n.refreshHealth()
	n.kick()
	return nil
}

func (n *Node) revokeQuietly(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = n.cli.Revoke(ctx, id)
}

func (n *Node) setEtcdErr(err error) {
	n.mu.Lock()
	n.etcdErr = err
	n.mu.Unlock()
}

// leaseLoop renews the lease, registers again after losing it, and keeps
// Health current. Runs until Close.
func (n *Node) leaseLoop() {
	ttl := n.LeaseTTL
	tick := ttl / 6
	var lag lagCheck
	failed := false
	var retryAt time.Time // after a failure: when to try again
	for {
		n.mu.Lock()
		lease, last := n.lease, n.lastRenew
		n.mu.Unlock()
		at := last.Add(ttl / 3)
		if lease == 0 || failed {
			at = retryAt
		}
		due := time.Until(at)
		wait := max(min(due, tick), 0)
		t := time.NewTimer(wait)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		n.refreshHealth()
		if wait < due {
			continue // only a health tick
		}
		ctx, cancel := context.WithTimeout(n.ctx, ttl/4)
		if lease == 0 {
			err := n.register(ctx)
			cancel()
			switch {
			case errors.Is(err, ErrNodeIDInUse):
				retryAt = time.Now().Add(ttl / 2) // another live node has our id: it will not vanish at once
			case err != nil:
				retryAt = time.Now().Add(100 * time.Millisecond)
			}
			continue
		}
		start := time.Now()
		resp, err := n.cli.KeepAliveOnce(ctx, lease)
		cancel()
		switch {
		case err == nil:
			failed = false
			n.mu.Lock()
			if n.lease == lease {
				n.lastRenew, n.etcdErr = start, nil
			}
			n.mu.Unlock()
			lag.observe(n.m, resp.Revision, ttl)
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			n.leaseLost(lease)
		default:
			if n.ctx.Err() != nil {
				return
			}
			failed, retryAt = true, time.Now().Add(100*time.Millisecond)
			n.Metrics.RenewalFailures.Inc()
			n.setEtcdErr(err)
		}
		n.refreshHealth()
	}
}

// leaseLost: etcd no longer has our lease (it lapsed during an outage).
// Its keys are gone, other nodes may own our cameras; we keep pulling them
// until the reconcile after the new registration settles each one.
func (n *Node) leaseLost(lease clientv3.LeaseID) {
	n.mu.Lock()
	if n.lease == lease {
		n.lease = 0
	}
	n.mu.Unlock()
	n.Logger.Warn("cluster: our lease lapsed in etcd; registering again (owned cameras are kept until reconciled)")
}

// refreshHealth recomputes Health from the lease and the watch. The node
// is degraded once its lease has gone two thirds of its TTL without a
// renewal (or the watch has been down as long): an etcd leader election
// (one to two election timeouts, 1-2 s with etcd's defaults) does not
// trip it with the default 5 s TTL, and a real outage shows before the
// lease could lapse.
func (n *Node) refreshHealth() {
	ttl := n.LeaseTTL
	_, synced, since := n.m.state()
	now := time.Now()
	n.mu.Lock()
	reason := ""
	errText := ""
	if n.etcdErr != nil {
		errText = ": " + n.etcdErr.Error()
	}
	switch {
	case n.inUse:
		reason = "node id " + n.Self.ID + " is in use by another live node"
	case n.lease == 0 && !n.registered:
		reason = "not registered with etcd yet" + errText
	case n.lease == 0:
		reason = "lease lapsed; registering again" + errText
	case now.Sub(n.lastRenew) > 2*ttl/3:
		reason = fmt.Sprintf("etcd unreachable: no lease renewal for %s%s", now.Sub(n.lastRenew).Round(100*time.Millisecond), errText)
	case !synced && now.Sub(since) > 2*ttl/3:
		reason = "etcd watch down for " + now.Sub(since).Round(100*time.Millisecond).String()
	}
	old := n.health
	degraded := reason != ""
	if degraded != old.Degraded {
		n.health = Health{Degraded: degraded, Reason: reason, Since: now}
	} else {
		n.health.Reason = reason
	}
	n.mu.Unlock()
	switch {
	case degraded && !old.Degraded:
		n.Metrics.Degraded.Set(1)
		n.Logger.Warn("cluster: degraded: keeping owned cameras, changing no ownership", "reason", reason)
	case !degraded && old.Degraded:
		n.Metrics.Degraded.Set(0)
		if !strings.HasPrefix(old.Reason, "not registered") {
			n.Logger.Info("cluster: etcd reachable again", "degraded_for", now.Sub(old.Since).Round(time.Millisecond))
		}
		n.kick()
	}
}

// lagCheck notices a watch that fell behind: a renewal answer carries the
// cluster's revision; while the mirror has not reached it, the watch is
// asked for a progress report (writes outside live/ advance the revision
// without events), and if it still has not one TTL later, the watch is
// restarted.
type lagCheck struct {
	rev int64
	at  time.Time
}

func (l *lagCheck) observe(m *mirror, rev int64, ttl time.Duration) {
	cur, synced, _ := m.state()
	switch {
	case !synced || cur >= l.rev:
		l.rev, l.at = rev, time.Now()
	case time.Since(l.at) > ttl:
		m.log.Warn("cluster: watch fell behind; restarting it", "watch_rev", cur, "cluster_rev", l.rev)
		m.kick()
		l.rev, l.at = rev, time.Now()
	default:
		m.requestProgress(ttl / 3)
	}
}
