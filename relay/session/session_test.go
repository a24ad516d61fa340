package session

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type fake struct {
	in    Info
	mu    sync.Mutex
	ended string
	r     *Registry
}

func (f *fake) Info() Info { return f.in }
func (f *fake) End(reason string) {
	f.mu.Lock()
	f.ended = reason
	f.mu.Unlock()
	f.r.Remove(f.in.ID)
}

func add(t *testing.T, r *Registry, proto, user, camera string, started int) *fake {
	t.Helper()
	f := &fake{in: Info{ID: NewID(), Protocol: proto, User: user, Camera: camera, Started: time.Unix(int64(started), 0)}, r: r}
	if err := r.Add(f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCapsPerProtocolAndPrincipal(t *testing.T) {
	r := &Registry{MaxPerProtocol: 3, MaxPerPrincipal: 2}
	add(t, r, "webrtc", "alice", "a", 1)
	a2 := add(t, r, "webrtc", "alice", "a", 2)
	var le *LimitError
	if err := r.Check("webrtc", "alice"); !errors.As(err, &le) || !le.Principal || le.Count != 2 {
		t.Fatalf("alice's third: %v", err)
	}
	add(t, r, "rtsp", "alice", "a", 3) // caps are per protocol
	add(t, r, "webrtc", "bob", "a", 4)
	if err := r.Add(&fake{in: Info{ID: NewID(), Protocol: "webrtc", User: "carol"}, r: r}); !errors.As(err, &le) || le.Principal {
		t.Fatalf("fourth webrtc session: %v", err)
	}
	if r.Count("webrtc") != 3 || r.Count("") != 4 {
		t.Fatalf("counts %d %d", r.Count("webrtc"), r.Count(""))
	}
	r.Remove(a2.in.ID)
	r.Remove(a2.in.ID) // idempotent
	if err := r.Check("webrtc", "alice"); err != nil {
		t.Fatalf("after a session ended: %v", err)
	}
	if dup := r.Add(add(t, r, "webrtc", "dave", "b", 5)); dup == nil {
		t.Fatal("the same session registered twice")
	}
	unlimited := &Registry{MaxPerProtocol: -1, MaxPerPrincipal: -1}
	for i := range 100 {
		add(t, unlimited, "rtsp", "wall", "a", i)
	}
}

func TestListKillRecheck(t *testing.T) {
	r := &Registry{}
	b := add(t, r, "rtsp", "bob", "gate", 2)
	a := add(t, r, "webrtc", "alice", "gate", 1)
	c := add(t, r, "webrtc", "carol", "yard", 3)
	l := r.List()
	if len(l) != 3 || l[0].ID != a.in.ID || l[1].ID != b.in.ID || l[2].ID != c.in.ID {
		t.Fatalf("List %+v", l)
	}
	in, ok := r.Kill(b.in.ID, "killed")
	if !ok || in.User != "bob" || b.ended != "killed" {
		t.Fatalf("Kill: %+v %v %q", in, ok, b.ended)
	}
	if _, ok := r.Kill(b.in.ID, "killed"); ok {
		t.Fatal("killed twice")
	}
	ended := r.Recheck(func(in Info) bool { return in.Camera != "yard" })
	if len(ended) != 1 || ended[0].User != "carol" || c.ended != "revoked" || a.ended != "" {
		t.Fatalf("Recheck ended %+v", ended)
	}
	r.Close()
	if a.ended != "server_closed" || r.Count("") != 0 {
		t.Fatal("Close left a session")
	}
	if err := r.Check("webrtc", "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestIDs(t *testing.T) {
	id := NewID()
	if !ValidID(id) || ValidID(id[1:]) || ValidID("zz"+id[2:]) || id == NewID() {
		t.Fatal(id)
	}
}

// Peer sessions (another cluster node relaying a camera) are listed and
// can be killed but count against no cap; a closed registry refuses them.
func TestPeerSessionsUncapped(t *testing.T) {
	r := &Registry{MaxPerProtocol: 1, MaxPerPrincipal: 1}
	add(t, r, "rtsp", "alice", "a", 1)
	var peers []*fake
	for i := range 3 {
		f := &fake{in: Info{ID: NewID(), Protocol: "rtsp", User: "peer/node-b", Kind: KindPeer, Camera: "a", Started: time.Unix(int64(i), 0)}, r: r}
		if err := r.Add(f); err != nil {
			t.Fatalf("peer session %d: %v", i, err)
		}
		peers = append(peers, f)
	}
	if n := len(r.List()); n != 4 || r.Count("rtsp") != 1 {
		t.Fatalf("listed %d, counted %d", n, r.Count("rtsp"))
	}
	if _, ok := r.Kill(peers[0].in.ID, "killed"); !ok {
		t.Fatal("a peer session could not be killed")
	}
	r.Remove(peers[1].in.ID)
	if n := len(r.List()); n != 2 || r.Count("rtsp") != 1 {
		t.Fatalf("after removals: listed %d, counted %d", n, r.Count("rtsp"))
	}
	r.Close()
	if err := r.Add(&fake{in: Info{ID: NewID(), Protocol: "rtsp", User: "peer/node-b", Kind: KindPeer}, r: r}); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed registry: %v", err)
	}
}
