package onvif

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/internal/soap"
	"cordon/ptz"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const camUser, camPass = "admin", "Cam-Secret-9f3a"

// fixtureCamera answers each operation with testdata/<dir>/<Op>.xml and
// records what it was asked.
type fixtureCamera struct {
	dir  string
	addr string
	srv  *http.Server

	mu   sync.Mutex
	reqs []fixtureReq
}

type fixtureReq struct {
	op, path, created string
	authOK            bool
}

func startFixture(t *testing.T, host, dir string) *fixtureCamera {
	t.Helper()
	f := &fixtureCamera{dir: dir}
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.srv = &http.Server{Handler: f}
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fixtureCamera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	env, fault := soap.ReadRequest(w, r, soap.Limits{})
	if fault != nil {
		soap.WriteFault(w, soap.SOAP12, fault)
		return
	}
	op := env.Payload().Local
	req := fixtureReq{op: op, path: r.URL.RequestURI()}
	if tok, err := soap.ParseUsernameToken(env.Header); err == nil {
		req.created = tok.Created
		want := soap.PasswordDigest(tok.Nonce, tok.Created, camPass)
		req.authOK = tok.Username == camUser && subtle.ConstantTimeCompare([]byte(want), []byte(tok.Password)) == 1
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	f.mu.Lock()
	dir := f.dir
	f.mu.Unlock()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("testdata", dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, op+".xml"))
	v := soap.SOAP12
	if f.dir == "oem11" {
		v = soap.SOAP11
	}
	if err != nil {
		soap.WriteFault(w, v, soap.ActionNotSupported())
		return
	}
	status := 200
	if strings.Contains(string(data), "Fault>") {
		status = 500
	}
	w.Header().Set("Content-Type", v.ContentType())
	w.WriteHeader(status)
	w.Write(data)
}

func (f *fixtureCamera) requests() []fixtureReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fixtureReq(nil), f.reqs...)
}

func newClient(t *testing.T, url string) *Client {
	t.Helper()
	c := &Client{CameraID: "cam-1", URL: url, Username: camUser, Password: camPass, Timeout: 2 * time.Second}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), camPass) {
		t.Fatalf("error holds the password: %v", err)
	}
}

func TestHikvisionFixtures(t *testing.T) {
	cam := startFixture(t, "127.0.0.1", "hikvision")
	c := newClient(t, "http://"+cam.addr+"/onvif/device_service")
	ctx := context.Background()
	caps, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if caps != (ptz.Capabilities{PanTilt: true, Zoom: true, Presets: true, MaxPresets: 300, Home: true, Status: true}) {
		t.Fatalf("%+v", caps)
	}
	// the camera's clock (2019) is what WS-Security times follow
	if off := c.ClockOffset(); off > -5*365*24*time.Hour {
		t.Fatalf("offset %v", off)
	}
	if err := c.ContinuousMove(ctx, ptz.Velocity{Pan: 0.5, Tilt: -0.25}, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	presets, err := c.Presets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ptz.Preset{{Token: "1", Name: "Gate north"}, {Token: "2", Name: "Yard"}, {Token: "3", Name: "3"}}
	if len(presets) != 3 || presets[0] != want[0] || presets[1] != want[1] || presets[2] != want[2] {
		t.Fatalf("%+v", presets)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Position == nil || *st.Position != (ptz.Position{Pan: 0.127778, Tilt: -0.533333, Zoom: 0.018182}) || !st.Moving {
		t.Fatalf("%+v %v", st, err)
	}
	for _, f := range []func(context.Context) error{c.Stop, c.GotoHome, func(ctx context.Context) error { return c.GotoPreset(ctx, "2") }} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.GetDeviceInformation(ctx)
	if err != nil || info.Manufacturer != "HIKVISION" || info.Model != "DS-2DE4425IW-DE" {
		t.Fatalf("%+v %v", info, err)
	}
	reqs := cam.requests()
	ops := []string{}
	for _, r := range reqs {
		ops = append(ops, r.op+" "+r.path)
		if r.op != "GetSystemDateAndTime" && (!r.authOK || !strings.HasPrefix(r.created, "2019-06-07T")) {
			t.Errorf("%s: auth %v created %q", r.op, r.authOK, r.created)
		}
	}
	wantOps := []string{
		"GetSystemDateAndTime /onvif/device_service", "GetCapabilities /onvif/device_service",
		"GetProfiles /onvif/Media", "GetNodes /onvif/PTZ", "ContinuousMove /onvif/PTZ", "GetPresets /onvif/PTZ",
		"GetStatus /onvif/PTZ", "Stop /onvif/PTZ", "GotoHomePosition /onvif/PTZ", "GotoPreset /onvif/PTZ",
		"GetDeviceInformation /onvif/device_service",
	}
	if strings.Join(ops, "\n") != strings.Join(wantOps, "\n") {
		t.Fatalf("requests:\n%s", strings.Join(ops, "\n"))
	}
}

func TestOEMSOAP11Fixtures(t *testing.T) {
	cam := startFixture(t, "127.0.0.1", "oem11")
	c := newClient(t, "http://"+cam.addr+"/onvif/device_service")
	ctx := context.Background()
	if err := c.ContinuousMove(ctx, ptz.Velocity{Zoom: 1}, time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Position != nil || !st.Moving {
		t.Fatalf("%+v %v", st, err)
	}
	var paths []string
	for _, r := range cam.requests() {
		paths = append(paths, r.op+" "+r.path)
	}
	got := strings.Join(paths, "\n")
	// GetCapabilities faulted: GetServices found media and PTZ (path and
	// query kept, host 10.1.1.108 replaced); the first profile has no PTZ
	for _, want := range []string{"GetServices /onvif/device_service", "GetProfiles /onvif/media_service", "ContinuousMove /onvif/ptz_service?channel=1"} {
		if !strings.Contains(got, want) {
			t.Fatalf("no %q in\n%s", want, got)
		}
	}
	d, _ := c.discover(ctx)
	if d.profile != "MediaProfile00000" {
		t.Fatalf("profile %q", d.profile)
	}
}

func TestContinuousOnlyFixtures(t *testing.T) {
	cam := startFixture(t, "127.0.0.1", "ptzonly")
	c := newClient(t, "http://"+cam.addr+"/onvif/device_service")
	ctx := context.Background()
	caps, err := c.Capabilities(ctx)
	if err != nil || caps != (ptz.Capabilities{PanTilt: true, Status: true}) {
		t.Fatalf("%+v %v", caps, err)
	}
	if err := c.ContinuousMove(ctx, ptz.Velocity{Pan: 1, Zoom: 1}, time.Second); err != nil {
		t.Fatal(err)
	}
	_, err = c.Presets(ctx)
	var f *soap.Fault
	if !errors.As(err, &f) || !f.Has(soap.NsError, "ActionNotSupported") || !strings.Contains(err.Error(), "onvif camera cam-1: GetPresets:") {
		t.Fatalf("%v", err)
	}
	// NaN and 1e999 positions are dropped, not passed on
	st, err := c.Status(ctx)
	if err != nil || st.Position != nil || st.Moving {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestUnauthorizedFaultIsNamed(t *testing.T) {
	cam := startFixture(t, "127.0.0.1", "hikvision")
	// NotAuthorized.xml is served for an operation named NotAuthorized:
	// point GetDeviceInformation at it through a renamed copy.
	dir := t.TempDir()
	data, _ := os.ReadFile("testdata/hikvision/NotAuthorized.xml")
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	os.WriteFile(filepath.Join(dir, "x", "GetDeviceInformation.xml"), data, 0o644)
	clock, _ := os.ReadFile("testdata/hikvision/GetSystemDateAndTime.xml")
	os.WriteFile(filepath.Join(dir, "x", "GetSystemDateAndTime.xml"), clock, 0o644)
	cam.mu.Lock()
	cam.dir = filepath.Join(dir, "x")
	cam.mu.Unlock()
	c := newClient(t, "http://"+cam.addr+"/onvif/device_service")
	_, err := c.GetDeviceInformation(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("%v", err)
	}
	noSecret(t, err)
	// it tried to learn the camera's clock once, then gave up
	n := 0
	for _, r := range cam.requests() {
		if r.op == "GetDeviceInformation" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d attempts", n)
	}
}
