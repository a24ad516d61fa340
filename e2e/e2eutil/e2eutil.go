// Package e2eutil holds the fixtures cordon's end-to-end tests share: a
// gateway running from a real config on loopback, sign-in, and a WHEP
// viewer that behaves like a browser (internal/whepclient) with test
// helpers.
package e2eutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/auth"
	"cordon/config"
	"cordon/gateway"
	"cordon/internal/testtool"
	"cordon/internal/whepclient"
)

// Account is a principal of the test gateway with its clear-text secret.
type Account struct {
	Name     string
	Password string
	Cameras  []string
	Admin    bool
	APIKey   bool // an API key instead of a user
}

var (
	hashMu    sync.Mutex
	hashCache = map[string]string{}
)

// Hash returns the argon2id hash of a secret (cached: tests reuse secrets).
func Hash(t testing.TB, secret string) string {
	t.Helper()
	hashMu.Lock()
	defer hashMu.Unlock()
	if h, ok := hashCache[secret]; ok {
		return h
	}
	h, err := auth.HashSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	hashCache[secret] = h
	return h
}

// Config returns a valid config on ephemeral loopback ports with the given
// accounts and cameras (URLs with credentials in Username/Password).
func Config(t testing.TB, accounts []Account, cams []config.Camera) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTSP.Listen = "127.0.0.1:0"
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = "", "" // tests that need UDP pick free ports
	cfg.WebRTC.UDPListen = "127.0.0.1:0"
	cfg.WebRTC.TCPListen = "127.0.0.1:0"
	cfg.WebRTC.HostIPs = []string{"127.0.0.1"}
	// the tests' WHEP viewers run on this host, on loopback: named, since
	// the candidate policy refuses loopback and the gateway's addresses
	cfg.WebRTC.ViewerNetworks = []string{"127.0.0.1/32"}
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Audit.Path = filepath.Join(dir, "audit.log")
	for _, a := range accounts {
		if a.APIKey {
			cfg.Auth.APIKeys = append(cfg.Auth.APIKeys, config.APIKey{Name: a.Name, KeyHash: Hash(t, a.Password), Cameras: a.Cameras})
		} else {
			cfg.Auth.Users = append(cfg.Auth.Users, config.User{Name: a.Name, PasswordHash: Hash(t, a.Password), Cameras: a.Cameras, Admin: a.Admin})
		}
	}
	cfg.Cameras = cams
	return cfg
}

// Gateway is a running gateway for a test.
type Gateway struct {
	*gateway.Gateway
	Base   string // http://127.0.0.1:port
	Config *config.Config
	Logs   *SyncBuffer // everything the gateway logged (JSON lines)

	stopOnce sync.Once
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer = testtool.SyncBuffer

// Option adjusts the gateway Start builds.
type Option func(*gateway.Gateway)

// ConfigFile makes the gateway reload from path (SIGHUP path and file
// watcher); path must hold cfg.
func ConfigFile(path string) Option { return func(g *gateway.Gateway) { g.ConfigPath = path } }

// Linger sets how long an on-demand camera keeps pulling after its last
// reader (the product's 10 s is tested in package camera on a fake clock).
func Linger(d time.Duration) Option { return func(g *gateway.Gateway) { g.CameraLinger = d } }

// Start validates cfg and runs a gateway until the test ends (or Stop).
// Logs go through the same redacting handler the command uses.
func Start(t testing.TB, cfg *config.Config, opts ...Option) *Gateway {
	t.Helper()
	eg, err := TryStart(t, cfg, opts...)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	return eg
}

// TryStart is Start returning the gateway's start error instead of
// failing the test (e.g. to retry a listen port picked in advance, when a
// config value must name the port before the gateway starts).
func TryStart(t testing.TB, cfg *config.Config, opts ...Option) (*Gateway, error) {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("invalid test config: %v", errs)
	}
	logs := &SyncBuffer{}
	red := config.NewRedactor(cfg)
	logger := slog.New(config.NewRedactingHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}), red))
	g := &gateway.Gateway{Config: cfg, Logger: logger, Redactor: red, Stdout: logs}
	for _, o := range opts {
		o(g)
	}
	if err := g.Initialize(); err != nil {
		return nil, err
	}
	eg := &Gateway{Gateway: g, Base: "http://" + g.HTTPAddr(), Config: cfg, Logs: logs}
	t.Cleanup(eg.Stop)
	return eg, nil
}

// Stop closes the gateway (idempotent; also runs at cleanup).
func (g *Gateway) Stop() { g.stopOnce.Do(g.Gateway.Close) }

// Login signs in and returns the session token.
func Login(t testing.TB, base, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post(base+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, b)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		t.Fatalf("login answer %s: %v", b, err)
	}
	return out.Token
}

// Do sends a request with an optional bearer token and returns status and body.
func Do(t testing.TB, method, url, token, ctype, body string) (int, http.Header, string) {
	t.Helper()
	return DoWith(t, http.DefaultClient, method, url, token, ctype, body)
}

// DoWith is Do with the client hc (e.g. one that leaves from its own
// address, testtool.HTTPClientFrom).
func DoWith(t testing.TB, hc *http.Client, method, url, token, ctype, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// AU is one video access unit a viewer received.
type AU = whepclient.AU

// Viewer is a browser-like WHEP client (internal/whepclient) with test
// helpers.
type Viewer struct {
	*whepclient.Client
	AUs <-chan AU
	t   testing.TB
}

// ViewerOptions tune Dial.
type ViewerOptions struct {
	TCPOnly bool
	NoRead  bool // never drain the tracks: a stalled viewer
	H265    bool // offer H.265 (like Safari 18+ or Chrome with hardware support)
}

// Dial opens a WHEP session like a browser. It returns the viewer (nil if
// the POST was refused) and the POST's status and body.
func Dial(t testing.TB, base, camera, token string, o ViewerOptions) (*Viewer, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, whepclient.Options{URL: base + "/whep/" + camera, Token: token, TCPOnly: o.TCPOnly, NoRead: o.NoRead, H265: o.H265})
	var se *whepclient.StatusError
	if errors.As(err, &se) {
		return nil, se.Status, se.Body
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Viewer{Client: c, AUs: c.AUs(), t: t}, http.StatusCreated, c.Answer
}

// Continuity returns sequence gaps and backward timestamp steps seen.
func (v *Viewer) Continuity() (seqGaps, tsBackwards int) {
	st := v.Stats()
	return st.SeqGaps, st.TSBackwards
}

// Codecs returns the negotiated video and audio MIME types seen.
func (v *Viewer) Codecs() (video, audio string) {
	st := v.Stats()
	return st.VideoCodec, st.AudioCodec
}

// AudioPackets returns how many audio packets arrived.
func (v *Viewer) AudioPackets() int { return int(v.Stats().AudioPackets) }

// NextAU waits for the next access unit.
func (v *Viewer) NextAU(t testing.TB, within time.Duration) AU {
	t.Helper()
	return testtool.Recv(t, v.AUs, within, "a video access unit")
}

// Delete ends the session with WHEP DELETE and returns the status.
func (v *Viewer) Delete(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, err := v.Client.Delete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// WaitFor is testtool.WaitFor (kept for the e2e tests' call sites).
var WaitFor = testtool.WaitFor

// AnnexB joins access units into an Annex-B byte stream (for ffmpeg).
func AnnexB(aus []AU) []byte {
	var b bytes.Buffer
	for _, au := range aus {
		for _, n := range au.NALUs {
			b.Write([]byte{0, 0, 0, 1})
			b.Write(n)
		}
	}
	return b.Bytes()
}

// H264Types lists the NAL unit types of an H.264 access unit.
func H264Types(au [][]byte) []int {
	out := make([]int, len(au))
	for i, n := range au {
		if len(n) > 0 {
			out[i] = int(n[0] & 0x1f)
		}
	}
	return out
}
