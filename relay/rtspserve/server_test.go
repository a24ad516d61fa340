package rtspserve

import (
	"bufio"
	"context"
	"crypto/md5" //nolint:gosec // RTSP Digest is MD5
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"cordon/internal/testtool"
	"cordon/relay"
	"cordon/relay/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48} // x264 baseline 3.0, 640x480 (the sanitizer drops parameter sets that do not parse)
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

// fakeAccess judges like the gateway's auth, in miniature: secrets per
// name (Basic, and Digest through their HA1), rights per name, failures
// counted per address with a lock after lockAfter of them.
type fakeAccess struct {
	mu        sync.Mutex
	allowed   map[string][]string // name -> cameras
	secrets   map[string]string
	notOK     error
	failures  map[string]int // remote -> failures
	details   []string       // what each failure was
	lockAfter int            // 0 = never lock
	checks    int            // password and digest verifications
}

func (f *fakeAccess) fail(name, remote, detail string) error {
	if f.failures == nil {
		f.failures = map[string]int{}
	}
	f.failures[remote]++
	f.details = append(f.details, name+": "+detail)
	return &Refusal{Status: 401, Err: errors.New("bad credentials")}
}

func (f *fakeAccess) CheckLocked(_, remote string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lockAfter > 0 && f.failures[remote] >= f.lockAfter {
		return &Refusal{Status: 503, RetryAfter: 30 * time.Second, Err: errors.New("locked out")}
	}
	return nil
}

func (f *fakeAccess) CheckPassword(_ context.Context, name, secret, remote string) (Viewer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if s, ok := f.secrets[name]; ok && s == secret {
		kind := "user"
		if strings.HasPrefix(name, "peer/") {
			kind = session.KindPeer
		}
		return Viewer{Name: name, Kind: kind, Principal: "p-" + name + "-" + s}, nil
	}
	return Viewer{}, f.fail(name, remote, "bad password")
}

func (f *fakeAccess) CheckDigest(d Digest, remote string) (Viewer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	s, ok := f.secrets[d.Username]
	if ok {
		ha2 := md5hex(d.Method + ":" + d.URI)
		want := md5hex(HA1(d.Username, s) + ":" + d.Nonce + ":" + ha2)
		if d.QOP == "auth" {
			want = md5hex(HA1(d.Username, s) + ":" + d.Nonce + ":" + d.NC + ":" + d.CNonce + ":auth:" + ha2)
		}
		if want == d.Response {
			return Viewer{Name: d.Username, Kind: "user"}, nil
		}
	}
	return Viewer{}, f.fail(d.Username, remote, "bad digest response")
}

func (f *fakeAccess) Failed(name, remote, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail(name, remote, detail)
}

func (f *fakeAccess) Authorize(_ context.Context, v Viewer, camera, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notOK != nil {
		return &Refusal{Status: 503, RetryAfter: 5 * time.Second, Err: f.notOK}
	}
	for _, c := range f.allowed[v.Name] {
		if c == camera {
			return nil
		}
	}
	return &Refusal{Status: 403, Err: errors.New("not permitted")}
}

func (f *fakeAccess) Ready() error { f.mu.Lock(); defer f.mu.Unlock(); return f.notOK }

func (f *fakeAccess) failureDetails() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.details)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s)) //nolint:gosec
	return hex.EncodeToString(h[:])
}

type events struct {
	mu      sync.Mutex
	starts  int
	ends    int
	reasons []string
}

func (e *events) ViewStart(session.Info) error { e.mu.Lock(); e.starts++; e.mu.Unlock(); return nil }
func (e *events) ViewEnd(in session.Info, _ time.Duration, _ uint64) {
	e.mu.Lock()
	e.ends++
	e.reasons = append(e.reasons, in.Reason)
	e.mu.Unlock()
}

type fixture struct {
	srv      *Server
	stream   *relay.Stream
	access   *fakeAccess
	events   *events
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	started  time.Time
}

// stopCamera stops the fixture's synthetic camera (tests that feed the
// stream themselves).
func (f *fixture) stopCamera() {
	f.stopOnce.Do(func() { close(f.stop) })
	f.wg.Wait()
}

func newFixture(t *testing.T, digest bool) *fixture {
	t.Helper()
	hub := relay.NewHub()
	st := &relay.Stream{Camera: "gate"}
	_ = st.Initialize()
	hub.Put(st)
	other := &relay.Stream{Camera: "yard"}
	_ = other.Initialize()
	hub.Put(other)
	if err := st.CameraConnected([]relay.Track{
		{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}},
		{Kind: relay.KindAudio, Codec: relay.CodecAAC, ClockRate: 16000, AACConfig: []byte{0x14, 0x08}},
	}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		stream: st,
		access: &fakeAccess{allowed: map[string][]string{"alice": {"gate"}, "bob": {"yard"}}, secrets: map[string]string{"alice": "s3cret-A", "bob": "s3cret-B"}},
		events: &events{},
		stop:   make(chan struct{}),
	}
	f.started = time.Now()
	f.srv = &Server{Listen: "127.0.0.1:0", Hub: hub, Access: f.access, Events: f.events, AllowBasic: !digest, DigestEnabled: func() bool { return digest }, ReadyTimeout: 300 * time.Millisecond}
	if err := f.srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	// a camera at 25 fps, GOP 10
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			pts := time.Duration(i) * 40 * time.Millisecond
			au := [][]byte{{0x41, 0x9a, 1, 2, 3}}
			if i%10 == 0 {
				au = [][]byte{testSPS, testPPS, append([]byte{0x65, 0x88}, make([]byte, 3000)...)}
			}
			_ = st.WriteUnit(relay.Unit{Track: 0, PTS: pts, AU: au})
			_ = st.WriteUnit(relay.Unit{Track: 1, PTS: pts, AU: [][]byte{{0x21, 0x10, 0x04}}})
		}
	}()
	t.Cleanup(func() {
		f.stopCamera()
		f.srv.Close()
		st.Close()
		other.Close()
	})
	return f
}

func (f *fixture) url(userinfo, cam string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return fmt.Sprintf("rtsp://%s%s/%s", userinfo, f.srv.Addr().String(), cam)
}

func dial(t *testing.T, raw string, tcp bool) (*gortsplib.Client, *description.Session, error) {
	t.Helper()
	u, err := base.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: 3 * time.Second}
	if tcp {
		p := gortsplib.ProtocolTCP
		c.Protocol = &p
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	desc, res, err := c.Describe(u)
	if err != nil {
		c.Close()
		if res != nil {
			return nil, nil, fmt.Errorf("%d: %w", res.StatusCode, err)
		}
		return nil, nil, err
	}
	return c, desc, nil
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, false)
	cases := []struct {
		name, userinfo, cam, want string
	}{
		{"no credentials", "", "gate", "401"},
		{"wrong password", "alice:nope", "gate", "401"},
		{"unknown user", "mallory:x", "gate", "401"},
		{"forbidden camera", "alice:s3cret-A", "yard", "403"},
		// permission before existence: the same answer as a camera that
		// exists but is not permitted
		{"unknown camera", "alice:s3cret-A", "nothere", "403"},
		{"camera offline", "bob:s3cret-B", "yard", "503"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, _, err := dial(t, f.url(c.userinfo, c.cam), true)
			if err == nil {
				cl.Close()
				t.Fatal("DESCRIBE succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want status %s", err, c.want)
			}
		})
	}
	f.access.mu.Lock()
	f.access.notOK = errors.New("audit log unwritable")
	f.access.mu.Unlock()
	if cl, _, err := dial(t, f.url("alice:s3cret-A", "gate"), true); err == nil || !strings.Contains(err.Error(), "503") {
		if cl != nil {
			cl.Close()
		}
		t.Fatalf("fail-closed: got %v, want 503", err)
	}
}

func play(t *testing.T, f *fixture, userinfo string, tcp bool) (got func() (int64, int64), closeFn func()) {
	t.Helper()
	c, desc, err := dial(t, f.url(userinfo, "gate"), tcp)
	if err != nil {
		t.Fatal(err)
	}
	var video, audio atomic.Int64
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		c.Close()
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lastSeq uint16
	var haveSeq bool
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, p *rtp.Packet) {
		if m.Type == description.MediaTypeVideo {
			mu.Lock()
			if haveSeq && p.SequenceNumber != lastSeq+1 {
				t.Errorf("video sequence gap %d -> %d", lastSeq, p.SequenceNumber)
			}
			lastSeq, haveSeq = p.SequenceNumber, true
			mu.Unlock()
			video.Add(1)
		} else {
			audio.Add(1)
		}
	})
	if _, err := c.Play(nil); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return func() (int64, int64) { return video.Load(), audio.Load() }, c.Close
}

func TestPlayTCPAndUDPWithCordonSDP(t *testing.T) {
	f := newFixture(t, false)
	c, desc, err := dial(t, f.url("alice:s3cret-A", "gate"), true)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if len(desc.Medias) != 2 {
		t.Fatalf("medias %d", len(desc.Medias))
	}
	h, ok := desc.Medias[0].Formats[0].(*format.H264)
	if !ok || h.PacketizationMode != 1 || string(h.SPS) != string(testSPS) {
		t.Fatalf("video format %#v", desc.Medias[0].Formats[0])
	}
	if _, ok := desc.Medias[1].Formats[0].(*format.MPEG4Audio); !ok {
		t.Fatalf("AAC should be served over RTSP, got %#v", desc.Medias[1].Formats[0])
	}

	got, closeTCP := play(t, f, "alice:s3cret-A", true)
	testtool.WaitFor(t, 5*time.Second, "20 video and 5 audio packets", func() bool { v, a := got(); return v > 20 && a > 5 })
	if n := f.srv.Sessions.Count(""); n != 1 {
		t.Fatalf("sessions %d", n)
	}
	closeTCP()
	testtool.WaitFor(t, 5*time.Second, "the condition", func() bool { return f.srv.Sessions.Count("") == 0 })
	f.events.mu.Lock()
	starts, ends := f.events.starts, f.events.ends
	f.events.mu.Unlock() // not held into Fatalf: the cleanup's ViewEnd needs it
	if starts != 1 || ends != 1 {
		t.Fatalf("starts %d ends %d", starts, ends)
	}
}

func TestDigestAuthAndKill(t *testing.T) {
	f := newFixture(t, true)
	// gortsplib's client answers a Digest challenge from URL credentials
	got, closeFn := play(t, f, "alice:s3cret-A", true)
	defer closeFn()
	testtool.WaitFor(t, 5*time.Second, "the condition", func() bool { v, _ := got(); return v > 5 })
	// Basic is not offered without TLS when Digest is on
	if cl, _, err := dial(t, f.url("bob:wrong", "yard"), true); err == nil {
		cl.Close()
		t.Fatal("wrong digest accepted")
	}
	if d := f.access.failureDetails(); !slices.Contains(d, "bob: bad digest response") {
		t.Errorf("failures %q", d)
	}
	// narrowing rights ends the live session
	f.access.mu.Lock()
	f.access.allowed["alice"] = nil
	f.access.mu.Unlock()
	ended := f.srv.Sessions.Recheck(func(in session.Info) bool {
		return f.access.Authorize(context.Background(), Viewer{Name: in.User, Kind: in.Kind}, in.Camera, "", "") == nil
	})
	if len(ended) != 1 || ended[0].User != "alice" || ended[0].Protocol != "rtsp" || ended[0].Camera != "gate" {
		t.Fatalf("Recheck ended %+v", ended)
	}
	testtool.WaitFor(t, 5*time.Second, "the condition", func() bool { return f.srv.Sessions.Count("") == 0 })
	f.events.mu.Lock()
	defer f.events.mu.Unlock()
	if !slices.Contains(f.events.reasons, "revoked") {
		t.Errorf("view end reasons %q, want the registry's \"revoked\"", f.events.reasons)
	}
}

func TestHA1(t *testing.T) {
	// RFC 2617 style: MD5("Mufasa:cordon:Circle Of Life")
	if got := HA1("Mufasa", "Circle Of Life"); len(got) != 32 || got == HA1("Mufasa", "circle of life") {
		t.Fatalf("HA1 %q", got)
	}
}

// rawPlay runs DESCRIBE/SETUP/PLAY over TCP interleaved with Basic auth on
// a raw connection and returns it without reading any media: a client that
// has stopped reading.
func rawPlay(t *testing.T, addr, cam, user, pass string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	url := "rtsp://" + addr + "/" + cam
	var session string
	send := func(cseq int, method, u, extra string) string {
		fmt.Fprintf(c, "%s %s RTSP/1.0\r\nCSeq: %d\r\nAuthorization: %s\r\n%s\r\n", method, u, cseq, authz, extra)
		status, _ := br.ReadString('\n')
		length := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "Session: "); ok {
				session = strings.Split(strings.TrimSpace(v), ";")[0]
			}
		}
		body := make([]byte, length)
		_, _ = io.ReadFull(br, body)
		if !strings.Contains(status, "200") {
			t.Fatalf("%s: %s", method, status)
		}
		return string(body)
	}
	sdp := send(1, "DESCRIBE", url, "Accept: application/sdp\r\n")
	control := ""
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=control:"); ok && v != "*" {
			control = v
			break
		}
	}
	setupURL := url + "/" + control
	if strings.HasPrefix(control, "rtsp://") {
		setupURL = control
	}
	send(2, "SETUP", setupURL, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
	send(3, "PLAY", url, "Session: "+session+"\r\n")
	return c
}

// A client that stops reading fills its TCP buffers, then its relay
// reader's queue: its frames are dropped and counted (then it waits for a
// keyframe); the camera and the other clients carry on.
func TestSlowClientDropsAreCounted(t *testing.T) {
	f := newFixture(t, false)
	var dropped atomic.Int64
	f.srv.FrameDropped = func(string) { dropped.Add(1) } // gortsplib's queue (UDP sessions)
	readerDrops := func() {
		f.srv.mu.Lock()
		defer f.srv.mu.Unlock()
		for _, c := range f.srv.sessions {
			if c.reader != nil {
				if d, _ := c.reader.Stats(); d > 0 {
					dropped.Add(int64(d))
				}
			}
		}
	}
	got, closeOK := play(t, f, "alice:s3cret-A", true)
	defer closeOK()
	stalled := rawPlay(t, f.srv.Addr().String(), "gate", "alice", "s3cret-A")
	defer stalled.Close()
	// large frames at ~3 MB/s: a reading client keeps up, the stalled
	// one fills its socket buffers and then its write queue
	f.stopCamera()
	big := make([]byte, 60000)
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	big[0], big[1] = 0x41, 0x9a // non-IDR slice, first_mb_in_slice 0
	idr := append([]byte{0x65, 0x88}, big[2:]...)
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	feed := func(i int) {
		au := [][]byte{big}
		if i%25 == 0 {
			au = [][]byte{testSPS, testPPS, idr}
		}
		_ = f.stream.WriteUnit(relay.Unit{Track: 0, PTS: time.Since(f.started), AU: au})
		<-pace.C // a camera's frame interval
	}
	deadline := time.Now().Add(30 * time.Second)
	i := 0
	for ; dropped.Load() == 0 && time.Now().Before(deadline); i++ {
		feed(i)
		readerDrops()
	}
	if dropped.Load() == 0 {
		t.Fatal("no frame counted as dropped for a client that stopped reading")
	}
	// the reading client still gets the stream
	before, _ := got()
	for end := i + 50; i < end; i++ {
		feed(i)
	}
	if v, _ := got(); v < before+100 {
		t.Fatalf("the reading client got %d packets while the other was stalled", v-before)
	}
}

// Session caps: one principal past the registry's MaxPerPrincipal gets 503
// at SETUP.
func TestSessionLimits(t *testing.T) {
	f := newFixture(t, false)
	f.srv.Sessions.MaxPerPrincipal = 1
	_, closeFirst := play(t, f, "alice:s3cret-A", true)
	defer closeFirst()
	c, desc, err := dial(t, f.url("alice:s3cret-A", "gate"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.SetupAll(desc.BaseURL, desc.Medias)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("second session of one principal: %v, want 503", err)
	}
}

// A port in use is a start-up error naming the listener, never a panic;
// UDP on port 0 binds a free even/odd pair.
func TestListenErrorsAndEphemeralUDP(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.LocalAddr().(*net.UDPAddr).Port
	rtp := net.JoinHostPort("127.0.0.1", strconv.Itoa(port-port%2))
	rtcp := net.JoinHostPort("127.0.0.1", strconv.Itoa(port-port%2+1))
	srv := &Server{Listen: "127.0.0.1:0", UDPRTPListen: rtp, UDPRTCPListen: rtcp, Hub: relay.NewHub(), Access: &fakeAccess{}}
	err = srv.Initialize()
	srv.Close() // safe after a failed Initialize
	key := "rtsp.udp_rtp_listen"
	if port%2 == 1 {
		key = "rtsp.udp_rtcp_listen"
	}
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("Initialize with %s in use: %v", busy.LocalAddr(), err)
	}

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	srv = &Server{Listen: tcp.Addr().String(), Hub: relay.NewHub(), Access: &fakeAccess{}}
	if err := srv.Initialize(); err == nil || !strings.Contains(err.Error(), "rtsp.listen") {
		t.Fatalf("Initialize with the TCP port in use: %v", err)
	}
	srv.Close()

	srv = &Server{Listen: "127.0.0.1:0", UDPRTPListen: "127.0.0.1:0", UDPRTCPListen: "127.0.0.1:0", Hub: relay.NewHub(), Access: &fakeAccess{}}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, b := srv.UDPAddrs()
	_, pa, _ := net.SplitHostPort(a)
	_, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na == 0 || na%2 != 0 || nb != na+1 {
		t.Fatalf("ephemeral UDP pair %s %s", a, b)
	}
}

// A peer session (another cluster node relaying the camera) is listed
// with its kind, is no viewer of the stream, and is held to no cap.
func TestPeerSessions(t *testing.T) {
	f := newFixture(t, false)
	f.srv.Sessions.MaxPerPrincipal = 1
	f.access.secrets["peer/node-b"] = "peer-secret"
	f.access.allowed["peer/node-b"] = []string{"gate"}
	got1, close1 := play(t, f, "peer%2Fnode-b:peer-secret", true)
	defer close1()
	got2, close2 := play(t, f, "peer%2Fnode-b:peer-secret", true)
	defer close2()
	testtool.WaitFor(t, 5*time.Second, "both peer sessions to receive video", func() bool {
		v1, _ := got1()
		v2, _ := got2()
		return v1 > 5 && v2 > 5
	})
	if in := f.stream.Info(); in.Viewers() != 0 {
		t.Fatalf("peer sessions counted as %d viewers", in.Viewers())
	}
	list := f.srv.Sessions.List()
	if len(list) != 2 || list[0].Kind != session.KindPeer || list[0].User != "peer/node-b" {
		t.Fatalf("sessions %+v", list)
	}
}

// ssrcClient plays gate and reports, per media type, the SSRC its SETUP
// answers announced and the SSRCs its packets carried.
func ssrcClient(t *testing.T, srv *Server, tcp bool) (announced map[description.MediaType]uint32, seen func() map[description.MediaType][]uint32) {
	t.Helper()
	u, err := base.ParseURL("rtsp://alice:s3cret-A@" + srv.Addr().String() + "/gate")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var answers []uint32
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: 3 * time.Second, OnResponse: func(res *base.Response) {
		var th headers.Transport
		if v, ok := res.Header["Transport"]; ok && th.Unmarshal(v) == nil && th.SSRC != nil {
			mu.Lock()
			answers = append(answers, *th.SSRC)
			mu.Unlock()
		}
	}}
	p := gortsplib.ProtocolUDP
	if tcp {
		p = gortsplib.ProtocolTCP
	}
	c.Protocol = &p
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	got := map[description.MediaType][]uint32{}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, p *rtp.Packet) {
		mu.Lock()
		if !slices.Contains(got[m.Type], p.SSRC) {
			got[m.Type] = append(got[m.Type], p.SSRC)
		}
		mu.Unlock()
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(answers) != len(desc.Medias) {
		t.Fatalf("%d SETUP answers with an SSRC for %d medias", len(answers), len(desc.Medias))
	}
	announced = map[description.MediaType]uint32{}
	for i, m := range desc.Medias {
		announced[m.Type] = answers[i]
	}
	return announced, func() map[description.MediaType][]uint32 {
		mu.Lock()
		defer mu.Unlock()
		out := map[description.MediaType][]uint32{}
		for k, v := range got {
			out[k] = slices.Clone(v)
		}
		return out
	}
}

// Every TCP session of a camera announces, and sends with, the relay's
// SSRC for each track, so that they can share a frame's records
// (framewriter.go); a UDP session keeps gortsplib's own. Each session's
// packets carry exactly the SSRC its SETUP answer announced.
func TestTCPSessionsAnnounceTheRelaySSRC(t *testing.T) {
	f := newFixture(t, false)
	r, err := f.stream.AddReader(relay.ReaderConf{})
	if err != nil {
		t.Fatal(err)
	}
	tracks, err := r.WaitReady(context.Background())
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	relaySSRC := map[description.MediaType]uint32{description.MediaTypeVideo: tracks[0].SSRC, description.MediaTypeAudio: tracks[1].SSRC}
	srv := &Server{Listen: "127.0.0.1:0", UDPRTPListen: "127.0.0.1:0", UDPRTCPListen: "127.0.0.1:0", Hub: f.srv.Hub,
		Access: f.access, AllowBasic: true, DigestEnabled: func() bool { return false }, ReadyTimeout: time.Second}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a1, s1 := ssrcClient(t, srv, true)
	a2, s2 := ssrcClient(t, srv, true)
	au, su := ssrcClient(t, srv, false)
	for _, s := range []func() map[description.MediaType][]uint32{s1, s2, su} {
		testtool.WaitFor(t, 5*time.Second, "video and audio packets", func() bool { g := s(); return len(g) == 2 })
	}
	for _, c := range []struct {
		name      string
		announced map[description.MediaType]uint32
		seen      map[description.MediaType][]uint32
	}{{"tcp 1", a1, s1()}, {"tcp 2", a2, s2()}, {"udp", au, su()}} {
		for typ, ssrc := range c.announced {
			if len(c.seen[typ]) != 1 || c.seen[typ][0] != ssrc {
				t.Errorf("%s %s: announced %x, packets carried %x", c.name, typ, ssrc, c.seen[typ])
			}
			relayOwn := ssrc == relaySSRC[typ]
			if relayOwn != (c.name != "udp") {
				t.Errorf("%s %s: announced %x, the relay's is %x", c.name, typ, ssrc, relaySSRC[typ])
			}
		}
	}
}

// rtspConn is a raw RTSP/TCP client connection for tests that do what
// library clients do not (SETUP on one connection, PLAY on another).
type rtspConn struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	cseq int
}

func dialRTSP(t *testing.T, addr string) *rtspConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rtspConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a request as alice and returns the answer's status line,
// headers and body (it fails the test on anything but 200).
func (r *rtspConn) do(method, url, extra string) (map[string]string, string) {
	r.t.Helper()
	r.cseq++
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret-A"))
	fmt.Fprintf(r.c, "%s %s RTSP/1.0\r\nCSeq: %d\r\nAuthorization: %s\r\n%s\r\n", method, url, r.cseq, authz, extra)
	status, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatal(err)
	}
	h := map[string]string{}
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		h[k] = v
	}
	n, _ := strconv.Atoi(h["Content-Length"])
	body := make([]byte, n)
	if _, err := io.ReadFull(r.br, body); err != nil {
		r.t.Fatal(err)
	}
	if !strings.Contains(status, " 200 ") {
		r.t.Fatalf("%s %s: %s", method, url, strings.TrimSpace(status))
	}
	return h, string(body)
}

// setup sets trackID=n up on interleaved channels 2n-(2n+1) (session ""
// = a new one) and returns the session and the SSRC the answer announced.
func (r *rtspConn) setup(u string, n int, session string) (string, uint32) {
	r.t.Helper()
	extra := fmt.Sprintf("Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n", 2*n, 2*n+1)
	if session != "" {
		extra += "Session: " + session + "\r\n"
	}
	h, _ := r.do("SETUP", fmt.Sprintf("%s/trackID=%d", u, n), extra)
	var th headers.Transport
	if err := th.Unmarshal(base.HeaderValue{h["Transport"]}); err != nil || th.SSRC == nil {
		r.t.Fatalf("SETUP answer's Transport %q: %v", h["Transport"], err)
	}
	return strings.Split(h["Session"], ";")[0], *th.SSRC
}

// ssrcs reads interleaved records until every channel in want has
// carried n RTP packets, and returns the SSRCs seen per channel.
func (r *rtspConn) ssrcs(want []int, n int) map[int][]uint32 {
	r.t.Helper()
	seen, count := map[int][]uint32{}, map[int]int{}
	done := func() bool {
		for _, ch := range want {
			if count[ch] < n {
				return false
			}
		}
		return true
	}
	for !done() {
		var hdr [4]byte
		if _, err := io.ReadFull(r.br, hdr[:]); err != nil {
			r.t.Fatal(err)
		}
		if hdr[0] != '$' {
			r.t.Fatalf("not an interleaved record: %q", hdr)
		}
		b := make([]byte, int(hdr[2])<<8|int(hdr[3]))
		if _, err := io.ReadFull(r.br, b); err != nil {
			r.t.Fatal(err)
		}
		ch := int(hdr[1])
		if ch%2 == 1 {
			continue // RTCP
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			r.t.Fatal(err)
		}
		count[ch]++
		if !slices.Contains(seen[ch], p.SSRC) {
			seen[ch] = append(seen[ch], p.SSRC)
		}
	}
	return seen
}

// A session's SETUP answers are its own, not its connection's: a client
// may set a session up on one connection and PLAY it on another (RTSP
// allows it; gortsplib ties a TCP session to a connection only at PLAY),
// and a connection may set up and tear down any number of sessions. Each
// way, every packet carries the SSRC its SETUP answer announced (the
// answers were kept per connection, bounded at 16: the first case and
// the 17th SETUP on a connection sent gortsplib's own SSRC instead).
func TestSetupAnswersAreTheSessions(t *testing.T) {
	f := newFixture(t, false)
	addr := f.srv.Addr().String()
	url := "rtsp://" + addr + "/gate"

	t.Run("play on another connection", func(t *testing.T) {
		a, b := dialRTSP(t, addr), dialRTSP(t, addr)
		a.do("DESCRIBE", url, "Accept: application/sdp\r\n")
		session, video := a.setup(url, 0, "")
		_, audio := b.setup(url, 1, session)
		// A is closed, and gone from the session, first: gortsplib 5.6.2
		// reads the session's state from A's reader while a PLAY on B sets
		// it, a data race of the library's that -race reports
		a.c.Close()
		testtool.WaitFor(t, 5*time.Second, "connection A closed", func() bool {
			f.srv.mu.Lock()
			defer f.srv.mu.Unlock()
			return len(f.srv.conns) == 1
		})
		b.do("PLAY", url, "Session: "+session+"\r\n")
		got := b.ssrcs([]int{0, 2}, 10)
		if !slices.Equal(got[0], []uint32{video}) || !slices.Equal(got[2], []uint32{audio}) {
			t.Fatalf("announced video %x audio %x; packets carried %x and %x", video, audio, got[0], got[2])
		}
	})
	t.Run("many sessions on one connection", func(t *testing.T) {
		c := dialRTSP(t, addr)
		c.do("DESCRIBE", url, "Accept: application/sdp\r\n")
		for range 15 { // then the session's SETUPs are the 16th and 17th
			session, _ := c.setup(url, 1, "")
			c.do("TEARDOWN", url, "Session: "+session+"\r\n")
		}
		session, video := c.setup(url, 0, "")
		_, audio := c.setup(url, 1, session)
		c.do("PLAY", url, "Session: "+session+"\r\n")
		got := c.ssrcs([]int{0, 2}, 10)
		if !slices.Equal(got[0], []uint32{video}) || !slices.Equal(got[2], []uint32{audio}) {
			t.Fatalf("announced video %x audio %x; packets carried %x and %x", video, audio, got[0], got[2])
		}
	})
}
