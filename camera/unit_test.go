package camera

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/config"
	"cordon/internal/testtool"
	"cordon/relay"
)

func nextDelivery(t testing.TB, r *relay.Reader) relay.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return d
}

func waitReady(t testing.TB, r *relay.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// A failing camera is retried after a doubling, capped, jittered delay; a
// connection that stayed up HealthyAfter starts the doubling over. The
// state and the metrics count every retry.
func TestBackoff(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	u, src, clk := newUnit(t, camConfig("cam1", false), func(u *Unit) { u.Metrics = m; u.HealthyAfter = time.Minute })
	s := src.next(t)
	s.nextPull(t).result <- errRefused
	for i, w := range []time.Duration{100, 200, 400, 400, 400} {
		w *= time.Millisecond
		clk.WaitTimers(1, nil)
		d, _ := clk.Next()
		if d < w*3/4 || d > w {
			t.Fatalf("retry %d after %v, want %v less up to a quarter", i, d, w)
		}
		st := u.State()
		if st.Online || st.LastError != errRefused.Error() || st.Reconnects != uint64(i) {
			t.Fatalf("state before retry %d: %+v", i, st)
		}
		clk.Advance(d)
		s.nextPull(t).result <- errRefused
	}
	// a connection that stays up a minute resets the backoff
	clk.WaitTimers(1, nil)
	d, _ := clk.Next()
	clk.Advance(d)
	p := s.nextPull(t)
	p.play(t)
	clk.Advance(time.Minute)
	p.result <- errRefused
	clk.WaitTimers(1, nil)
	if d, _ := clk.Next(); d > 100*time.Millisecond {
		t.Fatalf("retry after a healthy connection in %v, want the first step again", d)
	}
	if got := testutil.ToFloat64(m.reconnects.WithLabelValues("cam1")); got != 6 || u.State().Reconnects != 6 {
		t.Fatalf("reconnects metric %v, state %d, want 6", got, u.State().Reconnects)
	}
}

func TestBackoffSequence(t *testing.T) {
	b := backoff{min: 500 * time.Millisecond, max: 30 * time.Second}
	var got []time.Duration
	for range 9 {
		got = append(got, b.next())
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	b.reset()
	if d := b.next(); d != 500*time.Millisecond {
		t.Fatalf("after reset %v", d)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		d := jitter(time.Second)
		if d < 750*time.Millisecond || d > time.Second {
			t.Fatal(d)
		}
	}
}

// An on-demand camera is pulled only while it has readers, and for the
// linger (default 10 s) after the last one leaves; a reader arriving within
// the linger keeps the pull.
func TestOnDemandLinger(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	ev := newEventRec()
	u, src, clk := newUnit(t, camConfig("lazy", true), func(u *Unit) { u.Metrics = m; u.Events = ev })
	if u.Linger != DefaultLinger || DefaultLinger != 10*time.Second {
		t.Fatalf("linger %v, default %v, want 10 s", u.Linger, DefaultLinger)
	}
	s := src.next(t)
	s.noPull(t, u)
	if st := u.State(); st.Online || st.LastError != "" {
		t.Fatalf("state before any reader %+v", st)
	}
	stream := u.Stream("")
	r, _ := stream.AddReader(relay.ReaderConf{Protocol: "webrtc"})
	p := s.nextPull(t)
	p.play(t)
	ev.wait(t, "online lazy")
	waitReady(t, r)
	p.frame(t, 0)
	if d := nextDelivery(t, r); !d.Key {
		t.Fatal("first frame not a keyframe")
	}
	if st := u.State(); !st.Online || st.Viewers != 1 || st.Readers["webrtc"] != 1 || testutil.ToFloat64(m.up.WithLabelValues("lazy")) != 1 {
		t.Fatalf("state while watched %+v", st)
	}

	// a viewer leaving and another arriving within the linger keeps it up
	r.Close()
	clk.Advance(DefaultLinger - time.Millisecond)
	r2, _ := stream.AddReader(relay.ReaderConf{Protocol: "rtsp"})
	clk.Advance(time.Hour)
	if p.ctx.Err() != nil {
		t.Fatal("pull stopped while a reader was attached")
	}

	r2.Close()
	clk.Advance(DefaultLinger - time.Millisecond)
	if p.ctx.Err() != nil {
		t.Fatal("pull stopped before the linger ran out")
	}
	clk.Advance(time.Millisecond)
	<-p.ctx.Done()
	if cause := context.Cause(p.ctx); !errors.Is(cause, ErrIdle) {
		t.Fatalf("pull ended by %v, want ErrIdle", cause)
	}
	ev.wait(t, "offline lazy: "+ErrIdle.Error())
	s.noPull(t, u)
	if st := u.State(); st.Online || st.LastError != "" || st.Reconnects != 0 || testutil.ToFloat64(m.up.WithLabelValues("lazy")) != 0 {
		t.Fatalf("state after the linger %+v", st)
	}
	// the next reader starts it again
	r3, _ := stream.AddReader(relay.ReaderConf{Protocol: "webrtc"})
	defer r3.Close()
	s.nextPull(t).play(t)
	waitReady(t, r3)
}

// A non-viewer reader (a recorder) keeps an on-demand camera pulled and is
// not counted as a viewer.
func TestRecorderKeepsOnDemandCameraPulled(t *testing.T) {
	u, src, clk := newUnit(t, camConfig("lazy", true), nil)
	s := src.next(t)
	rec, _ := u.Stream("").AddReader(relay.ReaderConf{Consumer: "record"})
	defer rec.Close()
	p := s.nextPull(t)
	p.play(t)
	waitReady(t, rec)
	clk.Advance(time.Hour)
	p.frame(t, 0)
	nextDelivery(t, rec)
	if p.ctx.Err() != nil {
		t.Fatal("the recorder did not keep the camera pulled")
	}
	if st := u.State(); st.Viewers != 0 || !st.Online {
		t.Fatalf("state %+v: a recorder is no viewer", st)
	}
}

// A source error ends the connection, becomes the camera's last error
// (redacted) and the camera is retried.
func TestSourceErrorReconnects(t *testing.T) {
	ev := newEventRec()
	u, src, clk := newUnit(t, camConfig("cam1", false), func(u *Unit) { u.Events = ev })
	s := src.next(t)
	p := s.nextPull(t)
	p.play(t)
	ev.wait(t, "online cam1")
	p.result <- relay.ErrBFrames
	ev.wait(t, "offline cam1: "+relay.ErrBFrames.Error())
	if st := u.State(); st.Online || st.LastError != relay.ErrBFrames.Error() {
		t.Fatalf("state %+v", st)
	}
	if in := u.Stream("").Info(); in.Online || in.LastError != relay.ErrBFrames.Error() {
		t.Fatalf("stream %+v", in)
	}
	clk.WaitTimers(1, nil)
	d, _ := clk.Next()
	clk.Advance(d)
	s.nextPull(t).play(t)
	ev.wait(t, "online cam1")
	if u.State().Reconnects != 1 {
		t.Fatal("not counted as a reconnect")
	}
}

type attachment struct {
	reloads []config.Camera
	closed  bool
}

func (a *attachment) Reload(c config.Camera) { a.reloads = append(a.reloads, c) }
func (a *attachment) Close()                 { a.closed = true }

// Reload re-points a camera without dropping its readers; a change that
// does not affect pulling restarts nothing; attachments follow.
func TestReloadKeepsReaders(t *testing.T) {
	ev := newEventRec()
	u, src, _ := newUnit(t, camConfig("cam1", false), func(u *Unit) { u.Events = ev })
	ptz := &attachment{}
	u.Attach("ptz", ptz)
	if u.Attachment("ptz") != ptz {
		t.Fatal("Attachment")
	}
	p1 := src.next(t).nextPull(t)
	p1.play(t)
	ev.wait(t, "online cam1")
	r, _ := u.Stream("").AddReader(relay.ReaderConf{Protocol: "webrtc"})
	defer r.Close()
	waitReady(t, r)
	p1.frame(t, 0)
	nextDelivery(t, r)

	c2 := camConfig("cam1", false)
	c2.URL = "rtsp://10.20.0.13:554/Streaming/Channels/101"
	if err := u.Reload(c2); err != nil {
		t.Fatal(err)
	}
	if cause := context.Cause(p1.ctx); !errors.Is(cause, ErrStopped) {
		t.Fatalf("old pull ended by %v", cause)
	}
	ev.wait(t, "offline cam1: "+ErrStopped.Error())
	s2 := src.next(t)
	if s2.spec.URL.Host != "10.20.0.13:554" || s2.spec.URL.User.String() != "viewer:cam-secret-1" {
		t.Fatalf("new source for %s", s2.spec.URL.Redacted())
	}
	p2 := s2.nextPull(t)
	p2.play(t)
	p2.frame(t, 0)
	if d := nextDelivery(t, r); !d.Key {
		t.Fatal("no keyframe after the reload")
	}
	if r.Err() != nil {
		t.Fatalf("reader ended: %v", r.Err())
	}

	c3 := c2
	c3.Name = "Gate north"
	if err := u.Reload(c3); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-src.ch:
		t.Fatalf("a name change restarted the pull (%v)", s.spec.URL.Redacted())
	default:
	}
	if p2.ctx.Err() != nil || u.Current().Name != "Gate north" {
		t.Fatal("a name change stopped the pull")
	}
	if len(ptz.reloads) != 2 || ptz.reloads[1].Name != "Gate north" {
		t.Fatalf("attachment reloads %+v", ptz.reloads)
	}
	if err := u.Reload(camConfig("other", false)); err == nil {
		t.Fatal("reload with another camera's config")
	}
	u.Close()
	if !ptz.closed {
		t.Fatal("attachment not closed")
	}
	if !errors.Is(r.Err(), relay.ErrStreamClosed) {
		t.Fatalf("reader after Close: %v", r.Err())
	}
}

// The registry follows the config: added cameras start, removed ones close
// (their readers end), changed ones reload; order is the config's.
func TestRegistryApply(t *testing.T) {
	hub := relay.NewHub()
	src := newSources()
	reg := &Registry{Logger: quiet, New: func(config.Camera) *Unit {
		return &Unit{Hub: hub, NewSource: src.factory, Logger: quiet}
	}}
	defer reg.Close()
	if err := reg.Apply([]config.Camera{camConfig("a", true), camConfig("b", true)}, sanitizeNone); err != nil {
		t.Fatal(err)
	}
	src.next(t)
	src.next(t)
	ra, _ := hub.Get("a").AddReader(relay.ReaderConf{Protocol: "webrtc"})
	b2 := camConfig("b", true)
	b2.Transport = "udp"
	if err := reg.Apply([]config.Camera{camConfig("c", true), b2}, sanitizeNone); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ra.Err(), relay.ErrStreamClosed) || hub.Get("a") != nil || reg.Get("a") != nil {
		t.Fatal("removed camera still there")
	}
	var ids []string
	for _, u := range reg.Units() {
		ids = append(ids, u.ID())
	}
	if strings.Join(ids, ",") != "c,b" || hub.Get("b") == nil || hub.Get("c") == nil {
		t.Fatalf("units %v", ids)
	}
	if reg.Get("b").Current().Transport != "udp" {
		t.Fatal("b not reloaded")
	}
	bad := camConfig("d", true)
	bad.URL = "::not a url"
	if err := reg.Apply([]config.Camera{camConfig("c", true), b2, bad}, sanitizeNone); err == nil || !strings.Contains(err.Error(), "cameras[d]") {
		t.Fatalf("bad camera: %v", err)
	}
}

// Connected is called after every connect of the main stream (the
// hardening watcher's check at connect), not for a pull that never got
// online.
func TestConnectedHookAtEachConnect(t *testing.T) {
	connects := make(chan string, 8)
	_, src, clk := newUnit(t, camConfig("cam1", false), func(u *Unit) {
		u.Connected = func(id string) { connects <- id }
	})
	s := src.next(t)
	p := s.nextPull(t)
	select {
	case id := <-connects:
		t.Fatalf("Connected(%s) before the camera answered PLAY", id)
	default:
	}
	p.play(t)
	if id := testtool.Recv(t, connects, 5*time.Second, "Connected at the first connect"); id != "cam1" {
		t.Fatalf("Connected(%q)", id)
	}
	p.result <- errRefused
	clk.WaitTimers(1, nil)
	d, _ := clk.Next()
	clk.Advance(d)
	p = s.nextPull(t)
	p.result <- errRefused // a failed attempt: no connect
	clk.WaitTimers(1, nil)
	d, _ = clk.Next()
	clk.Advance(d)
	s.nextPull(t).play(t)
	testtool.Recv(t, connects, 5*time.Second, "Connected at the reconnect")
	select {
	case id := <-connects:
		t.Fatalf("Connected(%s) once too often", id)
	default:
	}

}
