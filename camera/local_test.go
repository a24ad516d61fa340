package camera

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"cordon/config"
	"cordon/internal/testtool"
	"cordon/relay"
)

// localAttachment records what SetLocal told it, and whether the pull was
// still running when it was told "no longer local".
type localAttachment struct {
	mu    sync.Mutex
	calls []bool
	ch    chan bool
}

func newLocalAttachment() *localAttachment { return &localAttachment{ch: make(chan bool, 8)} }

func (a *localAttachment) Reload(config.Camera) {}
func (a *localAttachment) Close()               {}
func (a *localAttachment) SetLocal(local bool) {
	a.mu.Lock()
	a.calls = append(a.calls, local)
	a.mu.Unlock()
	a.ch <- local
}

func (a *localAttachment) next(t testing.TB) bool {
	t.Helper()
	return testtool.Recv(t, a.ch, 5*time.Second, "SetLocal")
}

// A remote unit (a cluster node that does not own the camera) relays only
// while readers want it, even for a camera that is not on demand, and
// stops the relay a linger after the last reader.
func TestRemoteUnitPullsOnDemand(t *testing.T) {
	ev := newEventRec()
	u, src, clk := newUnit(t, camConfig("cam1", false), func(u *Unit) { u.Remote = true; u.Events = ev })
	if u.Local() {
		t.Fatal("a unit started Remote reads local")
	}
	s := src.next(t)
	s.noPull(t, u)
	r, _ := u.Stream("").AddReader(relay.ReaderConf{Protocol: "webrtc"})
	p := s.nextPull(t)
	p.play(t)
	waitReady(t, r)
	r.Close()
	clk.Advance(DefaultLinger)
	<-p.ctx.Done()
	if cause := context.Cause(p.ctx); !errors.Is(cause, ErrIdle) {
		t.Fatalf("relay ended by %v, want ErrIdle", cause)
	}
	s.noPull(t, u)
}

// SetLocal(true) pulls a camera that is not on demand at once; SetLocal
// (false) stops the camera pull before it returns and tells LocalAware
// attachments first; each call restarts the pull, skipping the retry
// delay, and viewers stay attached throughout.
func TestSetLocalSwitchesTheSource(t *testing.T) {
	ev := newEventRec()
	u, src, clk := newUnit(t, camConfig("cam1", false), func(u *Unit) { u.Remote = true; u.Events = ev })
	att := newLocalAttachment()
	u.Attach("recorder", att)
	if att.next(t) {
		t.Fatal("attachment told local on a remote unit")
	}
	s := src.next(t)
	s.noPull(t, u)

	u.SetLocal(true)
	if !att.next(t) || !u.Local() {
		t.Fatal("attachment not told local")
	}
	p := s.nextPull(t)
	p.play(t)
	ev.wait(t, "online cam1")
	r, _ := u.Stream("").AddReader(relay.ReaderConf{Protocol: "webrtc"})
	defer r.Close()
	waitReady(t, r)
	p.frame(t, 0)
	nextDelivery(t, r)

	// the owner changes while the camera is up: the pull ends before
	// SetLocal returns, with no offline event (the camera did not fail)
	u.SetLocal(false)
	if p.ctx.Err() == nil {
		t.Fatal("SetLocal(false) returned while the camera pull was still running")
	}
	if cause := context.Cause(p.ctx); !errors.Is(cause, errRepull) {
		t.Fatalf("pull ended by %v, want the switch", cause)
	}
	if att.next(t) {
		t.Fatal("attachment not told remote")
	}
	// the reader keeps the relay wanted: the next pull starts at once
	p2 := s.nextPull(t)
	p2.play(t)
	ev.wait(t, "online cam1")
	p2.frame(t, time.Second)
	if d := nextDelivery(t, r); !d.Key {
		t.Fatal("no frame after the switch")
	}

	// a failed relay waits for its retry delay; another owner skips it
	p2.result <- errRefused
	ev.wait(t, "offline cam1: "+errRefused.Error())
	clk.WaitTimers(1, nil) // the retry delay runs
	u.SetLocal(false)
	s.nextPull(t).play(t) // without advancing the clock
	if st := u.State(); st.Reconnects != 0 {
		t.Fatalf("a switch counted as a reconnect: %+v", st)
	}
}
