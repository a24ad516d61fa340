package whep

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"cordon/internal/icepolicy"
	"cordon/internal/testtool"
	"cordon/internal/whepclient"
	"cordon/relay"
	"cordon/relay/session"
)

// A real High-profile 1280x720 SPS/PPS pair (x264).
var (
	// High profile, no B-frames (x264 -bf 0): an SPS announcing frame
	// reordering would be refused by the relay
	testSPS = []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0xf6, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x06, 0x41, 0xe2, 0x85, 0x49}
	testPPS = []byte{0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0}
)

const (
	testFPS = 25
	testGOP = 25 // frames per GOP: one IDR a second
)

// slice builds a coded slice NAL: IDR (type 5) or non-IDR (type 1),
// carrying the frame number after a plausible slice-header start so the
// client can check order and completeness.
func slice(idr bool, n uint32, size int) []byte {
	b := make([]byte, size)
	if idr {
		b[0], b[1] = 0x65, 0x88
	} else {
		b[0], b[1] = 0x41, 0x9a
	}
	for k := range 4 { // 7 bits a byte, high bit set: no 00 00 0x start-code look-alikes
		b[2+k] = byte(n>>(7*(3-k)))&0x7f | 0x80
	}
	for i := 6; i < size; i++ {
		b[i] = byte(i*7+int(n)) | 0x01 // no 00 00 runs
	}
	return b
}

func frameNo(nalu []byte) uint32 {
	if len(nalu) < 6 {
		return 0
	}
	var n uint32
	for k := range 4 {
		n = n<<7 | uint32(nalu[2+k]&0x7f)
	}
	return n
}

// camera feeds a relay.Stream like ingest would: H.264 + PCMU.
type camera struct {
	stream *relay.Stream
	cancel context.CancelFunc
	wg     sync.WaitGroup
	frames atomic.Uint32
}

func startCamera(t testing.TB, hub *relay.Hub, id string) *camera {
	t.Helper()
	return startCameraSized(t, hub, id, 30000, 3000)
}

// startCameraSized is startCamera with keyframes of key bytes and other
// frames of delta bytes.
func startCameraSized(t testing.TB, hub *relay.Hub, id string, key, delta int) *camera {
	t.Helper()
	st := &relay.Stream{Camera: id}
	if err := st.Initialize(); err != nil {
		t.Fatal(err)
	}
	hub.Put(st)
	if err := st.CameraConnected([]relay.Track{
		{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}},
		{Kind: relay.KindAudio, Codec: relay.CodecPCMU, ClockRate: 8000, Channels: 1},
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &camera{stream: st, cancel: cancel}
	c.wg.Add(1)
	// startCamera returns once the first keyframe is in the GOP cache, so a
	// viewer that POSTs next starts on it
	firstKey := make(chan struct{})
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(time.Second / testFPS)
		defer tick.Stop()
		var n uint32
		for {
			pts := time.Duration(n) * time.Second / testFPS
			var au [][]byte
			if n%testGOP == 0 {
				au = [][]byte{testSPS, testPPS, slice(true, n, key)}
			} else {
				au = [][]byte{slice(false, n, delta)}
			}
			if err := st.WriteUnit(relay.Unit{Track: 0, PTS: pts, AU: au}); err != nil {
				t.Error(err)
				return
			}
			// two 20 ms PCMU frames per 40 ms video frame
			for k := range 2 {
				_ = st.WriteUnit(relay.Unit{Track: 1, PTS: pts + time.Duration(k)*20*time.Millisecond, AU: [][]byte{make([]byte, 160)}})
			}
			n++
			c.frames.Store(n)
			if n == 1 {
				close(firstKey)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(c.stop)
	<-firstKey
	return c
}

func (c *camera) stop() {
	c.cancel()
	c.wg.Wait()
	c.stream.Close()
}

// fakeAccess: tokens are user names; "admin" is admin.
type fakeAccess struct {
	perms map[string][]string // user -> cameras
	known map[string]bool
}

func (a *fakeAccess) Authorize(r *http.Request, cam string) (Viewer, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	cams, known := a.perms[tok]
	if !ok || !known {
		return Viewer{}, &HTTPError{Status: 401, Msg: "a valid Bearer token is required"}
	}
	if !a.known[cam] {
		return Viewer{}, &HTTPError{Status: 404, Msg: "unknown camera"}
	}
	for _, c := range cams {
		if c == cam || c == "*" {
			return Viewer{Name: tok, Kind: "user", TokenID: "t-" + tok, Admin: tok == "admin"}, nil
		}
	}
	return Viewer{}, &HTTPError{Status: 403, Msg: "you may not view this camera"}
}

func (a *fakeAccess) Authenticate(r *http.Request) (Viewer, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if _, known := a.perms[tok]; !ok || !known {
		return Viewer{}, &HTTPError{Status: 401, Msg: "a valid Bearer token is required"}
	}
	return Viewer{Name: tok, Kind: "user", TokenID: "t-" + tok, Admin: tok == "admin"}, nil
}

type fakeEvents struct {
	mu     sync.Mutex
	starts []session.Info
	ends   []session.Info
	bytes  []uint64
	notOK  error
	// startErr makes ViewStart refuse (the audit write failed)
	startErr error
}

func (e *fakeEvents) ViewStart(s session.Info) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.startErr != nil {
		return e.startErr
	}
	e.starts = append(e.starts, s)
	return nil
}
func (e *fakeEvents) ViewEnd(s session.Info, _ time.Duration, b uint64) {
	e.mu.Lock()
	e.ends = append(e.ends, s)
	e.bytes = append(e.bytes, b)
	e.mu.Unlock()
}
func (e *fakeEvents) Ready() error { e.mu.Lock(); defer e.mu.Unlock(); return e.notOK }
func (e *fakeEvents) counts() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.starts), len(e.ends)
}

type env struct {
	srv    *Server
	hub    *relay.Hub
	http   *httptest.Server
	events *fakeEvents
}

func newEnv(t testing.TB, mod func(*Server)) *env {
	t.Helper()
	hub := relay.NewHub()
	ev := &fakeEvents{}
	srv := &Server{
		UDPListen: "127.0.0.1:0",
		TCPListen: "127.0.0.1:0",
		Hub:       hub,
		Access: &fakeAccess{
			perms: map[string][]string{"alice": {"*"}, "bob": {"cam2"}, "carol": {"*"}, "admin": {"*"}},
			known: map[string]bool{"cam1": true, "cam2": true, "offline": true, "ghost": true},
		},
		Events: ev,
		// the tests' viewers are on loopback, which the default policy refuses
		ICEPolicy:         &icepolicy.Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		Log:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ReadyTimeout:      500 * time.Millisecond,
		DisconnectTimeout: 2 * time.Second,
		RateLimit:         1000,
		RateBurst:         1000,
	}
	if mod != nil {
		mod(srv)
	}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &env{srv: srv, hub: hub, http: hs, events: ev}
}

// client is a browser-like WHEP viewer (internal/whepclient).
type client struct {
	*whepclient.Client
	pc       *webrtc.PeerConnection
	location string
	answer   string
	aus      <-chan whepclient.AU
}

// audioPackets and videoPT read the client's counters.
func (c *client) audioPackets() int64 { return c.Stats().AudioPackets }
func (c *client) videoPT() uint8      { return c.Stats().VideoPT }

type clientOpts struct {
	tcpOnly bool
	noRead  bool // never drain the tracks (a stalled viewer)
	token   string
	// rewriteAnswer edits the answer before it is applied (e.g. to send
	// the media through a proxy).
	rewriteAnswer func(string) string
	rewriteOffer  func(string) string
	dropDTLS      func(n int) bool // see whepclient.Options.DropDTLS
}

// newClient acts like a browser: recvonly video+audio transceivers, offer
// with all candidates, POST, answer. A refused POST returns nil and the
// response.
func newClient(t testing.TB, e *env, cam string, o clientOpts) (*client, *http.Response) {
	t.Helper()
	return newClientWithHook(t, e, cam, o, nil)
}

func newClientWithHook(t testing.TB, e *env, cam string, o clientOpts, beforePost func()) (*client, *http.Response) {
	t.Helper()
	tok := o.token
	if tok == "" {
		tok = "alice"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, whepclient.Options{URL: e.http.URL + "/whep/" + cam, Token: tok, HTTP: e.http.Client(),
		TCPOnly: o.tcpOnly, NoRead: o.noRead, RewriteOffer: o.rewriteOffer, RewriteAnswer: o.rewriteAnswer, BeforePost: beforePost, DropDTLS: o.dropDTLS})
	var se *whepclient.StatusError
	if errors.As(err, &se) {
		return nil, &http.Response{StatusCode: se.Status, Header: se.Header, Body: io.NopCloser(strings.NewReader(se.Body))}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wc.Close)
	c := &client{Client: wc, pc: wc.PC, location: wc.Location, answer: wc.Answer, aus: wc.AUs()}
	if o.rewriteAnswer != nil {
		c.answer = o.rewriteAnswer(c.answer)
	}
	resp := &http.Response{StatusCode: http.StatusCreated, Header: http.Header{"Location": {wc.Location}, "Content-Type": {"application/sdp"}},
		Body: io.NopCloser(strings.NewReader(wc.Answer))}
	return c, resp
}

func post(t testing.TB, e *env, cam, token, ctype, body string) *http.Response {
	t.Helper()
	return do(t, e, http.MethodPost, "/whep/"+cam, token, ctype, body)
}

func do(t testing.TB, e *env, method, path, token, ctype, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// nextAU waits for the next decoded AU.
func (c *client) nextAU(t testing.TB, within time.Duration) whepclient.AU {
	t.Helper()
	return testtool.Recv(t, c.aus, within, "a video access unit")
}

func naluTypes(au [][]byte) []int {
	out := make([]int, len(au))
	for i, n := range au {
		out[i] = int(n[0] & 0x1f)
	}
	return out
}

// browserOffer returns a browser's offer with recvonly audio and, when
// video, video.
func browserOffer(t testing.TB, video bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sdp, err := whepclient.Offer(ctx, whepclient.Options{AudioOnly: !video})
	if err != nil {
		t.Fatal(err)
	}
	return sdp
}

// cameraOffline is a stream whose camera never connects.
type cameraOffline struct{ stream *relay.Stream }

func (c *cameraOffline) put(t testing.TB, e *env) {
	c.stream = &relay.Stream{Camera: "offline"}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	c.stream.CameraDisconnected(errors.New("dial tcp 10.20.0.12:554: connect: no route to host"))
	e.hub.Put(c.stream)
	t.Cleanup(c.stream.Close)
}
