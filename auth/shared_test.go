package auth

import (
	"crypto/ed25519"
	"net/http"
	"sync"
	"testing"
	"time"
)

// bus stands in for the cluster: it carries revocations to every node and
// keeps each node's lockout counts for the others to read.
type bus struct {
	mu       sync.Mutex
	nodes    []*Service
	lockouts map[int]map[string]lockState
}

type lockState struct {
	failures int
	until    time.Time
}

func (b *bus) Revoke(id string, expires time.Time) error {
	b.mu.Lock()
	nodes := append([]*Service(nil), b.nodes...)
	b.mu.Unlock()
	for _, n := range nodes {
		n.Revoked(id, expires)
	}
	return nil
}

// nodeLockouts is one node's view of the shared lockout counts.
type nodeLockouts struct {
	b    *bus
	self int
}

func (l nodeLockouts) Record(key string, failures int, until, _ time.Time) {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if l.b.lockouts[l.self] == nil {
		l.b.lockouts[l.self] = map[string]lockState{}
	}
	l.b.lockouts[l.self][key] = lockState{failures, until}
}

func (l nodeLockouts) Remote(key string, _ time.Time) (int, time.Time) {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	var f int
	var until time.Time
	for n, m := range l.b.lockouts {
		if n == l.self {
			continue
		}
		f += m[key].failures
		if m[key].until.After(until) {
			until = m[key].until
		}
	}
	return f, until
}

// clusterOf starts n services sharing one token key, revocations and
// lockout counts through a bus, as the nodes of a cluster do.
func clusterOf(t *testing.T, n int) ([]*fixture, *bus) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	b := &bus{lockouts: map[int]map[string]lockState{}}
	users, keys := defaultUsers(t)
	var fs []*fixture
	for i := range n {
		f := newFixtureWith(t, t.TempDir(), users, keys, func(s *Service) {
			s.TokenKey, s.Revocations, s.SharedLockouts = key, b, nodeLockouts{b: b, self: i}
		})
		b.nodes = append(b.nodes, f.svc)
		fs = append(fs, f)
	}
	return fs, b
}

// A token issued by one node works on another; a logout on one is refused
// on the other at once, and the other's subscribers are told so they end
// the token's live sessions.
func TestClusterTokenAndLogout(t *testing.T) {
	nodes, _ := clusterOf(t, 2)
	a, c := nodes[0], nodes[1]
	tok := a.token(t, "alice", alicePW)
	if _, err := c.svc.AuthenticateRequest(bearerRequest(http.MethodGet, "/api/v1/cameras", tok)); err != nil {
		t.Fatalf("a token of node A refused on node C: %v", err)
	}
	told := make(chan Change, 4)
	defer c.svc.Subscribe(func(ch Change) { told <- ch })()

	w := newRecorder()
	a.svc.LogoutHandler().ServeHTTP(w, bearerRequest(http.MethodPost, "/api/v1/logout", tok))
	if w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if _, err := c.svc.AuthenticateRequest(bearerRequest(http.MethodGet, "/api/v1/cameras", tok)); err == nil {
		t.Fatal("node C accepts a token logged out on node A")
	}
	select {
	case ch := <-told:
		if ch.Kind != TokenRevoked || ch.TokenID == "" {
			t.Fatalf("node C told %+v", ch)
		}
	default:
		t.Fatal("node C's subscribers were not told of the revocation")
	}
	// the revocation arriving again (every node's watch sees its own) is
	// not news
	a.svc.Revoked(ch0(t, c), time.Now().Add(time.Hour))
	select {
	case ch := <-told:
		t.Fatalf("a repeated revocation was published again: %+v", ch)
	default:
	}
	// and it survives a restart of node C (persisted in its state dir)
	c2 := &Service{StateDir: c.stateDir, TokenTTL: time.Hour, Directory: c.dir, Audit: c.audit, Logger: quiet(), Now: c.clock.Now,
		TokenKey: c.svc.TokenKey}
	if err := c2.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.AuthenticateRequest(bearerRequest(http.MethodGet, "/api/v1/cameras", tok)); err == nil {
		t.Fatal("node C forgot the revocation across a restart")
	}
}

// ch0 returns one token id node f's revocations hold.
func ch0(t *testing.T, f *fixture) string {
	t.Helper()
	f.svc.revoked.mu.RLock()
	defer f.svc.revoked.mu.RUnlock()
	for id := range f.svc.revoked.m {
		return id
	}
	t.Fatal("no revocation held")
	return ""
}

// Failures on different nodes add up: three on node A and two on node C
// from one address lock it on both.
func TestClusterLockoutAddsUp(t *testing.T) {
	nodes, _ := clusterOf(t, 2)
	a, c := nodes[0], nodes[1]
	const addr = "198.51.100.7"
	for range 3 {
		if w := a.login(t, "alice", "wrong", addr); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure on A: %d", w.Code)
		}
	}
	if w := c.login(t, "alice", "wrong", addr); w.Code != http.StatusUnauthorized {
		t.Fatalf("failure on C: %d", w.Code)
	}
	// the fifth failure, counted with A's three, locks the address on C
	if w := c.login(t, "bob", "wrong", addr); w.Code != http.StatusUnauthorized {
		t.Fatalf("fifth failure on C: %d", w.Code)
	}
	if w := c.login(t, "alice", alicePW, addr); w.Code != http.StatusTooManyRequests {
		t.Fatalf("node C after five failures in the cluster: %d, want 429", w.Code)
	}
	if w := a.login(t, "alice", alicePW, addr); w.Code != http.StatusTooManyRequests {
		t.Fatalf("node A while node C locks the address: %d, want 429", w.Code)
	}
	// another address is never refused
	if w := a.login(t, "alice", alicePW, "198.51.100.8"); w.Code != http.StatusOK {
		t.Fatalf("another address: %d", w.Code)
	}
}
