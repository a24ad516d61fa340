package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"cordon/internal/testtool"
)

// The tests here stop etcd members: they run one at a time (no
// t.Parallel) and leave etcd whole when they return.

// waitHealth waits until every node's Health matches degraded.
func waitHealth(t *testing.T, timeout time.Duration, degraded bool, nodes ...*Node) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, n := range nodes {
			if n.Health().Degraded != degraded {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				t.Logf("%s: %+v", n.Self.ID, n.Health())
			}
			t.Fatalf("nodes not degraded=%v after %s", degraded, timeout)
		}
		<-tick.C
	}
}

// observe waits d while the cluster is expected to do nothing: there is
// no signal for "nothing happened", so the test watches for d.
func observe(d time.Duration) { <-time.After(d) }

// TestEtcdMemberLoss: killing one of three etcd members (the leader, the
// hardest case) changes no ownership and does not degrade the nodes. The
// lease TTL is 3 s here: the leader election must fit in a third of it.
func TestEtcdMemberLoss(t *testing.T) {
	h := newHarness(t, 6)
	ids := []string{"a", "b", "c"}
	var nodes []*Node
	for _, id := range ids {
		nodes = append(nodes, h.start(id, fastRebalance, func(n *Node) { n.LeaseTTL = 3 * time.Second }))
	}
	h.settled(ids, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := h.etcd.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.etcd.Members[leader].Kill()
	t.Cleanup(func() {
		if err := h.etcd.Restart(context.Background(), leader); err != nil {
			t.Errorf("restarting etcd member: %v", err)
		}
	})
	observe(3 * testTTL)
	if ev := h.w.eventsSince(start); len(ev) > 0 {
		t.Fatalf("ownership changed after losing one etcd member: %+v", ev)
	}
	for _, n := range nodes {
		if hl := n.Health(); hl.Degraded || hl.Since.After(start) {
			t.Errorf("%s: health %+v changed after losing one etcd member", n.Self.ID, hl)
		}
	}
	// Shared state still flows.
	sink := h.sink("c")
	if err := nodes[0].Revoke("0123456789abcdef0123456789abcdef", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sink.waitFor(t, "0123456789abcdef0123456789abcdef", 2*time.Second)
	if err := h.etcd.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	noOverlaps(t, h.w)
}

// TestEtcdAllDown: with every etcd member killed, the nodes say degraded,
// keep what they own and change nothing; after etcd restarts they recover
// without any ownership change (the new leader extends every lease, and
// the nodes resume theirs), never pulling a camera twice.
func TestEtcdAllDown(t *testing.T) {
	h := newHarness(t, 6)
	ids := []string{"a", "b", "c"}
	var nodes []*Node
	for _, id := range ids {
		nodes = append(nodes, h.start(id, fastRebalance))
	}
	h.settled(ids, 20*time.Second)
	before := h.w.describe()
	start := time.Now()
	for _, m := range h.etcd.Members {
		m.Kill()
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := h.etcd.Restart(context.Background(), 0, 1, 2); err != nil {
				t.Errorf("restarting etcd: %v", err)
			}
		}
	})
	waitHealth(t, testTTL+time.Second, true, nodes...)
	for _, n := range nodes {
		if r := n.Health().Reason; !strings.Contains(r, "etcd unreachable") && !strings.Contains(r, "watch down") {
			t.Errorf("%s: degraded reason %q", n.Self.ID, r)
		}
	}
	// Longer than a lease TTL: the leases would have lapsed by now.
	observe(2 * testTTL)
	if ev := h.w.eventsSince(start); len(ev) > 0 {
		t.Fatalf("ownership changed while etcd was down: %+v", ev)
	}
	if got := h.w.describe(); got != before {
		t.Fatalf("pulls changed while etcd was down:\nbefore %s\nafter  %s", before, got)
	}
	// A logout meanwhile is kept and published when etcd is back.
	sink := h.sink("c")
	if err := nodes[0].Revoke("feedfacefeedfacefeedfacefeedface", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.etcd.Restart(ctx, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	restarted = true
	waitHealth(t, 3*testTTL, false, nodes...)
	t.Logf("etcd back: nodes healthy %s after the restart began", time.Since(back).Round(time.Millisecond))
	sink.waitFor(t, "feedfacefeedfacefeedfacefeedface", 3*time.Second)
	observe(testTTL)
	h.w.wait(testTTL, "every camera owned once", func() bool { return h.w.exactlyOneLocked(h.cameras, ids) })
	for _, o := range h.w.overlaps() {
		if o.end.IsZero() || o.end.Sub(o.start) > testTTL {
			t.Errorf("double pull of %s by %s and %s for %s after etcd came back", o.camera, o.a, o.b, o.end.Sub(o.start))
		}
	}
	lapsed := false
	for _, n := range nodes {
		n.mu.Lock()
		lapsed = lapsed || n.registrations > 1
		n.mu.Unlock()
	}
	if lapsed {
		// etcd took longer to serve again than the lease extension its new
		// leader grants (TTL + an election timeout): the leases lapsed and
		// every node registered anew. Each one claimed back its own
		// cameras first, so nothing moved.
		t.Logf("leases lapsed while etcd restarted (it took %s); the nodes registered again", time.Since(back).Round(time.Millisecond))
	} else if ev := h.w.eventsSince(start); len(ev) > 0 {
		t.Errorf("ownership changed across the etcd restart although the leases survived: %+v", ev)
	}
	if got := h.w.describe(); got != before {
		t.Errorf("pulls changed across the etcd restart:\nbefore %s\nafter  %s", before, got)
	}
}

// TestPartitionFromEtcd: one node cut off from etcd (the others are not)
// keeps pulling its cameras (degraded, as the contract asks); its lease
// lapses and the others take its cameras, so those cameras are pulled
// twice while the partition lasts; when it heals, the cut-off node stops
// them within one lease TTL and follows the new owners.
func TestPartitionFromEtcd(t *testing.T) {
	h := newHarness(t, 9)
	px := h.proxy()
	a := h.start("a", fastRebalance, func(n *Node) { n.Endpoints = []string{px.addr()} })
	h.start("b", fastRebalance)
	h.start("c", fastRebalance)
	ids := []string{"a", "b", "c"}
	h.settled(ids, 20*time.Second)
	var mine []string
	h.w.mu.Lock()
	for _, c := range h.cameras {
		if _, ok := h.w.holders[c]["a"]; ok {
			mine = append(mine, c)
		}
	}
	h.w.mu.Unlock()
	if len(mine) == 0 {
		t.Fatal("a owns nothing to test with")
	}
	cut := time.Now()
	px.partition()
	waitHealth(t, testTTL, true, a)
	h.w.wait(3*testTTL, "a's cameras also owned by b or c", func() bool {
		for _, c := range mine {
			if len(h.w.holders[c]) != 2 {
				return false
			}
		}
		return true
	})
	t.Logf("partition: others took a's %d cameras %s after the cut (a still pulls them)", len(mine), time.Since(cut).Round(time.Millisecond))
	for _, e := range h.w.eventsSince(cut) {
		if e.node == "a" && (e.o.Self || slices.Contains(mine, e.o.Camera)) {
			t.Fatalf("a changed ownership while cut off from etcd: %+v", e)
		}
	}
	healed := time.Now()
	px.heal()
	h.w.wait(testTTL, "a stopped the cameras others own now", func() bool {
		return h.w.exactlyOneLocked(h.cameras, ids)
	})
	t.Logf("partition healed: double pulls ended %s later", time.Since(healed).Round(time.Millisecond))
	waitHealth(t, testTTL, false, a)
	for _, o := range h.w.overlaps() {
		if o.end.IsZero() || o.end.Sub(healed) > testTTL {
			t.Errorf("double pull of %s lasted %s after the heal", o.camera, o.end.Sub(healed))
		}
	}
	// a was told, for each, who owns it now (where to relay it from).
	told := map[string]bool{}
	for _, e := range h.w.eventsSince(healed) {
		if e.node == "a" && !e.o.Self && e.o.Node != "" && e.o.Peer.ID == e.o.Node {
			told[e.o.Camera] = true
		}
	}
	for _, c := range mine {
		if !told[c] {
			t.Errorf("a was not told the new owner of %s", c)
		}
	}
}

// TestAllLeasesLapse: every node cut off from etcd (etcd itself fine) for
// longer than the TTL: all leases lapse and every ownership key goes. When
// the nodes reach etcd again, each registers anew and first claims back
// the cameras it kept pulling, so nothing moves and nothing is pulled
// twice, although the first node back could have claimed everything.
func TestAllLeasesLapse(t *testing.T) {
	h := newHarness(t, 9)
	ids := []string{"a", "b", "c"}
	var pxs []*proxy
	var nodes []*Node
	for _, id := range ids {
		px := h.proxy()
		pxs = append(pxs, px)
		nodes = append(nodes, h.start(id, fastRebalance, func(n *Node) { n.Endpoints = []string{px.addr()} }))
	}
	h.settled(ids, 20*time.Second)
	before := h.w.describe()
	start := time.Now()
	for _, px := range pxs {
		px.partition()
	}
	waitHealth(t, testTTL, true, nodes...)
	testtool.WaitFor(t, 3*testTTL, "every ownership key gone with its lease", func() bool { return len(h.ownersInEtcd()) == 0 || allEmpty(h.ownersInEtcd()) })
	// Heal one at a time, the first well ahead of the others.
	pxs[0].heal()
	waitHealth(t, 2*testTTL, false, nodes[0])
	for _, px := range pxs[1:] {
		px.heal()
	}
	waitHealth(t, 2*testTTL, false, nodes...)
	h.w.wait(2*testTTL, "every camera owned once", func() bool { return h.w.exactlyOneLocked(h.cameras, ids) })
	observe(testTTL)
	noOverlaps(t, h.w)
	if got := h.w.describe(); got != before {
		t.Fatalf("pulls changed after all leases lapsed:\nbefore %s\nafter  %s", before, got)
	}
	for _, e := range h.w.eventsSince(start) {
		if e.o.Self || h.w.isHolder(e.o.Camera, e.node) {
			t.Errorf("ownership moved: %+v", e)
		}
	}
	if owners := h.ownersInEtcd(); !sameOwners(owners, h) {
		t.Fatalf("etcd disagrees with the pulls: %v vs %s", owners, h.w.describe())
	}
}

func allEmpty(m map[string]string) bool {
	for _, v := range m {
		if v != "" {
			return false
		}
	}
	return true
}

func sameOwners(owners map[string]string, h *harness) bool {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	for _, c := range h.cameras {
		if _, ok := h.w.holders[c][owners[c]]; !ok {
			return false
		}
	}
	return true
}
