package ingest

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"go.uber.org/goleak"

	"cordon/democam"
	"cordon/internal/testtool"
	"cordon/relay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The types the camera unit wires together fit.
var _ Sink = (*relay.Stream)(nil)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// camOpts configures a test camera (a democam on a loopback host).
type camOpts struct {
	host        string // default 127.0.0.2
	user, pass  string
	authMethods []auth.VerifyMethod
	audio       string // "" = none, else a democam.Audio* codec
	noUDP       bool
	quirks      democam.Quirks
	timeout     time.Duration // RTSP session timeout
}

func newCam(t testing.TB, o camOpts) *democam.Camera {
	t.Helper()
	if o.host == "" {
		o.host = "127.0.0.2"
	}
	c := &democam.Camera{ID: t.Name(), Listen: net.JoinHostPort(o.host, "0"), Path: "stream1",
		Username: o.user, Password: o.pass, AuthMethods: o.authMethods,
		Audio: o.audio != "", AudioCodec: o.audio, DisableUDP: o.noUDP, Quirks: o.quirks, SessionTimeout: o.timeout}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// camURL is the camera's URL with credentials when given.
func camURL(c *democam.Camera, user, pass string) string {
	ui := ""
	if user != "" {
		ui = url.UserPassword(user, pass).String() + "@"
	}
	return "rtsp://" + ui + c.Addr() + "/stream1"
}

// fakeSink records what a Pull writes.
type fakeSink struct {
	mu        sync.Mutex
	connected [][]relay.Track
	units     []relay.Unit
	// failAfter > 0: WriteUnit returns failErr on that many-th unit.
	failAfter int
	failErr   error
	connCh    chan struct{} // one per CameraConnected
}

func (s *fakeSink) CameraConnected(tr []relay.Track) error {
	s.mu.Lock()
	s.connected = append(s.connected, tr)
	s.mu.Unlock()
	s.connCh <- struct{}{}
	return nil
}

func (s *fakeSink) WriteUnit(u relay.Unit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAfter > 0 && len(s.units)+1 == s.failAfter {
		return s.failErr
	}
	au := make([][]byte, len(u.AU))
	for i, b := range u.AU {
		au[i] = append([]byte(nil), b...)
	}
	u.AU = au
	s.units = append(s.units, u)
	return nil
}

func (s *fakeSink) snapshot() ([][]relay.Track, []relay.Unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]relay.Track(nil), s.connected...), append([]relay.Unit(nil), s.units...)
}

// count returns how many video (track 0) and other units arrived.
func (s *fakeSink) count() (video, other int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.units {
		if u.Track == 0 {
			video++
		} else {
			other++
		}
	}
	return video, other
}

// fakeObserver records what a Pull reports.
type fakeObserver struct {
	mu        sync.Mutex
	dropped   []string
	conn      Connection
	playing   bool
	transport string
}

func (o *fakeObserver) Described(d []string) { o.mu.Lock(); o.dropped = d; o.mu.Unlock() }
func (o *fakeObserver) Playing(c Connection) {
	o.mu.Lock()
	o.conn, o.playing, o.transport = c, true, c.Transport
	o.mu.Unlock()
}
func (o *fakeObserver) TransportChanged(tr string) { o.mu.Lock(); o.transport = tr; o.mu.Unlock() }

func (o *fakeObserver) get() (Connection, string, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conn, o.transport, o.dropped
}

// pull is one Pull running in the background.
type pull struct {
	*Puller
	sink   *fakeSink
	obs    *fakeObserver
	logs   *testtool.SyncBuffer
	cancel context.CancelCauseFunc
	done   chan error
	err    error
}

var errTestStop = context.Canceled

// startPull runs one Pull of rawURL until the test ends or stop.
func startPull(t testing.TB, rawURL string, mod func(*Puller)) *pull {
	t.Helper()
	logs := &testtool.SyncBuffer{}
	p := &Puller{
		ID:          "cam1",
		URL:         mustURL(t, rawURL),
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReadTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(p)
	}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	tp := &pull{Puller: p, sink: &fakeSink{connCh: make(chan struct{}, 16)}, obs: &fakeObserver{}, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { tp.done <- p.Pull(ctx, tp.sink, tp.obs) }()
	t.Cleanup(func() {
		tp.stop()
		if t.Failed() {
			t.Logf("puller %s logs:\n%s", rawURL, logs.String())
		}
	})
	return tp
}

// stop ends the Pull (if it still runs) and returns why it ended.
func (tp *pull) stop() error {
	tp.cancel(errTestStop)
	if tp.done != nil {
		tp.err = <-tp.done
		tp.done = nil
	}
	return tp.err
}

// ended waits for the Pull to end by itself and returns why.
func (tp *pull) ended(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-tp.done:
		tp.err, tp.done = err, nil
		return err
	case <-time.After(within):
		t.Fatalf("pull still running after %v", within)
	}
	return nil
}

// connected waits for CameraConnected.
func (tp *pull) connected(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case <-tp.sink.connCh:
	case err := <-tp.done:
		tp.err, tp.done = err, nil
		t.Fatalf("pull ended before connecting: %v", err)
	case <-time.After(within):
		t.Fatalf("not connected within %v", within)
	}
}

// waitUnits waits for at least video units on track 0 and other units on
// the other tracks.
func (tp *pull) waitUnits(t testing.TB, video, other int) {
	t.Helper()
	testtool.WaitFor(t, 30*time.Second, "units", func() bool {
		v, o := tp.sink.count()
		return v >= video && o >= other
	})
}

// checkUnits verifies units are per track in order with increasing PTS and
// that video units carry the NAL units a camera sends.
func checkUnits(t *testing.T, units []relay.Unit, tracks []relay.Track, audioSize int) (video, audio int) {
	t.Helper()
	last := map[int]time.Duration{}
	for i, u := range units {
		if u.Track < 0 || u.Track >= len(tracks) {
			t.Fatalf("unit %d: bad track %d", i, u.Track)
		}
		if p, ok := last[u.Track]; ok && u.PTS < p {
			t.Fatalf("unit %d track %d: PTS went back from %v to %v", i, u.Track, p, u.PTS)
		}
		last[u.Track] = u.PTS
		switch tracks[u.Track].Kind {
		case relay.KindVideo:
			video++
			for _, n := range u.AU {
				if len(n) == 0 {
					t.Fatalf("unit %d: empty NAL unit", i)
				}
				if tracks[u.Track].Codec == relay.CodecH265 {
					switch n[0] >> 1 & 0x3f {
					case 0, 1, 19, 20, 32, 33, 34:
					default:
						t.Fatalf("unit %d: unexpected H.265 NAL type %d", i, n[0]>>1&0x3f)
					}
					continue
				}
				switch n[0] & 0x1f {
				case 1, 5, 7, 8:
				default:
					t.Fatalf("unit %d: unexpected NAL type %d", i, n[0]&0x1f)
				}
			}
		case relay.KindAudio:
			audio++
			if len(u.AU) != 1 || len(u.AU[0]) != audioSize {
				t.Fatalf("unit %d: audio unit of %d frames (%d bytes), want 1 of %d", i, len(u.AU), len(u.AU[0]), audioSize)
			}
		}
	}
	return video, audio
}
