package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Ownership. The key live/owners/<camera> is the lock: whoever created it
// under its lease owns the camera, and it can be created only while it
// does not exist (a transaction comparing its create revision with 0). A
// key vanishes when its owner hands the camera over (after it stopped
// pulling), leaves (lease revoked) or dies (lease lapsed). Rendezvous
// hashing over the live members says who should claim a camera without an
// owner: the best-ranked member at once, the member ranked r after r+1
// lease TTLs of its own watching (in case the best one is alive but stuck). An owner hands a camera
// over to a better-ranked member that has been a member for
// RebalanceDelay, at most HandoverRate cameras per second. For one TTL
// after it registers, a node claims only the cameras it still pulls (kept
// through an outage in which its lease lapsed): when etcd comes back after
// every lease lapsed, each node first takes back its own cameras, and the
// first node to register does not grab everyone's.

// ownState is the reconcile goroutine's own bookkeeping.
type ownState struct {
	held         map[string]bool      // the handler was told Self=true
	releasing    map[string]time.Time // handed over: not pulled any more, key delete sent at
	unownedSince map[string]time.Time
	memberSeen   map[string]time.Time
	owners       map[string]ownerRef // the mirror's owners at ownersRev (reused while unchanged)
	ownersRev    int64
}

// ownerRef is one ownership key as the mirror has it.
type ownerRef struct {
	ownerValue
	lease clientv3.LeaseID
}

func newOwnState() ownState {
	return ownState{held: map[string]bool{}, releasing: map[string]time.Time{},
		unownedSince: map[string]time.Time{}, memberSeen: map[string]time.Time{}}
}

// claimBatch: cameras claimed per transaction (etcd allows 128 operations).
const claimBatch = 60

func (n *Node) reconcileLoop() {
	// Changes kick a pass at once; the tick is for what time alone
	// changes (fallback claims, handovers spread over time, retries).
	t := time.NewTicker(max(n.LeaseTTL/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.kickc:
		case <-t.C:
		}
		start := time.Now()
		if n.reconcile() {
			n.Metrics.ReconcileSeconds.Observe(time.Since(start).Seconds())
		}
	}
}

// pass is what one reconcile pass works from.
type pass struct {
	lease      clientv3.LeaseID
	grace      bool // just registered: claim back only what this node still pulls
	now        time.Time
	members    []string
	peers      map[string]Member
	owners     map[string]ownerRef
	configured map[string]bool
	claims     []string
}

// reconcile is one pass over every camera. It changes nothing while the
// node is degraded or its copy of etcd predates its own registration
// (and then reports false).
func (n *Node) reconcile() bool {
	p := pass{now: time.Now()}
	n.mu.Lock()
	lease, leaseRev, degraded := n.lease, n.leaseRev, n.health.Degraded
	p.grace = p.now.Sub(n.registeredAt) < n.LeaseTTL
	p.configured = n.cameras // never changed in place: SetCameras replaces it
	n.mu.Unlock()
	rev, synced, _ := n.m.state()
	if degraded || lease == 0 || !synced || rev < leaseRev {
		return false
	}
	p.lease = lease
	p.members, p.peers = n.liveMembers(p.now)
	p.owners = n.ownersSnapshot()
	s := &n.own
	for c := range p.configured {
		n.reconcileCamera(&p, c)
	}
	for c := range s.held {
		if !p.configured[c] {
			n.reconcileCamera(&p, c)
		}
	}
	for c := range s.releasing {
		if !p.configured[c] && !s.held[c] {
			n.reconcileCamera(&p, c)
		}
	}
	n.claim(p.claims, lease)
	n.flushStatus(lease, p.owners)
	n.mu.Lock()
	for c := range n.told {
		if !p.configured[c] && !s.held[c] {
			delete(n.told, c)
		}
	}
	n.mu.Unlock()
	n.Metrics.Owned.Set(float64(len(s.held)))
	return true
}

// ownersSnapshot returns the ownership keys, copied from the mirror only
// when it changed since the last pass.
func (n *Node) ownersSnapshot() map[string]ownerRef {
	s := &n.own
	n.m.view(ownersDir, func(d map[string]*mirrorEntry) {
		rev, _, _ := n.m.stateLocked()
		if s.owners != nil && rev == s.ownersRev {
			return
		}
		s.owners = make(map[string]ownerRef, len(d))
		for c, e := range d {
			s.owners[c] = ownerRef{ownerValue: e.value.(ownerValue), lease: e.lease}
		}
		s.ownersRev = rev
	})
	return s.owners
}

func (n *Node) reconcileCamera(p *pass, c string) {
	s := &n.own
	o, has := p.owners[c]
	configured := p.configured[c]
	mine := has && o.Node == n.Self.ID && o.lease == p.lease
	switch {
	case mine && !s.releasing[c].IsZero():
		if p.now.Sub(s.releasing[c]) > time.Second {
			n.release(c, p.lease)
		}
	case mine && !configured:
		n.handOver(c, p.lease, "camera removed from the configuration")
	case mine:
		delete(s.unownedSince, c)
		if !s.held[c] {
			n.acquired(c)
		}
		if n.shouldHandOver(c, p.members, p.now) {
			n.handOver(c, p.lease, "rebalance")
		}
	case has && o.Node == n.Self.ID:
		// Our id under another lease: only a second process with this node
		// id could have made it, which registration refuses. Leave it be:
		// never tell the handler to relay a camera from this node itself.
	case has:
		delete(s.releasing, c)
		delete(s.unownedSince, c)
		other := Owner{Camera: c, Node: o.Node, Peer: p.peers[o.Node]}
		if s.held[c] {
			delete(s.held, c)
			n.Metrics.OwnershipChanges.WithLabelValues("lost").Inc()
			n.Logger.Warn("cluster: another node owns a camera this node still pulled; stopping", "camera", c, "owner", o.Node)
			n.tell(other)
		} else if configured {
			n.tellIfChanged(other)
		}
	default:
		delete(s.releasing, c)
		switch {
		case s.held[c] && !configured:
			delete(s.held, c)
			n.forget(c)
		case s.held[c]:
			p.claims = append(p.claims, c) // kept through an outage: claim it back
		case configured:
			n.tellIfChanged(Owner{Camera: c})
			if p.grace {
				break // nodes that lost their leases with ours first claim back what they pull
			}
			since, ok := s.unownedSince[c]
			if !ok {
				since = p.now
				s.unownedSince[c] = since
			}
			r := rankOf(p.members, c, n.Self.ID)
			if r == 0 || (r > 0 && p.now.Sub(since) >= time.Duration(r+1)*n.LeaseTTL) {
				p.claims = append(p.claims, c)
			}
		}
	}
}

// liveMembers returns the live member ids (sorted) and their registrations,
// and keeps track of when each was first seen.
func (n *Node) liveMembers(now time.Time) ([]string, map[string]Member) {
	peers := map[string]Member{}
	n.m.view(nodesDir, func(d map[string]*mirrorEntry) {
		for id, e := range d {
			peers[id] = e.value.(Member)
		}
	})
	ids := make([]string, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
		if _, ok := n.own.memberSeen[id]; !ok {
			n.own.memberSeen[id] = now
		}
	}
	for id := range n.own.memberSeen {
		if _, ok := peers[id]; !ok {
			delete(n.own.memberSeen, id)
		}
	}
	slices.Sort(ids)
	n.Metrics.Members.Set(float64(len(ids)))
	return ids, peers
}

// shouldHandOver: a better-ranked member has been live for RebalanceDelay
// and the handover rate allows one more.
func (n *Node) shouldHandOver(camera string, members []string, now time.Time) bool {
	best := ""
	var bw uint64
	for _, m := range members {
		if w := weight(m, camera); best == "" || w > bw || (w == bw && m < best) {
			best, bw = m, w
		}
	}
	if best == "" || best == n.Self.ID {
		return false
	}
	if seen, ok := n.own.memberSeen[best]; !ok || now.Sub(seen) < n.RebalanceDelay {
		return false
	}
	return n.lim.Allow()
}

// handOver stops pulling (the handler returns once it stopped), then
// deletes the ownership key so the next owner can claim it.
func (n *Node) handOver(camera string, lease clientv3.LeaseID, why string) {
	s := &n.own
	s.releasing[camera] = time.Now()
	if s.held[camera] {
		delete(s.held, camera)
		n.Metrics.OwnershipChanges.WithLabelValues("released").Inc()
		n.Logger.Info("cluster: handing a camera over", "camera", camera, "why", why)
		n.tell(Owner{Camera: camera})
	}
	n.release(camera, lease)
}

// release deletes camera's ownership key if our lease still holds it.
func (n *Node) release(camera string, lease clientv3.LeaseID) {
	n.own.releasing[camera] = time.Now()
	key := n.k.owner(camera)
	ctx, cancel := context.WithTimeout(n.ctx, n.LeaseTTL/3)
	defer cancel()
	_, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).Then(clientv3.OpDelete(key)).Commit()
	n.Metrics.Writes.WithLabelValues("release").Inc()
	if err != nil {
		n.Logger.Debug("cluster: release failed; retrying", "camera", camera, "err", err)
	}
}

// acquired tells the handler this node owns camera now.
func (n *Node) acquired(camera string) {
	n.own.held[camera] = true
	delete(n.own.unownedSince, camera)
	n.Metrics.OwnershipChanges.WithLabelValues("acquired").Inc()
	n.tell(Owner{Camera: camera, Node: n.Self.ID, Self: true})
}

// claim creates the ownership keys of cameras, batched; cameras already
// held (kept through an outage) are not announced again.
func (n *Node) claim(cameras []string, lease clientv3.LeaseID) {
	for len(cameras) > 0 {
		batch := cameras[:min(claimBatch, len(cameras))]
		cameras = cameras[len(batch):]
		if n.claimTxn(batch, lease) {
			n.claimed(batch)
			continue
		}
		for _, c := range batch { // someone won one of them: one by one
			if n.ctx.Err() != nil {
				return
			}
			if n.claimTxn([]string{c}, lease) {
				n.claimed([]string{c})
			}
		}
	}
}

func (n *Node) claimTxn(cameras []string, lease clientv3.LeaseID) bool {
	cmps := make([]clientv3.Cmp, 0, len(cameras))
	ops := make([]clientv3.Op, 0, len(cameras))
	n.mu.Lock()
	for _, c := range cameras {
		key := n.k.owner(c)
		val, _ := json.Marshal(ownerValue{Node: n.Self.ID, Status: n.status[c]})
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		ops = append(ops, clientv3.OpPut(key, string(val), clientv3.WithLease(lease)))
		delete(n.statusDirty, c)
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(n.ctx, n.LeaseTTL/3)
	defer cancel()
	resp, err := n.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	n.Metrics.Writes.WithLabelValues("claim").Inc()
	if err != nil {
		n.Logger.Debug("cluster: claim failed", "cameras", len(cameras), "err", err)
		return false
	}
	return resp.Succeeded
}

func (n *Node) claimed(cameras []string) {
	for _, c := range cameras {
		if n.own.held[c] {
			continue
		}
		n.acquired(c)
	}
}

// flushStatus writes the changed statuses of owned cameras into their
// ownership keys (only while this lease holds the key).
func (n *Node) flushStatus(lease clientv3.LeaseID, owners map[string]ownerRef) {
	n.mu.Lock()
	var dirty []string
	for c := range n.statusDirty {
		if n.own.held[c] {
			dirty = append(dirty, c)
		}
	}
	vals := make(map[string]CameraStatus, len(dirty))
	for _, c := range dirty {
		vals[c] = n.status[c]
		delete(n.statusDirty, c)
	}
	n.mu.Unlock()
	for _, c := range dirty {
		if owners[c].Status == vals[c] {
			continue
		}
		key := n.k.owner(c)
		val, _ := json.Marshal(ownerValue{Node: n.Self.ID, Status: vals[c]})
		ctx, cancel := context.WithTimeout(n.ctx, n.LeaseTTL/3)
		_, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Commit()
		cancel()
		n.Metrics.Writes.WithLabelValues("status").Inc()
		if err != nil {
			n.mu.Lock()
			n.statusDirty[c] = true
			n.mu.Unlock()
			return
		}
	}
}

// tell calls the handler and remembers what it was told.
func (n *Node) tell(o Owner) {
	n.mu.Lock()
	n.told[o.Camera] = o
	n.mu.Unlock()
	n.Handler.OwnerChanged(o)
}

func (n *Node) tellIfChanged(o Owner) {
	n.mu.Lock()
	old, ok := n.told[o.Camera]
	n.mu.Unlock()
	if !ok || old != o {
		n.tell(o)
	}
}

// forget drops a camera that is neither configured nor owned any more.
func (n *Node) forget(camera string) {
	n.Handler.OwnerChanged(Owner{Camera: camera})
	n.mu.Lock()
	delete(n.told, camera)
	delete(n.status, camera)
	delete(n.statusDirty, camera)
	n.mu.Unlock()
}
