package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"cordon/internal/testtool"
)

// sink is a RevocationSink that records arrival times.
type sink struct {
	mu      sync.Mutex
	got     map[string]time.Time
	changed chan struct{}
}

func newSink() *sink { return &sink{got: map[string]time.Time{}, changed: make(chan struct{})} }

func (s *sink) Revoked(id string, _ time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.got[id]; !ok {
		s.got[id] = time.Now()
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until id arrived and returns when it did.
func (s *sink) waitFor(t *testing.T, id string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		at, ok := s.got[id]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return at
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("revocation %s did not arrive within %s", id, timeout)
		}
	}
}

// TestRevocationReachesEveryNode: a logout on node a is known on node c
// within 1 s (measured over 20 revocations).
func TestRevocationReachesEveryNode(t *testing.T) {
	h := newHarness(t, 0)
	a := h.start("a")
	h.start("b")
	h.start("c")
	var worst time.Duration
	for i := range 20 {
		id := fmt.Sprintf("%032x", i+1)
		start := time.Now()
		if err := a.Revoke(id, time.Now().Add(8*time.Hour)); err != nil {
			t.Fatal(err)
		}
		at := h.sink("c").waitFor(t, id, time.Second)
		worst = max(worst, at.Sub(start))
		h.sink("a").waitFor(t, id, time.Second) // the sink sees its own node's too
	}
	t.Logf("revocation a -> c: worst of 20 = %s", worst)
	if worst > time.Second {
		t.Fatalf("revocation took %s to reach another node", worst)
	}
	for _, bad := range []string{"", "a/b", strings.Repeat("x", 129), "id with space"} {
		if err := a.Revoke(bad, time.Now().Add(time.Hour)); err == nil {
			t.Errorf("Revoke(%q) accepted", bad)
		}
	}
	// A node that starts later learns the revocations still in force.
	late := h.start("late")
	_ = late
	h.sink("late").waitFor(t, fmt.Sprintf("%032x", 1), 2*time.Second)
}

// TestRevocationWhileCutOff: a logout on a node that cannot reach etcd is
// published when it can again.
func TestRevocationWhileCutOff(t *testing.T) {
	h := newHarness(t, 0)
	px := h.proxy()
	a := h.start("a", func(n *Node) { n.Endpoints = []string{px.addr()} })
	h.start("c")
	px.partition()
	waitHealth(t, testTTL, true, a)
	id := "c0ffeec0ffeec0ffeec0ffeec0ffee00"
	if err := a.Revoke(id, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	px.heal()
	h.sink("c").waitFor(t, id, 3*testTTL)
}

// TestLockoutsShared: counts recorded on two nodes add up on a third; a
// flood of keys costs etcd at most one write per node per second and at
// most MaxSharedLockouts entries.
func TestLockoutsShared(t *testing.T) {
	h := newHarness(t, 0)
	a, b, c := h.start("a"), h.start("b"), h.start("c")
	exp := time.Now().Add(time.Minute)
	a.Lockouts().Record("addr:192.0.2.7", 3, time.Time{}, exp)
	b.Lockouts().Record("addr:192.0.2.7", 2, time.Time{}, exp)
	locked := time.Now().Add(30 * time.Second).Truncate(time.Second)
	b.Lockouts().Record("user:alice|192.0.2.8", 6, locked, exp)
	b.Lockouts().Record("addr:192.0.2.9", 1, time.Time{}, exp) // single failure: local only
	testtool.WaitFor(t, 3*time.Second, "c sees a's and b's counts", func() bool {
		f, _ := c.Lockouts().Remote("addr:192.0.2.7", time.Now())
		f2, l := c.Lockouts().Remote("user:alice|192.0.2.8", time.Now())
		return f == 5 && f2 == 6 && l.Equal(locked)
	})
	if f, _ := c.Lockouts().Remote("addr:192.0.2.9", time.Now()); f != 0 {
		t.Errorf("a single failure was shared: %d", f)
	}
	if f, _ := a.Lockouts().Remote("addr:192.0.2.7", time.Now()); f != 2 {
		t.Errorf("Remote on a counts a itself: %d, want b's 2", f)
	}
	// An entry past its expiry no longer counts, even before a new flush.
	b.Lockouts().Record("addr:192.0.2.10", 4, time.Time{}, time.Now().Add(1500*time.Millisecond))
	testtool.WaitFor(t, 3*time.Second, "c sees the short-lived entry", func() bool {
		f, _ := c.Lockouts().Remote("addr:192.0.2.10", time.Now())
		return f == 4
	})
	testtool.WaitFor(t, 3*time.Second, "the entry expired on c", func() bool {
		f, _ := c.Lockouts().Remote("addr:192.0.2.10", time.Now())
		return f == 0
	})
	// A success forgets the key everywhere.
	a.Lockouts().Record("addr:192.0.2.7", 0, time.Time{}, time.Time{})
	b.Lockouts().Record("addr:192.0.2.7", 0, time.Time{}, time.Time{})
	testtool.WaitFor(t, 3*time.Second, "the reset reaches c", func() bool {
		f, _ := c.Lockouts().Remote("addr:192.0.2.7", time.Now())
		return f == 0
	})

	// Flood: 30,000 addresses with 3 failures each, over 3 seconds (more
	// keys than a node keeps: the oldest are evicted).
	writes := func() float64 { return testutil.ToFloat64(a.Metrics.Writes.WithLabelValues("lockout")) }
	before := writes()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := range 30 {
		for j := range 1000 {
			k := i*1000 + j
			a.Lockouts().Record(fmt.Sprintf("addr:10.%d.%d.%d", k>>16&255, k>>8&255, k&255), 3, time.Time{}, exp)
		}
		<-tick.C
	}
	tick.Stop()
	elapsed := time.Since(start)
	if n := len(a.Lockouts().local); n > maxLockoutLocal {
		t.Fatalf("a keeps %d lockout keys, more than %d", n, maxLockoutLocal)
	}
	testtool.WaitFor(t, 3*time.Second, "the flood's document on c", func() bool {
		n := 0
		c.m.view(lockoutDir, func(d map[string]*mirrorEntry) {
			if e, ok := d["a"]; ok {
				n = len(e.value.(lockoutDoc).Entries)
			}
		})
		return n == MaxSharedLockouts
	})
	got := writes() - before
	if limit := elapsed.Seconds()/LockoutFlush.Seconds() + 3; got > limit {
		t.Fatalf("the flood made %.0f lockout writes in %s (limit %.0f)", got, elapsed, limit)
	}
	t.Logf("flood of %s: %.0f lockout writes to etcd, %d entries shared", elapsed.Round(time.Millisecond), got, MaxSharedLockouts)
}

// TestLockoutLockFlushedAtOnce: a new lock reaches the other nodes without
// waiting for the periodic flush (here an hour), so even the first lock,
// which lasts only auth.lockout.base, is in force cluster-wide; counts
// without a lock wait for the flush.
func TestLockoutLockFlushedAtOnce(t *testing.T) {
	h := newHarness(t, 0)
	slow := func(n *Node) { n.LockoutFlush = time.Hour }
	a, b := h.start("a", slow), h.start("b")
	exp := time.Now().Add(time.Minute)
	a.Lockouts().Record("addr:192.0.2.20", 3, time.Time{}, exp) // no lock: waits
	locked := time.Now().Add(30 * time.Second).Truncate(time.Second)
	a.Lockouts().Record("addr:192.0.2.21", 5, locked, exp)
	testtool.WaitFor(t, 10*time.Second, "b sees a's new lock", func() bool {
		_, l := b.Lockouts().Remote("addr:192.0.2.21", time.Now())
		return l.Equal(locked)
	})
	// the lock's write carried the whole document, the unlocked count too
	if f, _ := b.Lockouts().Remote("addr:192.0.2.20", time.Now()); f != 3 {
		t.Errorf("b sees %d failures of the unlocked key, want 3 (written with the lock)", f)
	}
}

type testSession struct {
	User   string `json:"user"`
	Camera string `json:"camera"`
	Bytes  int64  `json:"bytes"`
}

// TestReports: every node publishes its sessions; any node reads all of
// them; a dead node's document goes with its lease. Byte counters alone
// wait for Refresh; a new session is written at once.
func TestReports(t *testing.T) {
	h := newHarness(t, 0)
	var mu sync.Mutex
	sessions := map[string][]testSession{}
	reports := map[string]*Report[[]testSession]{}
	for _, id := range []string{"a", "b", "c"} {
		n := h.start(id)
		sessions[id] = []testSession{{User: "alice-" + id, Camera: "gate", Bytes: 1}}
		r := &Report[[]testSession]{Node: n, Kind: "sessions", Every: 100 * time.Millisecond, Refresh: time.Hour,
			Source: func() []testSession {
				mu.Lock()
				defer mu.Unlock()
				return append([]testSession(nil), sessions[id]...)
			},
			Significant: func(old, new []testSession) bool { return len(old) != len(new) },
		}
		if err := r.Initialize(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		reports[id] = r
	}
	read := func() []NodeReport[[]testSession] {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := reports["b"].Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	testtool.WaitFor(t, 3*time.Second, "three documents", func() bool { return len(read()) == 3 })
	mu.Lock()
	sessions["a"][0].Bytes = 999                                                    // not significant: waits for Refresh
	sessions["c"] = append(sessions["c"], testSession{User: "bob", Camera: "yard"}) // significant
	mu.Unlock()
	testtool.WaitFor(t, 3*time.Second, "c's second session", func() bool {
		r := read()
		return len(r) == 3 && len(r[2].Doc) == 2
	})
	if r := read(); r[0].Node != "a" || r[0].Doc[0].Bytes != 1 {
		t.Errorf("a byte-count-only change was written before Refresh: %+v", r[0])
	}
	h.crash("c")
	testtool.WaitFor(t, 2*testTTL, "c's document gone with its lease", func() bool { return len(read()) == 2 })

	// A live report is read from the mirror.
	v := &Report[map[string]int]{Node: h.nodes["a"], Kind: "viewers", Live: true, Every: 100 * time.Millisecond,
		Source: func() map[string]int { return map[string]int{"gate": 3} }}
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rb := &Report[map[string]int]{Node: h.nodes["b"], Kind: "viewers", Live: true, Source: func() map[string]int { return nil }}
	testtool.WaitFor(t, 3*time.Second, "a's viewers on b", func() bool {
		out, _ := rb.Read(context.Background())
		for _, x := range out {
			if x.Node == "a" && x.Doc["gate"] == 3 {
				return true
			}
		}
		return false
	})
	if err := (&Report[int]{Node: h.nodes["a"], Kind: "Bad/Kind", Source: func() int { return 0 }}).Initialize(); err == nil {
		t.Error("a bad report kind was accepted")
	}
}

// TestStatus: `cordon cluster status` data straight from etcd and from a
// node, and its table: dead nodes stay listed as not alive; unowned and
// unknown cameras are marked.
func TestStatus(t *testing.T) {
	h := newHarness(t, 4)
	a := h.start("a", func(n *Node) { n.Self.Advertise = "10.0.0.11" })
	h.start("b", func(n *Node) { n.Self.Advertise = "10.0.0.12" })
	h.settled([]string{"a", "b"}, 10*time.Second)
	h.crash("b")
	h.w.wait(3*testTTL, "a owns everything", func() bool { return h.w.exactlyOneLocked(h.cameras, []string{"a"}) })
	cli, err := h.etcd.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := ReadStatus(ctx, cli, h.prefix, append([]string{"cam-unowned"}, h.cameras...))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || !st.Nodes[0].Alive || st.Nodes[0].Cameras != 4 || st.Nodes[1].Alive || st.Nodes[1].Address != "10.0.0.12" {
		t.Fatalf("nodes = %+v", st.Nodes)
	}
	if st.Unowned() != 1 {
		t.Fatalf("unowned = %d: %+v", st.Unowned(), st.Cameras)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, st); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"NODE", "a     10.0.0.11  yes    4", "b     10.0.0.12  no     0", "cam-unowned  -      no      no live owner", "cam-00       a"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// A dead node can be forgotten; a live one cannot.
	if err := Forget(ctx, cli, h.prefix, "a"); !errors.Is(err, ErrNodeAlive) {
		t.Fatalf("Forget(live a) = %v", err)
	}
	if err := Forget(ctx, cli, h.prefix, "nobody"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Forget(nobody) = %v", err)
	}
	if err := Forget(ctx, cli, h.prefix, "b"); err != nil {
		t.Fatal(err)
	}
	if st, _ := ReadStatus(ctx, cli, h.prefix, h.cameras); len(st.Nodes) != 1 || st.Nodes[0].ID != "a" {
		t.Fatalf("after forgetting b: %+v", st.Nodes)
	}
	// The node's own view (GET /api/v1/admin/cluster) agrees.
	ns := a.Status(ctx)
	if ns.Node != "a" || ns.Degraded || len(ns.Nodes) != 1 || len(ns.Cameras) != 4 || ns.Cameras[0].Owner != "a" {
		t.Fatalf("node status = %+v", ns)
	}
	// A camera owned but no longer configured is listed as such.
	if _, err := cli.Put(ctx, h.prefix+"live/owners/cam-gone", `{"node":"a","status":{}}`); err != nil {
		t.Fatal(err)
	}
	st, _ = ReadStatus(ctx, cli, h.prefix, h.cameras)
	buf.Reset()
	_ = WriteTable(&buf, st)
	if !strings.Contains(buf.String(), "not in this configuration") {
		t.Errorf("an unconfigured owned camera is not marked:\n%s", buf.String())
	}
}

// TestTLSRequired: etcd demands a client certificate; a node without one
// never registers (degraded, owning nothing), and says why.
func TestTLSRequired(t *testing.T) {
	e := needEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: time.Second,
		TLS: &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12}})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Get(ctx, "x")
		cancel()
		_ = cli.Close()
	}
	if err == nil {
		t.Fatal("etcd answered a client without a certificate")
	}
	h := newHarness(t, 2)
	n := h.start("nocert", func(n *Node) {
		n.TLS = &tls.Config{RootCAs: e.CAPool(), MinVersion: tls.VersionTLS12}
		n.DialTimeout = 500 * time.Millisecond
	})
	observe(testTTL)
	if hl := n.Health(); !hl.Degraded || !strings.Contains(hl.Reason, "not registered") {
		t.Fatalf("health without a client certificate: %+v", hl)
	}
	if ev := h.w.eventsSince(time.Time{}); len(ev) > 0 {
		t.Fatalf("a node that never registered owns cameras: %+v", ev)
	}
}
