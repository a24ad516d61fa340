package ingest

import (
	"bytes"
	"cordon/internal/testtool"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"cordon/relay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type testCam struct {
	*Camera
	sink *fakeSink
	logs *testtool.SyncBuffer
}

func newTestCamera(t *testing.T, rawURL string, mod func(*Camera)) *testCam {
	t.Helper()
	logs := &testtool.SyncBuffer{}
	sink := newFakeSink()
	c := &Camera{
		ID:          "cam1",
		URL:         mustURL(t, rawURL),
		Sink:        sink,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffMin:  100 * time.Millisecond,
		BackoffMax:  400 * time.Millisecond,
		ReadTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(c)
	}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("camera %s logs:\n%s", rawURL, logs.String())
		}
	})
	return &testCam{Camera: c, sink: sink, logs: logs}
}

// checkUnits verifies units are per track in order with increasing PTS and
// that video units carry the NAL units the camera sent.
func checkUnits(t *testing.T, units []relay.Unit, tracks []relay.Track) (video, audio int) {
	t.Helper()
	return checkUnitsCodec(t, units, tracks, 160)
}

func checkUnitsCodec(t *testing.T, units []relay.Unit, tracks []relay.Track, audioSize int) (video, audio int) {
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
					case 1, 19, 32, 33, 34:
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
				t.Fatalf("unit %d: audio frame of %d blocks", i, len(u.AU))
			}
		}
	}
	return video, audio
}

func TestPlayTransports(t *testing.T) {
	for _, tc := range []struct {
		transport string
		want      string
	}{{"tcp", "TCP"}, {"udp", "UDP"}, {"auto", "UDP"}} {
		t.Run(tc.transport, func(t *testing.T) {
			fc := newFakeCam(t, camOpts{host: "127.0.0.2", audio: true, udp: true, bigIDR: true})
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			tc2 := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = tc.transport; c.Metrics = m })
			tc2.sink.waitEvent(t, "connected", 5*time.Second)
			time.Sleep(800 * time.Millisecond)
			st := tc2.State()
			if !st.Online || st.VideoCodec != "H264" || st.AudioCodec != "PCMU" || st.Transport != tc.want {
				t.Fatalf("state %+v", st)
			}
			tc2.Close()
			conns, units, disc := tc2.sink.snapshot()
			if len(conns) != 1 || len(conns[0]) != 2 {
				t.Fatalf("connected %v", conns)
			}
			tr := conns[0]
			if tr[0].Codec != relay.CodecH264 || tr[0].ClockRate != 90000 || len(tr[0].ParamSets) != 2 ||
				!bytes.Equal(tr[0].ParamSets[0], testSPS) || !bytes.Equal(tr[0].ParamSets[1], testPPS) {
				t.Fatalf("video track %+v", tr[0])
			}
			if tr[1].Codec != relay.CodecPCMU || tr[1].ClockRate != 8000 || tr[1].Channels != 1 {
				t.Fatalf("audio track %+v", tr[1])
			}
			v, a := checkUnits(t, units, tr)
			if v < 10 || a < 20 {
				t.Fatalf("got %d video and %d audio units", v, a)
			}
			// the large IDR was reassembled from FU-A fragments
			foundIDR := false
			for _, u := range units {
				for _, n := range u.AU {
					if n[0]&0x1f == 5 && len(n) == 3000 {
						foundIDR = true
					}
				}
			}
			if !foundIDR {
				t.Fatal("no reassembled IDR")
			}
			if len(disc) != 1 || disc[0] != nil {
				t.Fatalf("disconnects %v", disc)
			}
			if got := testutil.ToFloat64(m.frames.WithLabelValues("cam1", "video")); got < 10 {
				t.Fatalf("frames metric %v", got)
			}
			if got := testutil.ToFloat64(m.bytes.WithLabelValues("cam1")); got < 3000 {
				t.Fatalf("bytes metric %v", got)
			}
			if got := testutil.ToFloat64(m.up.WithLabelValues("cam1")); got != 0 {
				t.Fatalf("up after close %v", got)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const user, pass = "viewer", "s3cr3t-Pa55"
	for _, tc := range []struct {
		name    string
		methods []auth.VerifyMethod
	}{
		{"digest", []auth.VerifyMethod{auth.VerifyMethodDigestMD5}},
		{"basic", []auth.VerifyMethod{auth.VerifyMethodBasic}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCam(t, camOpts{host: "127.0.0.3", user: user, pass: pass, authMethods: tc.methods})
			ok := newTestCamera(t, fc.url(user, pass), func(c *Camera) { c.Transport = "tcp" })
			ok.sink.waitEvent(t, "connected", 5*time.Second)
			ok.Close()

			bad := newTestCamera(t, fc.url(user, "wrong-"+pass), func(c *Camera) { c.Transport = "tcp" })
			bad.sink.waitEvent(t, "disconnected", 5*time.Second)
			st := bad.State()
			if st.Online || !strings.Contains(st.LastError, "401") {
				t.Fatalf("state %+v", st)
			}
			bad.Close()
			_, _, disc := bad.sink.snapshot()
			for _, s := range []string{st.LastError, disc[0].Error(), bad.logs.String(), ok.logs.String()} {
				if strings.Contains(s, pass) || strings.Contains(s, "wrong-") {
					t.Fatalf("credentials leaked: %q", s)
				}
			}
			if !strings.Contains(bad.logs.String(), "401") {
				t.Fatalf("auth failure not logged: %s", bad.logs.String())
			}
		})
	}
}

func TestReconnectAfterCameraRestart(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.2", audio: true})
	var online int
	var offline []error
	var evMu sync.Mutex
	ev := eventsFunc{
		on:  func(string) { evMu.Lock(); online++; evMu.Unlock() },
		off: func(_ string, err error) { evMu.Lock(); offline = append(offline, err); evMu.Unlock() },
	}
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) {
		c.Transport = "tcp"
		c.Events = ev
		c.HealthyAfter = 300 * time.Millisecond
	})
	c.sink.waitEvent(t, "connected", 5*time.Second)
	c.sink.waitUnits(t, 0, 3, 5*time.Second)
	time.Sleep(400 * time.Millisecond) // longer than HealthyAfter: backoff resets

	fc.stop()
	c.sink.waitEvent(t, "disconnected", 5*time.Second)
	killed := time.Now()
	if c.State().Online {
		t.Fatal("still online")
	}
	fc.start()
	c.sink.waitEvent(t, "connected", 5*time.Second)
	if c.State().Reconnects < 1 {
		t.Fatalf("reconnects %d", c.State().Reconnects)
	}
	// the first retry after a healthy connection waits ~BackoffMin
	fc.mu.Lock()
	conns := append([]time.Time(nil), fc.conns...)
	fc.mu.Unlock()
	first := conns[len(conns)-1]
	if gap := first.Sub(killed); gap < 70*time.Millisecond || gap > 3*time.Second {
		t.Fatalf("retry after %v", gap)
	}
	c.sink.waitUnits(t, 1, 3, 5*time.Second) // video starts at the next IDR
	c.Close()
	conns2, _, _ := c.sink.snapshot()
	if len(conns2) != 2 {
		t.Fatalf("%d connections", len(conns2))
	}
	for i := range conns2 {
		if v, a := checkUnits(t, c.sink.unitsOf(i), conns2[i]); v == 0 || a == 0 {
			t.Fatalf("connection %d: %d video, %d audio units", i, v, a)
		}
	}
	evMu.Lock()
	defer evMu.Unlock()
	if online != 2 || len(offline) != 2 || offline[0] == nil || errors.Is(offline[0], ErrStopped) || !errors.Is(offline[1], ErrStopped) {
		t.Fatalf("events online=%d offline=%v", online, offline)
	}
}

type eventsFunc struct {
	on  func(string)
	off func(string, error)
}

func (e eventsFunc) CameraOnline(id string)             { e.on(id) }
func (e eventsFunc) CameraOffline(id string, err error) { e.off(id, err) }

// TestBackoff: a "camera" that accepts and hangs up at once; retries are
// spaced by a doubling, capped, jittered delay.
func TestBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var accepts []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepts = append(accepts, time.Now())
			mu.Unlock()
			conn.Close()
		}
	}()
	defer func() { l.Close(); <-done }()

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	c := newTestCamera(t, "rtsp://u:p@"+l.Addr().String()+"/x", func(c *Camera) { c.Transport = "tcp"; c.Metrics = m })
	waitFor(t, "6 attempts", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(accepts) >= 6 })
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{100, 200, 400, 400, 400}
	for i, w := range want {
		w *= time.Millisecond
		gap := accepts[i+1].Sub(accepts[i])
		// lower bound strict; upper bound loose (loaded CI machines)
		if gap < w*3/4-10*time.Millisecond || gap > w+time.Second {
			t.Errorf("gap %d = %v, want about %v", i, gap, w)
		}
	}
	st := c.State()
	if st.Reconnects < 5 || st.Online || st.LastError == "" {
		t.Fatalf("state %+v", st)
	}
	if got := testutil.ToFloat64(m.reconnects.WithLabelValues("cam1")); got != float64(st.Reconnects) {
		t.Fatalf("reconnects metric %v, state %d", got, st.Reconnects)
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

func TestOnDemand(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.2"})
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) {
		c.Transport = "tcp"
		c.OnDemand = true
		c.Linger = 400 * time.Millisecond
	})
	time.Sleep(500 * time.Millisecond)
	if n := fc.connCount(); n != 0 {
		t.Fatalf("%d connections without demand", n)
	}
	start := time.Now()
	c.SetDemand(true)
	c.sink.waitEvent(t, "connected", 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("start took %v", d)
	}

	// a viewer leaving and another arriving within the linger keeps it up
	c.SetDemand(false)
	time.Sleep(150 * time.Millisecond)
	c.SetDemand(true)
	c.sink.noEvent(t, "disconnected", 600*time.Millisecond)

	c.SetDemand(false)
	stop := time.Now()
	c.sink.waitEvent(t, "disconnected", 5*time.Second)
	if d := time.Since(stop); d < 350*time.Millisecond || d > 2*time.Second {
		t.Fatalf("stopped after %v, linger 400ms", d)
	}
	_, _, disc := c.sink.snapshot()
	if disc[len(disc)-1] != nil {
		t.Fatalf("idle stop reported as %v", disc[len(disc)-1])
	}
	st := c.State()
	if st.Online || st.LastError != "" || st.Reconnects != 0 {
		t.Fatalf("state %+v", st)
	}
	n := fc.connCount()
	time.Sleep(500 * time.Millisecond)
	if fc.connCount() != n {
		t.Fatal("reconnected without demand")
	}
	c.SetDemand(true)
	c.sink.waitEvent(t, "connected", 5*time.Second)
}

// SetDemand before Initialize and from inside the sink must not block.
func TestSetDemandNeverBlocks(t *testing.T) {
	c := &Camera{}
	c.SetDemand(true)
	c.SetDemand(false)
	c.Close() // not initialized: no-op
	for range 100 {
		c.SetDemand(true)
	}
}

func TestDroppedTracksNotSetUp(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.3", audio: true, metadata: true})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "tcp"; c.Metrics = m })
	c.sink.waitEvent(t, "connected", 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	st := c.State()
	c.Close()
	if len(st.DroppedTracks) != 1 || st.DroppedTracks[0] != "application: ONVIF metadata track" {
		t.Fatalf("dropped %q", st.DroppedTracks)
	}
	if got := fc.methodCount(base.Setup); got != 2 {
		t.Fatalf("%d SETUPs (%v), want 2", got, fc.setupURLs())
	}
	if got := testutil.ToFloat64(m.tracksDropped.WithLabelValues("cam1", "metadata")); got != 1 {
		t.Fatalf("dropped metric %v", got)
	}
	conns, units, _ := c.sink.snapshot()
	if len(conns[0]) != 2 {
		t.Fatalf("tracks %+v", conns[0])
	}
	checkUnits(t, units, conns[0])
	if !strings.Contains(c.logs.String(), "application: ONVIF metadata track") {
		t.Fatal("dropped track not logged")
	}
}

func TestSinkErrorReconnects(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.2"})
	sinkErr := relay.ErrBFrames
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) {
		c.Transport = "tcp"
		c.Sink.(*fakeSink).failAfter = 5
		c.Sink.(*fakeSink).failErr = sinkErr
	})
	c.sink.waitEvent(t, "connected", 5*time.Second)
	c.sink.waitEvent(t, "disconnected", 5*time.Second)
	st := c.State()
	if st.Online || st.LastError != sinkErr.Error() {
		t.Fatalf("state %+v", st)
	}
	_, units, disc := c.sink.snapshot()
	if !errors.Is(disc[0], relay.ErrBFrames) {
		t.Fatalf("disconnect %v", disc[0])
	}
	if len(units) != 4 {
		t.Fatalf("%d units written after the error", len(units)-4)
	}
	c.sink.waitEvent(t, "connected", 5*time.Second)
	if c.State().Reconnects < 1 {
		t.Fatal("not counted as reconnect")
	}
}

// packetization-mode=0 camera that sets the marker bit on SPS and PPS: every
// NAL unit arrives as its own unit; none is dropped.
func TestPacketizationMode0MarkerOnParamSets(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.3", mode0: true, udp: true})

	// gortsplib reads mode 0 only over TCP: an explicit udp transport fails
	// with an explanation
	u := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "udp" })
	u.sink.waitEvent(t, "disconnected", 5*time.Second)
	if st := u.State(); !strings.Contains(st.LastError, "packetization-mode=0") {
		t.Fatalf("state %+v", st)
	}
	u.Close()

	// auto switches to TCP
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "auto" })
	c.sink.waitEvent(t, "connected", 5*time.Second)
	time.Sleep(900 * time.Millisecond)
	if st := c.State(); st.Transport != "TCP" {
		t.Fatalf("state %+v", st)
	}
	c.Close()
	conns, units, _ := c.sink.snapshot()
	checkUnits(t, units, conns[0])
	var sps, pps, idr int
	for i, u := range units {
		if len(u.AU) != 1 {
			t.Fatalf("unit %d has %d NAL units", i, len(u.AU))
		}
		switch u.AU[0][0] & 0x1f {
		case 7:
			sps++
			if i+2 >= len(units) {
				break
			}
			if units[i+1].PTS != u.PTS || units[i+2].PTS != u.PTS {
				t.Fatal("SPS, PPS and IDR should share a PTS")
			}
		case 8:
			pps++
		case 5:
			idr++
		}
	}
	if sps == 0 || pps == 0 || idr == 0 {
		t.Fatalf("sps=%d pps=%d idr=%d", sps, pps, idr)
	}
}

// A camera that never sets the marker bit: units are split by timestamp and
// keep their own PTS (40 ms apart at 25 fps).
func TestNoMarkerUnitsKeepTheirPTS(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.2", noMarker: true})
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "tcp" })
	c.sink.waitEvent(t, "connected", 5*time.Second)
	time.Sleep(900 * time.Millisecond)
	c.Close()
	conns, units, _ := c.sink.snapshot()
	checkUnits(t, units, conns[0])
	if len(units) < 10 {
		t.Fatalf("%d units", len(units))
	}
	for i := 1; i < len(units); i++ {
		d := units[i].PTS - units[i-1].PTS
		if d != 40*time.Millisecond {
			t.Fatalf("unit %d: PTS step %v, want 40ms", i, d)
		}
		key := units[i].AU[0][0]&0x1f == 7
		if key && len(units[i].AU) != 3 || !key && len(units[i].AU) != 1 {
			t.Fatalf("unit %d: %d NAL units", i, len(units[i].AU))
		}
	}
}

// A camera that stops sending media but keeps the connection is dead.
func TestDeadCameraDetected(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.3"})
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "tcp"; c.MediaTimeout = 700 * time.Millisecond })
	c.sink.waitEvent(t, "connected", 5*time.Second)
	fc.paused.Store(true)
	paused := time.Now()
	c.sink.waitEvent(t, "disconnected", 5*time.Second)
	if d := time.Since(paused); d < 600*time.Millisecond {
		t.Fatalf("declared dead after %v", d)
	}
	if st := c.State(); st.Online || st.LastError == "" {
		t.Fatalf("state %+v", st)
	}
	fc.paused.Store(false)
	c.sink.waitEvent(t, "connected", 5*time.Second)
}

// gortsplib sends keepalives before the session timeout the camera
// announces: with a 2 s idle timeout (Session timeout=1), a UDP session
// survives several seconds only thanks to them.
func TestKeepalive(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	fc := newFakeCam(t, camOpts{host: "127.0.0.2", udp: true, idleTimeout: 2 * time.Second})
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "udp" })
	c.sink.waitEvent(t, "connected", 5*time.Second)
	c.sink.noEvent(t, "disconnected", 4500*time.Millisecond)
	ka := fc.methodCount(base.Options) + fc.methodCount(base.GetParameter)
	if ka < 3 { // 1 OPTIONS at connect + keepalives
		t.Fatalf("%d OPTIONS/GET_PARAMETER", ka)
	}
	if !c.State().Online {
		t.Fatal("offline")
	}
}

func TestInitializeValidates(t *testing.T) {
	for _, c := range []*Camera{
		{ID: "", URL: mustURL(t, "rtsp://h/x"), Sink: newFakeSink()},
		{ID: "a", URL: mustURL(t, "http://h/x"), Sink: newFakeSink()},
		{ID: "a", URL: mustURL(t, "rtsp://h/x"), Sink: newFakeSink(), Transport: "quic"},
		{ID: "a", URL: mustURL(t, "rtsp://h/x")},
	} {
		if err := c.Initialize(); err == nil {
			c.Close()
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestCodecs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      camOpts
		video     relay.Codec
		audio     relay.Codec
		rate, chs int
	}{
		{"h265+opus", camOpts{h265: true, audio: true, audioCodec: "opus"}, relay.CodecH265, relay.CodecOpus, 48000, 2},
		{"h264+aac", camOpts{audio: true, audioCodec: "aac"}, relay.CodecH264, relay.CodecAAC, 16000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.host = "127.0.0.3"
			fc := newFakeCam(t, tc.opts)
			c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "tcp" })
			c.sink.waitEvent(t, "connected", 5*time.Second)
			c.sink.waitUnits(t, 0, 5, 5*time.Second)
			st := c.State()
			c.Close()
			if st.VideoCodec != string(tc.video) || st.AudioCodec != string(tc.audio) {
				t.Fatalf("state %+v", st)
			}
			conns, units, _ := c.sink.snapshot()
			tr := conns[0]
			if tr[0].Codec != tc.video || tr[1].Codec != tc.audio || tr[1].ClockRate != tc.rate || tr[1].Channels != tc.chs {
				t.Fatalf("tracks %+v", tr)
			}
			if tc.video == relay.CodecH265 && (len(tr[0].ParamSets) != 3 || !bytes.Equal(tr[0].ParamSets[0], testVPS)) {
				t.Fatalf("H.265 param sets %x", tr[0].ParamSets)
			}
			if tc.audio == relay.CodecAAC && !bytes.Equal(tr[1].AACConfig, []byte{0x14, 0x08}) {
				t.Fatalf("AAC config %x", tr[1].AACConfig)
			}
			if v, a := checkUnitsCodec(t, units, tr, audioFrameSize(tc.opts.audioCodec)); v < 5 || a < 5 {
				t.Fatalf("%d video, %d audio units", v, a)
			}
		})
	}
}

// auto against a camera without UDP: gortsplib retries the SETUP over TCP.
func TestAutoFallsBackToTCP(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.2", audio: true})
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) { c.Transport = "auto" })
	c.sink.waitEvent(t, "connected", 5*time.Second)
	c.sink.waitUnits(t, 0, 3, 5*time.Second)
	if st := c.State(); st.Transport != "TCP" || !st.Online {
		t.Fatalf("state %+v", st)
	}
}
