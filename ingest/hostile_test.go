package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/democam"
	"cordon/internal/testtool"
)

const hostilePassword = "s3cret-Camera-pw"

// hostileRec collects CameraHostile calls.
type hostileRec struct {
	mu      sync.Mutex
	reasons []string
	details []string
}

func (h *hostileRec) CameraHostile(id, reason, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reasons = append(h.reasons, reason)
	h.details = append(h.details, detail)
}

func (h *hostileRec) snapshot() ([]string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reasons...), append([]string(nil), h.details...)
}

func startHostile(t *testing.T, host string, a democam.Attacks, mod func(*democam.HostileCamera)) *democam.HostileCamera {
	t.Helper()
	h := &democam.HostileCamera{ID: "hostile", Listen: host + ":0", Username: "admin", Password: hostilePassword, Attacks: a}
	if mod != nil {
		mod(h)
	}
	if err := h.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// hostileCam pulls a hostile camera again and again (as the camera unit
// would, without its backoff) and keeps the last error.
type hostileCam struct {
	rec    *hostileRec
	m      *Metrics
	sink   *fakeSink
	obs    *fakeObserver
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lastErr string
}

func newHostileTestCamera(t *testing.T, h *democam.HostileCamera, mod func(*Puller)) *hostileCam {
	t.Helper()
	return newPullLoop(t, "rtsp://admin:"+hostilePassword+"@"+h.Addr()+"/stream", mod)
}

// newPullLoop pulls rawURL again and again until the test ends.
func newPullLoop(t *testing.T, rawURL string, mod func(*Puller)) *hostileCam {
	t.Helper()
	hc := &hostileCam{rec: &hostileRec{}, m: NewMetrics(prometheus.NewRegistry()),
		sink: &fakeSink{connCh: make(chan struct{}, 1024)}, obs: &fakeObserver{}, done: make(chan struct{})}
	p := &Puller{ID: "cam1", URL: mustURL(t, rawURL), Transport: "tcp",
		Hostile: hc.rec, Metrics: hc.m, ReadTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(p)
	}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hc.cancel = cancel
	go func() {
		defer close(hc.done)
		retry := time.NewTicker(50 * time.Millisecond) // the pace of reconnects
		defer retry.Stop()
		for ctx.Err() == nil {
			if err := p.Pull(ctx, hc.sink, hc.obs); err != nil && ctx.Err() == nil {
				hc.mu.Lock()
				hc.lastErr = err.Error()
				hc.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-retry.C:
			}
		}
	}()
	t.Cleanup(hc.Close)
	return hc
}

// Close stops pulling (idempotent).
func (hc *hostileCam) Close() {
	hc.cancel()
	<-hc.done
}

func (hc *hostileCam) lastError() string {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.lastErr
}

// waitViolation waits until the camera's last error is a violation with
// the given reason and returns the error text.
func (hc *hostileCam) waitViolation(t *testing.T, reason string, within time.Duration) string {
	t.Helper()
	var last string
	testtool.WaitFor(t, within, "a "+reason+" violation", func() bool {
		last = hc.lastError()
		return testutil.ToFloat64(hc.m.violations.WithLabelValues("cam1", reason)) > 0 && last != ""
	})
	if strings.Contains(last, hostilePassword) || strings.Contains(last, "admin:") {
		t.Fatalf("last error leaks credentials: %q", last)
	}
	reasons, details := hc.rec.snapshot()
	if len(reasons) == 0 || reasons[0] != reason {
		t.Fatalf("hostile events %q, want first %q", reasons, reason)
	}
	for _, d := range details {
		if strings.Contains(d, hostilePassword) {
			t.Fatalf("hostile event leaks the password: %q", d)
		}
	}
	return last
}

// TestRedirectLoopRefused is the regression test of the redirect-recursion
// crash: a camera answering every DESCRIBE with "302 Location: itself/rN".
// Before the fix gortsplib followed 20,070 redirects in 3 s (one new
// connection each, credentials attached) and the stack in use grew from
// 0.36 MB to 47.6 MB, towards Go's fatal stack limit. Now each connection
// sends exactly one DESCRIBE and the redirect is the camera's last error.
func TestRedirectLoopRefused(t *testing.T) {
	h := startHostile(t, "127.0.0.9", democam.Attacks{RedirectLoop: true}, nil)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stackBefore := ms.StackInuse
	hc := newHostileTestCamera(t, h, nil)
	msg := hc.waitViolation(t, ReasonRedirect, 10*time.Second)
	testtool.WaitFor(t, 10*time.Second, "a few reconnects", func() bool { return h.Connections() >= 3 })
	hc.Close()
	if d, c := h.Describes(), h.Connections(); d > c {
		t.Fatalf("%d DESCRIBEs over %d connections: a redirect was followed", d, c)
	}
	if !strings.Contains(msg, "redirect") || !strings.Contains(msg, "rtsp://"+h.Addr()+"/r1") {
		t.Fatalf("last error %q does not name the redirect target", msg)
	}
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.StackInuse) - int64(stackBefore); grown > 4<<20 {
		t.Fatalf("stack in use grew by %d bytes", grown)
	}
	if got := testutil.ToFloat64(hc.m.redirects.WithLabelValues("cam1")); got < 1 {
		t.Fatalf("redirects metric %v", got)
	}
}

// TestRedirectElsewhereNeverReached: a redirect to another host (with the
// camera's credentials, gortsplib would have sent them there) reaches no
// one; the last error names the target without userinfo.
func TestRedirectElsewhereNeverReached(t *testing.T) {
	target := testtool.NewTCPSink(t, "127.0.0.10")
	h := startHostile(t, "127.0.0.9", democam.Attacks{RedirectTo: "evil:pw@" + target.Addr()}, nil)
	hc := newHostileTestCamera(t, h, nil)
	msg := hc.waitViolation(t, ReasonRedirect, 10*time.Second)
	testtool.WaitFor(t, 10*time.Second, "a few reconnects", func() bool { return h.Connections() >= 3 })
	hc.Close()
	if n := target.Conns(); n != 0 {
		t.Fatalf("the redirect target got %d connections", n)
	}
	if !strings.Contains(msg, "rtsp://"+target.Addr()+"/stolen") || strings.Contains(msg, "evil:pw") {
		t.Fatalf("last error %q", msg)
	}
}

// TestRedirectAfterUDPFallback: with transport auto the camera refuses UDP
// ("TCP only"), which makes gortsplib start over and DESCRIBE again inside
// its fallback path; that DESCRIBE is redirected. Still nothing follows it.
func TestRedirectAfterUDPFallback(t *testing.T) {
	target := testtool.NewTCPSink(t, "127.0.0.10")
	h := startHostile(t, "127.0.0.9", democam.Attacks{RedirectOnFallback: true, RedirectTo: target.Addr()}, nil)
	hc := newHostileTestCamera(t, h, func(c *Puller) { c.Transport = "auto" })
	msg := hc.waitViolation(t, ReasonRedirect, 10*time.Second)
	hc.Close()
	if n := target.Conns(); n != 0 {
		t.Fatalf("the redirect target got %d connections", n)
	}
	if !strings.Contains(msg, target.Addr()) {
		t.Fatalf("last error %q", msg)
	}
}

// TestGuardRefusesOtherAddresses exercises the guard below gortsplib: a
// dial anywhere but the configured address, a UDP datagram to anyone but
// the camera, a name lookup.
func TestGuardRefusesOtherAddresses(t *testing.T) {
	target := testtool.NewTCPSink(t, "127.0.0.10")
	cam := testtool.NewTCPSink(t, "127.0.0.9")
	g := &netGuard{addr: cam.Addr()}
	if _, err := g.dial(context.Background(), "tcp", target.Addr()); err == nil {
		t.Fatal("dial to another address allowed")
	}
	var v *Violation
	if _, err := g.dial(context.Background(), "udp", cam.Addr()); !errors.As(err, &v) || v.Reason != ReasonDialRefused {
		t.Fatalf("udp dial: %v", err)
	}
	c, err := g.dial(context.Background(), "tcp", cam.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := g.listenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sink, err := net.ListenPacket("udp", "127.0.0.10:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := pc.WriteTo([]byte("rr"), sink.LocalAddr()); err == nil {
		t.Fatal("UDP to a host other than the camera allowed")
	}
	if _, err := pc.WriteTo([]byte("rr"), &net.UDPAddr{IP: net.ParseIP("127.0.0.9"), Port: 9}); err != nil {
		t.Fatalf("UDP to the camera refused: %v", err)
	}
	if _, err := g.resolve("ip", "attacker.example"); err == nil {
		t.Fatal("name resolved")
	}
	testtool.WaitFor(t, time.Second, "the camera connection", func() bool { return cam.Conns() == 1 })
	if n := target.Conns(); n != 0 {
		t.Fatalf("the other address got %d connections", n)
	}
}

// TestHostileBounds runs each attack of the kit against the ingest path
// and checks the camera is cut off with a last error naming the cause.
func TestHostileBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attacks democam.Attacks
		reason  string
		want    string
		cam     func(*democam.HostileCamera)
		mod     func(*Puller)
	}{
		{"giant headers", democam.Attacks{GiantHeaders: true}, ReasonHeaderSize, "headers exceed", nil, nil},
		{"giant SDP", democam.Attacks{GiantSDP: true}, ReasonBodySize, "SDP", nil, nil},
		{"endless tracks", democam.Attacks{EndlessTracks: true}, ReasonTracks, "501 media sections", nil, nil},
		{"huge NAL units", democam.Attacks{HugeNALUnits: true}, ReasonAccessUnit, "larger than", nil, nil},
		{"SPS churn", democam.Attacks{SPSChurn: true}, ReasonParamSetChurn, "parameter sets", nil, nil},
		{"slow drip", democam.Attacks{SlowDrip: true}, ReasonSlow, "took more than", func(h *democam.HostileCamera) { h.DripInterval = 100 * time.Millisecond }, nil},
		{"silent TCP", democam.Attacks{SilentTCP: true}, ReasonHandshakeTimeout, "did not complete", nil,
			func(c *Puller) { c.Limits.HandshakeTimeout = 2 * time.Second; c.ReadTimeout = 10 * time.Second }},
		{"bitrate flood", democam.Attacks{BitrateFlood: true}, ReasonBitrate, "sustained", func(h *democam.HostileCamera) { h.FloodMbps = 40 },
			func(c *Puller) { c.Limits.MaxBitrate = 4_000_000; c.Limits.BitrateWindow = time.Second }},
		{"timestamp jumps", democam.Attacks{TimestampJumps: true}, ReasonTimestamps, "timestamps jumped", nil, nil},
		{"interleaved abuse", democam.Attacks{InterleavedAbuse: true}, ReasonStrayFrames, "never set up", nil, nil},
		{"RTCP flood", democam.Attacks{RTCPFlood: true}, ReasonRTCPFlood, "RTCP", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHostile(t, "127.0.0.9", tc.attacks, tc.cam)
			hc := newHostileTestCamera(t, h, tc.mod)
			msg := hc.waitViolation(t, tc.reason, 20*time.Second)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("last error %q does not say %q", msg, tc.want)
			}
		})
	}
}

// TestSilentCameraRequestTimeout: a camera that accepts TCP and never
// answers gets a last error that says so (within the read timeout).
func TestSilentCameraRequestTimeout(t *testing.T) {
	h := startHostile(t, "127.0.0.9", democam.Attacks{SilentTCP: true}, nil)
	hc := newHostileTestCamera(t, h, nil)
	testtool.WaitFor(t, 10*time.Second, "a last error", func() bool { return hc.lastError() != "" })
	if msg := hc.lastError(); !strings.Contains(msg, "did not answer") {
		t.Fatalf("last error %q", msg)
	}
}

// TestHonestHostileCameraPlays: the kit's camera with no attack (and with
// only parameter-set tails, which ingest passes to the sanitizer) plays.
func TestHonestHostileCameraPlays(t *testing.T) {
	for _, a := range []democam.Attacks{{}, {ParamSetTails: true}} {
		h := startHostile(t, "127.0.0.9", a, nil)
		hc := newHostileTestCamera(t, h, func(c *Puller) { c.Transport = "auto" })
		testtool.Recv(t, hc.sink.connCh, 10*time.Second, "the camera connected")
		testtool.WaitFor(t, 10*time.Second, "20 video units", func() bool { v, _ := hc.sink.count(); return v >= 20 })
		if _, tr, _ := hc.obs.get(); tr != "TCP" || hc.lastError() != "" {
			t.Fatalf("transport %q, last error %q", tr, hc.lastError())
		}
		hc.Close()
		if r, _ := hc.rec.snapshot(); len(r) != 0 {
			t.Fatalf("an honest camera was reported hostile: %q", r)
		}
	}
}

// TestOpusPaddingNeverLeaves: the Opus depacketizer hands the relay the
// packet without its padding (RFC 6716 code 3), where a camera could hide
// anything.
func TestOpusPaddingNeverLeaves(t *testing.T) {
	dec, err := newDecoder(&format.Opus{PayloadTyp: 111, ChannelCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	payload := append([]byte{0x7b, 0x42, 12, 0xaa, 0xbb}, []byte("MAC=4419b601")...)
	au, err := dec(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, Timestamp: 960}, Payload: payload})
	if err != nil || len(au) != 1 || !bytes.Equal(au[0], []byte{0x7b, 0x02, 0xaa, 0xbb}) {
		t.Fatalf("got %x, %v", au, err)
	}
}
