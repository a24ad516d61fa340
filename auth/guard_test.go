package auth

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// registry is a door's live session list, as a test double with the
// shape every real registry has: list, end (idempotent).
type registry struct {
	mu    sync.Mutex
	live  map[string]Live
	ended chan endedSession
}

type endedSession struct {
	id  string
	err error
	at  time.Time
}

func newRegistry() *registry {
	return &registry{live: map[string]Live{}, ended: make(chan endedSession, 100)}
}

func (r *registry) add(l Live) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[l.ID] = l
}

func (r *registry) list() []Live {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Live, 0, len(r.live))
	for _, l := range r.live {
		out = append(out, l)
	}
	return out
}

func (r *registry) end(l Live, err error) {
	r.mu.Lock()
	_, ok := r.live[l.ID]
	delete(r.live, l.ID)
	r.mu.Unlock()
	if ok {
		r.ended <- endedSession{l.ID, err, time.Now()}
	}
}

// waitEnded returns the next ended session, failing after limit.
func (r *registry) waitEnded(t *testing.T, limit time.Duration) endedSession {
	t.Helper()
	select {
	case e := <-r.ended:
		return e
	case <-time.After(limit):
		t.Fatal("no session ended in time")
	}
	return endedSession{}
}

// assertNoneEnded checks that nothing else ended, once the guard has
// swept every change notified so far.
func (r *registry) assertNoneEnded(t *testing.T, g *Guard) {
	t.Helper()
	g.flush()
	select {
	case e := <-r.ended:
		t.Fatalf("session %s ended: %v", e.id, e.err)
	default:
	}
}

func startGuard(t *testing.T, f *fixture, r *registry, interval time.Duration) *Guard {
	t.Helper()
	g := &Guard{Service: f.svc, List: r.list, End: r.end, Interval: interval, Logger: quiet()}
	if err := g.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// Every kind of change ends exactly the live sessions that may no longer
// continue, at once (well within the CONTRACT's 5 s), and no others.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestGuardEndsWhatIsNoLongerAllowed(t *testing.T) {
	f := rolesFixture(t)
	r := newRegistry()
	g := startGuard(t, f, r, time.Hour) // only changes, no periodic sweep
	carolHash := f.dir.current().users["carol"].encoded
	daveHash := f.dir.current().users["dave"].encoded
	carolTok := f.token(t, "carol", "carol-pw")
	carol, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", carolTok))
	if err != nil {
		t.Fatal(err)
	}
	carol2Tok := f.token(t, "carol", "carol-pw")
	carol2, _ := f.svc.AuthenticateRequest(bearerRequest("GET", "/", carol2Tok))
	nvr, err := f.svc.AuthenticatePassword("nvr-1", vmsKey, "10.0.0.9", "rtsp")
	if err != nil {
		t.Fatal(err)
	}
	dave := lookup(t, f, "dave", KindUser)
	r.add(Live{ID: "carol-gate", Principal: carol, Right: RightView, Camera: "gate-north"})
	r.add(Live{ID: "carol-ptz", Principal: carol, Right: RightPTZ, Camera: "gate-north"})
	r.add(Live{ID: "carol2-lobby", Principal: carol2, Right: RightView, Camera: "lobby"})
	r.add(Live{ID: "nvr-yard", Principal: nvr, Right: RightView, Camera: "yard-1"})
	r.add(Live{ID: "dave-playback", Principal: dave, Right: RightPlayback, Camera: "gate-north"})

	// 1. Logout ends the sessions of that token only.
	start := time.Now()
	if err := f.svc.Logout(carol, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		e := r.waitEnded(t, 5*time.Second)
		if !errors.Is(e.err, ErrTokenRevoked) {
			t.Fatalf("%s: %v", e.id, e.err)
		}
		got[e.id] = true
	}
	if !got["carol-gate"] || !got["carol-ptz"] || time.Since(start) > 5*time.Second {
		t.Fatalf("logout ended %v after %v", got, time.Since(start))
	}
	r.assertNoneEnded(t, g)

	// 2. A role narrowed: the operator role loses yard-*: the NVR's yard
	// session ends, nothing else.
	roles := testRoles()
	roles[0].Cameras = []string{"gate-*"}
	cfg := DirectoryConfig{Roles: roles, Users: []User{
		{Name: "carol", PasswordHash: carolHash, Cameras: []string{"lobby"}, Roles: []string{"operator", "supervisor"}},
		{Name: "dave", PasswordHash: daveHash, Roles: []string{"investigator"}},
	}, APIKeys: []APIKey{{Name: "nvr-1", KeyHash: f.dir.current().keys["nvr-1"].encoded, Roles: []string{"operator"}}}}
	if err := f.dir.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if e := r.waitEnded(t, 5*time.Second); e.id != "nvr-yard" || !errors.Is(e.err, ErrForbidden) {
		t.Fatalf("narrowed role: %s %v", e.id, e.err)
	}
	r.assertNoneEnded(t, g)

	// 3. A changed password ends every session authenticated with the old
	// one (carol2's token carries the old credential).
	cfg.Users[0].PasswordHash = mustHash(t, "carol-rotated")
	if err := f.dir.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if e := r.waitEnded(t, 5*time.Second); e.id != "carol2-lobby" || !errors.Is(e.err, ErrPrincipalGone) {
		t.Fatalf("password change: %s %v", e.id, e.err)
	}

	// 4. A removed user.
	cfg.Users = cfg.Users[:1]
	if err := f.dir.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if e := r.waitEnded(t, 5*time.Second); e.id != "dave-playback" || !errors.Is(e.err, ErrPrincipalGone) {
		t.Fatalf("removed user: %s %v", e.id, e.err)
	}
	if len(r.list()) != 0 {
		t.Fatalf("left: %v", r.list())
	}
	if EndReason(ErrTokenRevoked) == EndReason(ErrForbidden) || EndReason(nil) != "ended" {
		t.Fatal("end reasons")
	}
}

// The periodic sweep catches what no change announces: a directory
// identity's sign-in expiring.
func TestGuardPeriodicSweepEndsExpiredIdentity(t *testing.T) {
	f := rolesFixture(t)
	r := newRegistry()
	exp := f.clock.Now().Add(time.Minute)
	_, p, err := f.svc.LoginIdentity(t.Context(), Identity{Name: "erin", Source: SourceOIDC, Roles: []string{"operator"}, Expires: exp}, "192.0.2.9", "http")
	if err != nil {
		t.Fatal(err)
	}
	r.add(Live{ID: "erin-gate", Principal: p, Right: RightView, Camera: "gate-north"})
	g := startGuard(t, f, r, 20*time.Millisecond)
	if n := g.Sweep(); n != 0 {
		t.Fatalf("swept %d before expiry", n)
	}
	f.clock.Advance(2 * time.Minute)
	if e := r.waitEnded(t, 5*time.Second); e.id != "erin-gate" || !errors.Is(e.err, ErrPrincipalGone) {
		t.Fatalf("expired identity: %s %v", e.id, e.err)
	}
}

func TestGuardInitializeValidation(t *testing.T) {
	if err := (&Guard{}).Initialize(); err == nil {
		t.Fatal("no service accepted")
	}
	f := newFixture(t)
	if err := (&Guard{Service: f.svc}).Initialize(); err == nil {
		t.Fatal("no List/End accepted")
	}
	g := &Guard{Service: f.svc, List: func() []Live { return nil }, End: func(Live, error) {}}
	if err := g.Initialize(); err != nil {
		t.Fatal(err)
	}
	g.Close()
	g.Close() // idempotent
}
