package onvifserve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"go.uber.org/goleak"
	"golang.org/x/crypto/argon2"

	"cordon/camnet/onvif"
	"cordon/democam"
	"cordon/internal/soap"
	"cordon/ptz"
)

// The fixture: one face over an honest fake of the owner's auth (real
// argon2id password hashes, real ONVIF secrets, lockout counting per
// address), a real RTSP server where the stream URIs point (serving the
// democam clip on every camera path), and the democam PTZ dome steered
// through a real ptz.Control and camnet/onvif client.

var fx *fixture

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(netnsEnv) != "" || fuzzing() {
		// re-executed in a private network namespace, or a fuzz run:
		// neither needs the shared fixture
		os.Exit(m.Run())
	}
	f, err := newFixture()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixture:", err)
		os.Exit(1)
	}
	fx = f
	code := m.Run()
	f.close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	domeUser, domePass = "admin", "dome-pass-1"
	alicePass          = "alice login password"
	aliceONVIF         = "alice-onvif-secret-7Q2"
	bobONVIF           = "bob-onvif-secret-9Z4"
	carolONVIF         = "carol-onvif-secret-3K8"
	daveONVIF          = "dave-onvif-secret-5M1"
	erinONVIF          = "erin-onvif-secret-2P6"
)

// fuzzing reports whether this process runs a fuzz target (the
// coordinator or a worker).
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

type fixture struct {
	access *fakeAccess
	face   *Server
	rtsp   *rtspMux
	dome   *democam.PTZCamera
	client *onvif.Client
}

func newFixture() (*fixture, error) {
	f := &fixture{}
	var err error
	if f.rtsp, err = startRTSPMux([]string{"gate", "gate/sub", "yard", "dome"}); err != nil {
		return nil, err
	}
	f.dome = &democam.PTZCamera{ID: "dome", Listen: "127.0.0.7:0", Username: domeUser, Password: domePass}
	if err := f.dome.Initialize(); err != nil {
		f.rtsp.close()
		return nil, err
	}
	f.client = &onvif.Client{CameraID: "dome", URL: f.dome.ONVIFURL(), Username: domeUser, Password: domePass}
	if err := f.client.Initialize(); err != nil {
		return nil, err
	}
	f.access = newFakeAccess()
	f.access.setPTZ("dome", f.newControl())
	f.face = &Server{Listen: "127.0.0.1:0", RTSPPort: f.rtsp.port(), Access: f.access, Version: "test", SerialNumber: "node-1"}
	if err := f.face.Initialize(); err != nil {
		return nil, err
	}
	return f, nil
}

// newControl is a fresh PTZ lock for the dome (tests that take control
// start from nobody holding it).
func (f *fixture) newControl() *ptz.Control {
	c := &ptz.Control{CameraID: "dome", Camera: f.client}
	if err := c.Initialize(); err != nil {
		panic(err)
	}
	return c
}

func (f *fixture) close() {
	f.face.Close()
	f.access.closeControls()
	f.dome.Close()
	f.rtsp.close()
}

// ---- the honest fake of the owner's auth ----

type fakeUser struct {
	salt, hash []byte // argon2id of the login password
	onvif      string // ONVIF-only secret ("" = none)
	view       []string
	ptz        map[string]int
}

type failure struct{ name, remote, detail string }

type fakeAccess struct {
	mu        sync.Mutex
	users     map[string]*fakeUser
	cams      []Camera
	ptz       map[string]*ptz.Control
	failures  []failure
	successes []string
	fails     map[string]int // by remote address
	lockAfter int
	denied    []string
	granted   []string // "name/camera" of every PTZGranted
}

func argon(pw string, salt []byte) []byte {
	return argon2.IDKey([]byte(pw), salt, 1, 8*1024, 1, 32)
}

func newFakeAccess() *fakeAccess {
	a := &fakeAccess{users: map[string]*fakeUser{}, ptz: map[string]*ptz.Control{}, fails: map[string]int{}, lockAfter: 1 << 30}
	add := func(name, pw, onvifSecret string, view []string, prio map[string]int) {
		salt := make([]byte, 16)
		_, _ = rand.Read(salt)
		a.users[name] = &fakeUser{salt: salt, hash: argon(pw, salt), onvif: onvifSecret, view: view, ptz: prio}
	}
	add("alice", alicePass, aliceONVIF, []string{"gate", "dome"}, map[string]int{"dome": 100})
	add("bob", "bob login password", bobONVIF, []string{"yard"}, nil)
	add("carol", "carol login password", carolONVIF, nil, nil) // signs in, may view nothing
	add("dave", "dave login password", daveONVIF, []string{"dome"}, map[string]int{"dome": 200})
	add("erin", "erin login password", erinONVIF, []string{"dome"}, map[string]int{"dome": 50})
	add("frank", "frank login password", "", []string{"gate"}, nil) // no ONVIF secret
	a.cams = []Camera{
		{ID: "gate", Name: "Gate north", Main: Stream{Codec: "H264", Width: 320, Height: 180, FPS: 15}, Sub: &Stream{Codec: "H264", Width: 320, Height: 180, FPS: 15}},
		{ID: "yard", Name: "Yard", Main: Stream{Codec: "H265", Width: 320, Height: 180, FPS: 15}},
		{ID: "dome", Name: "Dome", Main: Stream{Codec: "H264", Width: 320, Height: 180, FPS: 10}, PTZ: true},
	}
	return a
}

func (a *fakeAccess) setPTZ(cam string, c *ptz.Control) {
	a.mu.Lock()
	old := a.ptz[cam]
	a.ptz[cam] = c
	a.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (a *fakeAccess) closeControls() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.ptz {
		c.Close()
	}
}

func (a *fakeAccess) record() (failures []failure, successes []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.failures), slices.Clone(a.successes)
}

func (a *fakeAccess) locked(remote string) error {
	if a.fails[remote] >= a.lockAfter {
		return &LockedOut{RetryAfter: 30 * time.Second}
	}
	return nil
}

func (a *fakeAccess) fail(name, remote, detail string) {
	a.failures = append(a.failures, failure{name, remote, detail})
	a.fails[remote]++
}

type fakeAttempt struct {
	a            *fakeAccess
	name, remote string
	ended        bool
}

func (a *fakeAccess) BeginAttempt(name, remote string) (Attempt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.locked(remote); err != nil {
		return nil, err
	}
	return &fakeAttempt{a: a, name: name, remote: remote}, nil
}

func (t *fakeAttempt) end() {
	if t.ended {
		panic("attempt ended twice")
	}
	t.ended = true
}

func (t *fakeAttempt) Secret() (string, bool) {
	t.a.mu.Lock()
	defer t.a.mu.Unlock()
	u := t.a.users[t.name]
	if u == nil || u.onvif == "" {
		return "", false
	}
	return u.onvif, true
}

func (t *fakeAttempt) Succeeded() (Principal, error) {
	t.a.mu.Lock()
	defer t.a.mu.Unlock()
	t.end()
	t.a.successes = append(t.a.successes, t.name)
	return Principal{Name: t.name, Ref: t.a.users[t.name]}, nil
}

func (t *fakeAttempt) Failed(detail string) {
	t.a.mu.Lock()
	defer t.a.mu.Unlock()
	t.end()
	t.a.fail(t.name, t.remote, detail)
}

func (t *fakeAttempt) Cancel() {
	t.a.mu.Lock()
	defer t.a.mu.Unlock()
	t.end()
}

func (a *fakeAccess) CheckPassword(_ context.Context, name, password, remote string) (Principal, error) {
	a.mu.Lock()
	if err := a.locked(remote); err != nil {
		a.mu.Unlock()
		return Principal{}, err
	}
	u := a.users[name]
	a.mu.Unlock()
	salt, want := make([]byte, 16), make([]byte, 32) // unknown name: same work
	if u != nil {
		salt, want = u.salt, u.hash
	}
	ok := subtle.ConstantTimeCompare(argon(password, salt), want) == 1 && u != nil
	a.mu.Lock()
	defer a.mu.Unlock()
	if !ok {
		a.fail(name, remote, "bad password")
		return Principal{}, errors.New("invalid username or password")
	}
	a.successes = append(a.successes, name)
	return Principal{Name: name, Ref: u}, nil
}

func (a *fakeAccess) Cameras(_ context.Context, p Principal) []Camera {
	u, _ := p.Ref.(*fakeUser)
	if u == nil {
		return nil
	}
	var out []Camera
	for _, c := range a.cams {
		if slices.Contains(u.view, c.ID) {
			c.PTZ = c.PTZ && u.ptz[c.ID] > 0
			out = append(out, c)
		}
	}
	return out
}

func (a *fakeAccess) AuthorizePTZ(_ context.Context, p Principal, camera, _ string) (int, error) {
	u, _ := p.Ref.(*fakeUser)
	if u == nil || u.ptz[camera] <= 0 {
		a.mu.Lock()
		a.denied = append(a.denied, p.Name+"/"+camera)
		a.mu.Unlock()
		return 0, errors.New("not permitted")
	}
	return u.ptz[camera], nil
}

func (a *fakeAccess) PTZGranted(camera string, p Principal) {
	a.mu.Lock()
	a.granted = append(a.granted, p.Name+"/"+camera)
	a.mu.Unlock()
}

func (a *fakeAccess) PTZ(camera string) PTZControl {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.ptz[camera]; c != nil {
		return c
	}
	return nil
}

// ---- a real RTSP server where the stream URIs point ----

// rtspMux is a gortsplib server publishing the democam H.264 clip in
// real time on a fixed set of paths (the camera ids, and "<id>/sub"),
// standing where cordon's RTSP re-serve stands in the gateway.
type rtspMux struct {
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	media  *description.Media
	paths  []string
	stop   chan struct{}
	done   chan struct{}
}

func startRTSPMux(paths []string) (*rtspMux, error) {
	clip, err := democam.LoadClip(democam.ClipMain)
	if err != nil {
		return nil, err
	}
	m := &rtspMux{paths: paths, stop: make(chan struct{}), done: make(chan struct{})}
	m.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, SPS: clip.SPS, PPS: clip.PPS, PacketizationMode: 1}}}
	m.srv = &gortsplib.Server{Handler: m, RTSPAddress: "127.0.0.1:0"}
	if err := m.srv.Start(); err != nil {
		return nil, err
	}
	m.stream = &gortsplib.ServerStream{Server: m.srv, Desc: &description.Session{Medias: []*description.Media{m.media}}}
	if err := m.stream.Initialize(); err != nil {
		m.srv.Close()
		return nil, err
	}
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		return nil, err
	}
	go m.run(clip, enc)
	return m, nil
}

func (m *rtspMux) run(clip *democam.Clip, enc *rtph264.Encoder) {
	defer close(m.done)
	tick := time.NewTicker(time.Second / democam.FPS)
	defer tick.Stop()
	for n := 0; ; n++ {
		au := clip.AUs[n%len(clip.AUs)]
		pkts, err := enc.Encode(au.NALUs)
		if err == nil {
			for _, p := range pkts {
				p.Timestamp = uint32(n * 90000 / democam.FPS)
				_ = m.stream.WritePacketRTPWithNTP(m.media, p, time.Now())
			}
		}
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
	}
}

func (m *rtspMux) port() int { return m.srv.NetListener().Addr().(*net.TCPAddr).Port }

func (m *rtspMux) close() {
	close(m.stop)
	<-m.done
	m.stream.Close()
	m.srv.Close()
}

func (m *rtspMux) check(path string) *base.Response {
	if !slices.Contains(m.paths, strings.Trim(path, "/")) {
		return &base.Response{StatusCode: base.StatusNotFound}
	}
	return nil
}

func (m *rtspMux) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res := m.check(ctx.Path); res != nil {
		return res, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, m.stream, nil
}

func (m *rtspMux) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res := m.check(ctx.Path); res != nil {
		return res, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, m.stream, nil
}

func (m *rtspMux) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// ---- raw SOAP requests (what a VMS sends) ----

type reply struct {
	status int
	header http.Header
	body   []byte
	env    *soap.Envelope
	fault  *soap.Fault
}

// post sends a SOAP 1.2 request holding op (the Body's child, raw XML)
// with header blocks (raw XML) to the face at path.
func post(t *testing.T, url string, header, op string, mod ...func(*http.Request)) reply {
	t.Helper()
	body := `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"` +
		` xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl"` +
		` xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">` +
		`<s:Header>` + header + `</s:Header><s:Body>` + op + `</s:Body></s:Envelope>`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
	for _, m := range mod {
		m(req)
	}
	return do(t, http.DefaultClient, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: res.StatusCode, header: res.Header, body: b}
	if env, err := soap.ParseEnvelopeBytes(b, soap.Limits{}); err == nil {
		r.env = env
		r.fault = soap.FaultOf(env)
	}
	return r
}

// wsse returns a WS-Security header with a PasswordDigest token.
func wsse(t *testing.T, user, secret string, at time.Time) string {
	t.Helper()
	tok, err := soap.NewUsernameToken(user, secret, at)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write((&soap.Message{Header: []soap.Node{tok.Node()}}).Bytes())
	s := b.String()
	i, j := strings.Index(s, "<wsse:Security"), strings.Index(s, "</s:Header>")
	return s[i:j]
}

func (r reply) payload() *soap.Element {
	if r.env == nil {
		return nil
	}
	return r.env.Payload()
}

func (r reply) mustOK(t *testing.T) *soap.Element {
	t.Helper()
	if r.status != http.StatusOK || r.fault != nil || r.payload() == nil {
		t.Fatalf("status %d, fault %v, body %.600s", r.status, r.fault, r.body)
	}
	return r.payload()
}

func (f *fixture) url(path string) string { return "http://" + f.face.Addr().String() + path }
