package e2e

// Helpers of the access-control, reload and audit end-to-end tests
// (doors_test.go, reload_test.go, audit_test.go). Names carry a "dr"
// prefix so they never collide with other e2e files.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
	"gopkg.in/yaml.v3"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
	"cordon/internal/whepclient"
)

// drCam starts a clean democam on host (one of 127.0.0.61..90).
func drCam(t *testing.T, id, host string) *democam.Camera {
	t.Helper()
	c := &democam.Camera{ID: id, Listen: host + ":0", Path: "Streaming/Channels/101", Username: "cam", Password: "cam-" + id + "-secret", DisableUDP: true}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func drCamCfg(c *democam.Camera) config.Camera {
	return config.Camera{ID: c.ID, Name: "Camera " + c.ID, URL: c.URL(), Username: c.Username, Password: c.Password, Transport: "tcp"}
}

// drGateway is a running gateway that the test may stop early (Stop is
// idempotent and also runs at cleanup).
type drGateway struct{ *e2eutil.Gateway }

// drStart runs a gateway like e2eutil.Start, optionally with a config file
// to reload from (configPath != "": written from cfg first).
func drStart(t *testing.T, cfg *config.Config, configPath string) *drGateway {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("invalid test config: %v", errs)
	}
	if configPath == "" {
		return &drGateway{e2eutil.Start(t, cfg)}
	}
	drWriteConfig(t, configPath, cfg)
	loaded, err := config.LoadAndValidate(configPath)
	if err != nil {
		t.Fatalf("the config written to %s does not load: %v", configPath, err)
	}
	return &drGateway{e2eutil.Start(t, loaded, e2eutil.ConfigFile(configPath))}
}

func drWriteConfig(t *testing.T, path string, cfg *config.Config) {
	t.Helper()
	drWriteFile(t, path, drConfigBytes(t, cfg))
}

// drConfigBytes renders cfg as a config file.
func drConfigBytes(t *testing.T, cfg *config.Config) []byte {
	t.Helper()
	b, err := yaml.Marshal(drYAMLValue(reflect.ValueOf(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func drWriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func drYAMLValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return drYAMLValue(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			m[tag] = drYAMLValue(v.Field(i))
		}
		return m
	case reflect.Slice:
		out := make([]any, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			out = append(out, drYAMLValue(v.Index(i)))
		}
		return out
	default:
		return v.Interface()
	}
}

// drClient returns an HTTP client whose connections leave from src (a
// loopback address), so that per-address lockout and rate limits can be
// exercised without one test's failures locking out another's.
func drClient(src string) *http.Client { return testtool.HTTPClientFrom(src, nil, 60*time.Second) }

// drResp is an HTTP answer.
type drResp struct {
	Status int
	Header http.Header
	Body   string
}

func (r drResp) String() string { return fmt.Sprintf("%d %q", r.Status, r.Body) }

// drDo sends a request from src with the given headers.
func drDo(t *testing.T, src, method, url string, hdr map[string]string, body string) drResp {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := drClient(src).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return drResp{resp.StatusCode, resp.Header, string(b)}
}

// drLogin posts a login from src.
func drLogin(t *testing.T, src, base, user, password string) drResp {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return drDo(t, src, http.MethodPost, base+"/api/v1/login", map[string]string{"Content-Type": "application/json"}, string(b))
}

// drJSONError checks the CONTRACT's error shape: application/json with
// exactly {"error": "<non-empty sentence>"}.
func drJSONError(t *testing.T, what string, r drResp) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json (body %q)", what, ct, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Errorf("%s: body is not JSON: %q", what, r.Body)
		return
	}
	s, ok := m["error"].(string)
	if !ok || strings.TrimSpace(s) == "" || len(m) != 1 {
		t.Errorf(`%s: body %q, want exactly {"error": "<sentence>"}`, what, r.Body)
	}
}

// drWant401 checks a refused credential: 401, WWW-Authenticate: Bearer,
// JSON error.
func drWant401(t *testing.T, what string, r drResp) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Errorf("%s: %s, want 401", what, r)
		return
	}
	if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
		t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", what, wa)
	}
	drJSONError(t, what, r)
}

// drOffer returns a browser-like recvonly WHEP offer (video and audio).
func drOffer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sdp, err := whepclient.Offer(ctx, whepclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return sdp
}

// drMintToken signs in name at the clock now through an auth.Service on
// stateDir, exactly as the gateway would (same signing key file), and
// returns the session token. Used before the gateway starts, to present
// tokens whose lifetime has honestly passed (or, with another state dir,
// tokens signed by a foreign key).
func drMintToken(t *testing.T, stateDir string, u config.User, password string, now time.Time, ttl time.Duration) string {
	t.Helper()
	dir, err := auth.NewDirectory([]auth.User{{Name: u.Name, PasswordHash: u.PasswordHash, Cameras: u.Cameras, Admin: u.Admin}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	al := &audit.Log{Path: filepath.Join(t.TempDir(), "mint-audit.log"), Logger: slog.New(slog.DiscardHandler)}
	if err := al.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	s := &auth.Service{StateDir: stateDir, TokenTTL: ttl, Directory: dir, Audit: al, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, _, err := s.Login(context.Background(), u.Name, password, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// drTamper rewrites a token's claims (sub = newSub) keeping its signature.
func drTamper(t *testing.T, tok, newSub string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = newSub
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// drRTSP sends one raw RTSP request (DESCRIBE by default) from src with
// optional Basic credentials and returns status and headers.
func drRTSP(t *testing.T, rtspAddr, src, method, camera, user, pass string) (int, http.Header) {
	t.Helper()
	c := testtool.DialRTSP(t, rtspAddr, src)
	defer c.Close()
	authz := ""
	if user != "" || pass != "" {
		authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	code, hdr := c.Do(method, camera, authz)
	if code == 0 {
		t.Fatalf("RTSP %s %s: the server closed the connection", method, camera)
	}
	return code, hdr
}

// drPlayer is an RTSP client (gortsplib, TCP) playing a camera.
type drPlayer struct {
	c       *gortsplib.Client
	pkts    atomic.Int64
	ended   chan struct{}
	endedAt atomic.Pointer[time.Time]
	err     error
}

// drRTSPPlay plays rtsp://user:pass@addr/camera over TCP; it fails the
// test when the server refuses.
func drRTSPPlay(t *testing.T, rtspAddr, camera, user, pass string) *drPlayer {
	t.Helper()
	u, err := base.ParseURL("rtsp://" + rtspAddr + "/" + camera)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	proto := gortsplib.ProtocolTCP
	p := &drPlayer{ended: make(chan struct{})}
	p.c = &gortsplib.Client{Scheme: "rtsp", Host: rtspAddr, Protocol: &proto, ReadTimeout: 20 * time.Second}
	if err := p.c.Start(); err != nil {
		t.Fatal(err)
	}
	desc, _, err := p.c.Describe(u)
	if err != nil {
		p.c.Close()
		t.Fatalf("RTSP DESCRIBE %s as %s: %v", camera, user, err)
	}
	if err := p.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		p.c.Close()
		t.Fatalf("RTSP SETUP %s: %v", camera, err)
	}
	p.c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, _ *rtp.Packet) { p.pkts.Add(1) })
	if _, err := p.c.Play(nil); err != nil {
		p.c.Close()
		t.Fatalf("RTSP PLAY %s: %v", camera, err)
	}
	go func() {
		p.err = p.c.Wait()
		now := time.Now()
		p.endedAt.Store(&now)
		close(p.ended)
	}()
	t.Cleanup(func() {
		p.c.Close()
		<-p.ended
	})
	return p
}

// waitPackets waits until the player has received more than n packets.
func (p *drPlayer) waitPackets(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	e2eutil.WaitFor(t, within, "RTSP packets", func() bool { return p.pkts.Load() > n })
}

// auWatch drains a WHEP viewer's access units and remembers when the last
// one arrived.
type auWatch struct {
	n    atomic.Int64
	last atomic.Pointer[time.Time]
}

// drViewer opens a WHEP session on camera at base with tok, failing the
// test when it is refused.
func drViewer(t *testing.T, base, camera, tok string) *e2eutil.Viewer {
	t.Helper()
	v, st, body := e2eutil.Dial(t, base, camera, tok, e2eutil.ViewerOptions{})
	if v == nil {
		t.Fatalf("POST /whep/%s: %d %s", camera, st, body)
	}
	return v
}

func drWatch(t *testing.T, v *e2eutil.Viewer) *auWatch {
	w := &auWatch{}
	drainAUs(t, v, func(at time.Time) {
		w.last.Store(&at)
		w.n.Add(1)
	})
	return w
}

// drainAUs hands the arrival time of each of v's access units to got,
// from a goroutine that ends with the test.
func drainAUs(t testing.TB, v *e2eutil.Viewer, got func(at time.Time)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case au := <-v.AUs:
				got(au.At)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFlowing waits until at least n more AUs arrived.
func (w *auWatch) waitFlowing(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	start := w.n.Load()
	e2eutil.WaitFor(t, within, "WHEP media", func() bool { return w.n.Load() >= start+n })
}

// stoppedAt waits until no AU has arrived for quiet and returns the time
// of the last one; it fails when media keeps flowing past within.
func (w *auWatch) stoppedAt(t *testing.T, quiet, within time.Duration) time.Time {
	t.Helper()
	var last time.Time
	e2eutil.WaitFor(t, within, "WHEP media to stop", func() bool {
		l := w.last.Load()
		if l == nil {
			return true
		}
		last = *l
		return time.Since(last) >= quiet
	})
	return last
}

// endedWithin checks that the media stopped less than d after from: it
// waits for a quiet second (the camera sends 25 frames a second), then
// compares the last access unit's arrival with from+d.
func (w *auWatch) endedWithin(t *testing.T, from time.Time, d time.Duration) {
	t.Helper()
	last := w.stoppedAt(t, time.Second, d+10*time.Second)
	if last.Sub(from) > d {
		t.Fatalf("media flowed %v after the re-check noticed, want under %v", last.Sub(from), d)
	}
	t.Logf("last WHEP access unit %v after the re-check noticed", last.Sub(from).Round(time.Millisecond))
}

// drLine is one parsed audit line.
type drLine struct {
	N      int // 1-based line number
	Raw    string
	Fields map[string]any
}

func (l drLine) s(k string) string { v, _ := l.Fields[k].(string); return v }

// drAudit reads the audit file's complete lines.
func drAudit(t *testing.T, path string) []drLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []drLine
	for i, raw := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasSuffix(raw, "\n") {
			break // a line being written
		}
		raw = strings.TrimSuffix(raw, "\n")
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("audit line %d is not JSON: %q", i+1, raw)
		}
		out = append(out, drLine{N: i + 1, Raw: raw, Fields: m})
	}
	return out
}

// drMatch selects audit lines: every non-empty field must be equal;
// Detail matches as a prefix.
type drMatch struct {
	Event, Actor, Camera, Protocol, DetailPrefix string
}

func (m drMatch) ok(l drLine) bool {
	return l.s("event") == m.Event &&
		(m.Actor == "" || l.s("actor") == m.Actor) &&
		(m.Camera == "" || l.s("camera") == m.Camera) &&
		(m.Protocol == "" || l.s("protocol") == m.Protocol) &&
		strings.HasPrefix(l.s("detail"), m.DetailPrefix)
}

// drWaitAudit waits for a line matching m after line `after` and returns it.
func drWaitAudit(t *testing.T, path string, after int, m drMatch, within time.Duration) drLine {
	t.Helper()
	var found drLine
	e2eutil.WaitFor(t, within, fmt.Sprintf("audit %+v after line %d", m, after), func() bool {
		for _, l := range drAudit(t, path) {
			if l.N > after && m.ok(l) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

// drAuditLen returns the number of complete lines.
func drAuditLen(t *testing.T, path string) int { return len(drAudit(t, path)) }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
