package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cordon/cluster/clustertest"
)

// testTTL is the lease TTL of the tests: short, to keep them quick. The
// failover benchmark measures the default (5 s) as well.
const testTTL = 2 * time.Second

var prefixSeq atomic.Int64

// world watches what every node in a test was told, as the cameras would
// see it: which nodes pull each camera now, and every moment two nodes
// pulled one camera at once (an overlap).
type world struct {
	t       testing.TB
	mu      sync.Mutex
	holders map[string]map[string]time.Time // camera -> node -> since
	dead    map[string]bool
	events  []event
	over    []overlap
	changed chan struct{} // closed and replaced on every change
}

type event struct {
	at   time.Time
	node string
	o    Owner
}

type overlap struct {
	camera, a, b string
	start, end   time.Time
}

func newWorld(t testing.TB) *world {
	return &world{t: t, holders: map[string]map[string]time.Time{}, dead: map[string]bool{}, changed: make(chan struct{})}
}

// handler returns the Handler of node id.
func (w *world) handler(id string) Handler {
	return HandlerFunc(func(o Owner) {
		w.mu.Lock()
		defer w.mu.Unlock()
		now := time.Now()
		w.events = append(w.events, event{at: now, node: id, o: o})
		h := w.holders[o.Camera]
		if h == nil {
			h = map[string]time.Time{}
			w.holders[o.Camera] = h
		}
		if o.Self {
			for other := range h {
				if other != id {
					w.over = append(w.over, overlap{camera: o.Camera, a: other, b: id, start: now})
				}
			}
			h[id] = now
		} else if _, ok := h[id]; ok {
			delete(h, id)
			for i := range w.over {
				x := &w.over[i]
				if x.camera == o.Camera && x.end.IsZero() && (x.a == id || x.b == id) {
					x.end = now
				}
			}
		}
		w.signal()
	})
}

func (w *world) signal() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// died drops a node's pulls: the process is gone (kill -9).
func (w *world) died(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dead[id] = true
	now := time.Now()
	for cam, h := range w.holders {
		if _, ok := h[id]; ok {
			delete(h, id)
			for i := range w.over {
				x := &w.over[i]
				if x.camera == cam && x.end.IsZero() && (x.a == id || x.b == id) {
					x.end = now
				}
			}
		}
	}
	w.signal()
}

// wait waits until cond (called under the lock) holds, or fails after
// timeout.
func (w *world) wait(timeout time.Duration, what string, cond func() bool) {
	w.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ok := cond()
		ch := w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			w.t.Fatalf("timed out after %s waiting for %s; pulls: %s", timeout, what, w.describe())
		}
	}
}

// owners returns camera -> the nodes pulling it. Call under the lock.
func (w *world) ownersLocked() map[string][]string {
	out := map[string][]string{}
	for cam, h := range w.holders {
		for id := range h {
			out[cam] = append(out[cam], id)
		}
		slices.Sort(out[cam])
	}
	return out
}

// exactlyOne reports whether each camera is pulled by exactly one node
// from among nodes. Call under the lock.
func (w *world) exactlyOneLocked(cameras, nodes []string) bool {
	for _, c := range cameras {
		h := w.holders[c]
		if len(h) != 1 {
			return false
		}
		for id := range h {
			if !slices.Contains(nodes, id) {
				return false
			}
		}
	}
	return true
}

func (w *world) describe() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprint(w.ownersLocked())
}

// isHolder reports whether node pulls camera now.
func (w *world) isHolder(camera, node string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.holders[camera][node]
	return ok
}

// overlaps returns the finished and open overlaps.
func (w *world) overlaps() []overlap {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.over)
}

// eventsSince counts the handler calls after t.
func (w *world) eventsSince(t time.Time) []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event
	for _, e := range w.events {
		if e.at.After(t) {
			out = append(out, e)
		}
	}
	return out
}

// harness is one test's cluster: its own key prefix on the shared etcd,
// its cameras and its world.
type harness struct {
	t       testing.TB
	etcd    *clustertest.Etcd
	prefix  string
	cameras []string
	w       *world
	mu      sync.Mutex
	nodes   map[string]*Node
	sinks   map[string]*sink
	proxies []*proxy
}

func newHarness(t testing.TB, cameras int) *harness {
	e := needEtcd(t)
	h := &harness{t: t, etcd: e, prefix: fmt.Sprintf("/cordon-test/%s-%d/", t.Name(), prefixSeq.Add(1)),
		w: newWorld(t), nodes: map[string]*Node{}, sinks: map[string]*sink{}}
	for i := range cameras {
		h.cameras = append(h.cameras, fmt.Sprintf("cam-%02d", i))
	}
	t.Cleanup(func() {
		h.mu.Lock()
		nodes := h.nodes
		h.nodes = map[string]*Node{}
		h.mu.Unlock()
		for _, n := range nodes {
			n.Close()
		}
		for _, p := range h.proxies { // after the nodes: they leave through them
			p.close()
		}
	})
	return h
}

// proxy starts a proxy to the etcd members, closed after the nodes.
func (h *harness) proxy() *proxy {
	p := newProxy(h.t, h.etcd.Endpoints())
	h.mu.Lock()
	h.proxies = append(h.proxies, p)
	h.mu.Unlock()
	return p
}

// start initializes a node (mut may change its settings first).
func (h *harness) start(id string, mut ...func(*Node)) *Node {
	h.t.Helper()
	sk := newSink()
	n := &Node{
		Revocations: sk,
		Endpoints:   h.etcd.Endpoints(),
		TLS:         h.etcd.TLSConfig(),
		Self:        Member{ID: id, Advertise: "127.0.0.1", HTTPPort: 8080, RTSPPort: 8554},
		LeaseTTL:    testTTL,
		Cameras:     h.cameras,
		Handler:     h.w.handler(id),
		Prefix:      h.prefix,
		Logger:      testLogger(h.t, id),
	}
	for _, f := range mut {
		f(n)
	}
	if err := n.Initialize(); err != nil {
		h.t.Fatalf("node %s: %v", id, err)
	}
	h.mu.Lock()
	h.nodes[id] = n
	h.sinks[id] = sk
	h.mu.Unlock()
	return n
}

func (h *harness) sink(id string) *sink {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sinks[id]
}

// crash kills a node without releasing anything (kill -9).
func (h *harness) crash(id string) {
	h.mu.Lock()
	n := h.nodes[id]
	delete(h.nodes, id)
	h.mu.Unlock()
	n.crash()
	h.w.died(id)
}

// leave closes a node cleanly.
func (h *harness) leave(id string) {
	h.mu.Lock()
	n := h.nodes[id]
	delete(h.nodes, id)
	h.mu.Unlock()
	h.w.died(id) // the gateway stops its pullers before Close
	n.Close()
}

// testLogger logs to the test log when -v, discards otherwise.
func testLogger(t testing.TB, id string) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test_node", id)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// proxy forwards TCP connections to the etcd members and can cut them off
// like a network partition: existing connections are dropped and new ones
// are accepted but go nowhere until heal.
type proxy struct {
	ln      net.Listener
	targets []string
	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
	once    sync.Once
}

func newProxy(t testing.TB, targets []string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, targets: targets, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue // blackholed: held open, never answered, closed at heal
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *proxy) forward(c net.Conn) {
	defer p.wg.Done()
	var up net.Conn
	for _, t := range p.targets {
		var err error
		if up, err = net.DialTimeout("tcp", t, time.Second); err == nil {
			break
		}
	}
	if up == nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// partition drops every connection and blackholes new ones.
func (p *proxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// heal lets connections through again (the blackholed ones are closed, so
// clients reconnect).
func (p *proxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) close() {
	p.once.Do(func() {
		_ = p.ln.Close()
		p.partition()
		p.wg.Wait()
	})
}

// percentile of durations (sorted copy), p in 0..100.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, (len(s)*p)/100)]
}
