package camera

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/config"
	"cordon/ingest"
	"cordon/internal/clock"
	"cordon/internal/testtool"
	"cordon/relay"
	"cordon/relay/sanitize"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// A real SPS/PPS pair (x264 baseline 3.0, 640x480): the sanitizer drops
// parameter sets that do not parse.
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48}
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

var h264Track = relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}}

// fakeSource is a Source the test drives: each Pull shows up on pulls and
// lasts until the test ends it or the unit cancels it.
type fakeSource struct {
	spec  SourceSpec
	pulls chan *fakePull
}

type fakePull struct {
	ctx    context.Context
	sink   ingest.Sink
	obs    ingest.Observer
	result chan error
}

func (s *fakeSource) Pull(ctx context.Context, sink ingest.Sink, obs ingest.Observer) error {
	p := &fakePull{ctx: ctx, sink: sink, obs: obs, result: make(chan error, 1)}
	select {
	case s.pulls <- p:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-p.result:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// play connects the pull like a camera that answers PLAY.
func (p *fakePull) play(t testing.TB) {
	t.Helper()
	if err := p.sink.CameraConnected([]relay.Track{h264Track}); err != nil {
		t.Fatal(err)
	}
	p.obs.Described(nil)
	p.obs.Playing(ingest.Connection{Transport: "TCP", VideoCodec: "H264"})
}

// frame writes one keyframe.
func (p *fakePull) frame(t testing.TB, pts time.Duration) {
	t.Helper()
	if err := p.sink.WriteUnit(relay.Unit{Track: 0, PTS: pts, AU: [][]byte{testSPS, testPPS, {0x65, 0x88, 0x80, 0x10}}}); err != nil {
		t.Fatal(err)
	}
}

// sources hands out fake sources and remembers them.
type sources struct {
	mu  sync.Mutex
	all []*fakeSource
	ch  chan *fakeSource
}

func newSources() *sources { return &sources{ch: make(chan *fakeSource, 16)} }

func (ss *sources) factory(spec SourceSpec) (Source, error) {
	s := &fakeSource{spec: spec, pulls: make(chan *fakePull)}
	ss.mu.Lock()
	ss.all = append(ss.all, s)
	ss.mu.Unlock()
	ss.ch <- s
	return s, nil
}

func (ss *sources) next(t testing.TB) *fakeSource {
	t.Helper()
	return testtool.Recv(t, ss.ch, 5*time.Second, "a new source")
}

// nextPull waits for the source's next Pull.
func (s *fakeSource) nextPull(t testing.TB) *fakePull {
	t.Helper()
	return testtool.Recv(t, s.pulls, 5*time.Second, "a pull")
}

// noPull checks that the unit's main feed waits for demand and has not
// started a Pull.
func (s *fakeSource) noPull(t testing.TB, u *Unit) {
	t.Helper()
	parked(t, u)
	select {
	case <-s.pulls:
		t.Fatal("pulling without demand")
	default:
	}
}

// parked waits until u's main feed waits for a reader.
func parked(t testing.TB, u *Unit) {
	t.Helper()
	u.mu.Lock()
	f := u.feeds[0]
	u.mu.Unlock()
	testtool.WaitFor(t, 5*time.Second, "the feed to wait for demand", f.waitingForDemand)
}

type eventRec struct {
	mu  sync.Mutex
	evs []string
	ch  chan string
}

func newEventRec() *eventRec { return &eventRec{ch: make(chan string, 64)} }

func (e *eventRec) CameraOnline(id string) { e.add("online " + id) }
func (e *eventRec) CameraOffline(id string, err error) {
	s := "offline " + id
	if err != nil {
		s += ": " + err.Error()
	}
	e.add(s)
}
func (e *eventRec) add(s string) {
	e.mu.Lock()
	e.evs = append(e.evs, s)
	e.mu.Unlock()
	e.ch <- s
}

func (e *eventRec) wait(t testing.TB, want string) {
	t.Helper()
	if got := testtool.Recv(t, e.ch, 5*time.Second, "event "+want); got != want {
		t.Fatalf("event %q, want %q", got, want)
	}
}

func camConfig(id string, onDemand bool) config.Camera {
	return config.Camera{ID: id, URL: "rtsp://10.20.0.12:554/Streaming/Channels/101", Username: "viewer", Password: "cam-secret-1", Transport: "tcp", OnDemand: onDemand}
}

// newUnit starts a unit on fake sources and a fake clock.
func newUnit(t testing.TB, c config.Camera, mod func(*Unit)) (*Unit, *sources, *clock.Fake) {
	t.Helper()
	src := newSources()
	clk := clock.NewFake(time.Time{})
	u := &Unit{Config: c, NewSource: src.factory, Clock: clk, Logger: quiet,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond}
	if mod != nil {
		mod(u)
	}
	if err := u.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u, src, clk
}

var errRefused = errors.New("connection refused")

var sanitizeNone = sanitize.Options{}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
