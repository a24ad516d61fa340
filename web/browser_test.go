package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/internal/testtool"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// recorded is one request seen by the fake gateway.
type recorded struct {
	Method, URL, Auth, ContentType, Cookie, Body string
}

// fakeGateway is the smallest backend the viewer needs: the contract's
// login/logout/cameras/egress endpoints and WHEP answers per camera.
type fakeGateway struct {
	t      *testing.T
	mu     sync.Mutex
	reqs   []recorded
	tokens map[string]bool // token -> valid
	pcs    map[string]*webrtc.PeerConnection
	api    *webrtc.API
	aus    [][]byte // H.264 access units (Annex B) the "lobby" camera loops; nil = silent
	done   chan struct{}
	wg     sync.WaitGroup
}

func newFakeGateway(t *testing.T) *fakeGateway {
	se := webrtc.SettingEngine{}
	// Loopback only: no other interface, no mDNS.
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return &fakeGateway{
		t:      t,
		tokens: map[string]bool{},
		pcs:    map[string]*webrtc.PeerConnection{},
		done:   make(chan struct{}),
		api:    webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)),
	}
}

func (g *fakeGateway) record(r *http.Request, body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reqs = append(g.reqs, recorded{r.Method, r.URL.String(), r.Header.Get("Authorization"),
		r.Header.Get("Content-Type"), r.Header.Get("Cookie"), body})
}

func (g *fakeGateway) requests() []recorded {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recorded(nil), g.reqs...)
}

// count counts requests with method to url ("" = any URL).
func (g *fakeGateway) count(method, url string) int {
	n := 0
	for _, r := range g.requests() {
		if r.Method == method && (r.URL == url || url == "") {
			n++
		}
	}
	return n
}

// dropSessions ends every WHEP session from the gateway's side.
func (g *fakeGateway) dropSessions() {
	g.mu.Lock()
	pcs := g.pcs
	g.pcs = map[string]*webrtc.PeerConnection{}
	g.mu.Unlock()
	for _, pc := range pcs {
		_ = pc.Close()
	}
}

func (g *fakeGateway) revokeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.tokens {
		g.tokens[k] = false
	}
}

func (g *fakeGateway) close() {
	close(g.done)
	g.mu.Lock()
	pcs := g.pcs
	g.pcs = nil
	g.mu.Unlock()
	for _, pc := range pcs {
		_ = pc.Close()
	}
	g.wg.Wait()
}

// loadClip encodes a short H.264 test pattern with ffmpeg (skipped when
// ffmpeg is missing locally, required under CI) and splits it into access
// units for the fake "lobby" camera.
func loadClip(t *testing.T) [][]byte {
	t.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ffmpeg is required under CI=true: %v", err)
		}
		t.Log("ffmpeg missing: the playing-video part of the test is skipped")
		return nil
	}
	out := filepath.Join(t.TempDir(), "clip.h264")
	cmd := exec.Command(ff, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "25", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	var cur []byte
	for {
		nal, err := r.NextNAL()
		if err != nil {
			break
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
			aus = append(aus, cur)
			cur = nil
		}
	}
	if len(aus) < 25 {
		t.Fatalf("clip has %d access units", len(aus))
	}
	return aus
}

// play loops the clip on track at 25 fps once pc is connected, until pc
// closes or the gateway does.
func (g *fakeGateway) play(pc *webrtc.PeerConnection, track *webrtc.TrackLocalStaticSample) {
	connected := make(chan struct{})
	ended := make(chan struct{})
	var once, onceEnd sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed:
			onceEnd.Do(func() { close(ended) })
		}
	})
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case <-connected:
		case <-ended:
			return
		case <-g.done:
			return
		}
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-tick.C:
			case <-ended:
				return
			case <-g.done:
				return
			}
			if err := track.WriteSample(media.Sample{Data: g.aus[i%len(g.aus)], Duration: 40 * time.Millisecond}); err != nil {
				return
			}
		}
	}()
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (g *fakeGateway) authed(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	valid := ok && g.tokens[tok]
	g.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", "Bearer")
		jsonError(w, http.StatusUnauthorized, "sign in first")
		return "", false
	}
	return tok, true
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	g.record(r, string(body))
	p := r.URL.Path
	switch {
	case p == "/api/v1/login" && r.Method == http.MethodPost:
		var c struct{ Username, Password string }
		if json.Unmarshal(body, &c) != nil {
			jsonError(w, http.StatusBadRequest, "bad request")
			return
		}
		switch {
		case c.Username == "locked":
			w.Header().Set("Retry-After", "7")
			jsonError(w, http.StatusTooManyRequests, "too many failed sign-ins")
		case c.Username == "demo" && c.Password == "demo":
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			tok := "tok-" + hex.EncodeToString(b)
			g.mu.Lock()
			g.tokens[tok] = true
			g.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"token": tok,
				"expires_at": time.Now().Add(8 * time.Hour).UTC().Format(time.RFC3339)})
		default:
			jsonError(w, http.StatusUnauthorized, "invalid username or password")
		}
	case p == "/api/v1/logout" && r.Method == http.MethodPost:
		tok, ok := g.authed(w, r)
		if !ok {
			return
		}
		g.mu.Lock()
		g.tokens[tok] = false
		g.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case p == "/api/v1/cameras" && r.Method == http.MethodGet:
		if _, ok := g.authed(w, r); !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[
 {"id":"gate-north","name":"Gate north","online":true,"video_codec":"H264","audio_codec":"PCMA","viewers":2},
 {"id":"yard-east","name":"Yard <b>east</b><img src=x>","online":true,"video_codec":"H265","audio_codec":"","viewers":0},
 {"id":"lobby","name":"Lobby","online":true,"video_codec":"H264","viewers":1}]`)
	case p == "/api/v1/egress" && r.Method == http.MethodGet:
		if _, ok := g.authed(w, r); !ok {
			return
		}
		last := time.Now().Add(-2*time.Minute - 10*time.Second).UTC().Format(time.RFC3339)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `[{"camera":"gate-north","queries":312,"last_seen":%q,
 "vendors":[{"vendor":"hikvision","name":"Hik-Connect","count":312,"last_seen":%q}]}]`, last, last)
	case strings.HasPrefix(p, "/whep/"):
		if _, ok := g.authed(w, r); !ok {
			return
		}
		g.whep(w, r, strings.TrimPrefix(p, "/whep/"), string(body))
	default:
		jsonError(w, http.StatusNotFound, "not found")
	}
}

func (g *fakeGateway) whep(w http.ResponseWriter, r *http.Request, rest, offer string) {
	cam, session, _ := strings.Cut(rest, "/")
	if r.Method == http.MethodDelete && session != "" {
		g.mu.Lock()
		pc := g.pcs[session]
		delete(g.pcs, session)
		g.mu.Unlock()
		if pc == nil {
			jsonError(w, http.StatusNotFound, "no such session")
			return
		}
		_ = pc.Close()
		w.WriteHeader(http.StatusOK)
		return
	}
	if r.Method != http.MethodPost || session != "" {
		jsonError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	switch cam {
	case "gate-north":
		w.Header().Set("Retry-After", "30")
		jsonError(w, http.StatusServiceUnavailable, "camera unreachable")
	case "yard-east":
		jsonError(w, http.StatusForbidden, "camera not permitted")
	case "lobby":
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		answer, err := g.answer(id, offer)
		if err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.Header().Set("Location", "/whep/lobby/"+id)
		w.Header().Set("Content-Type", "application/sdp")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, answer)
	default:
		jsonError(w, http.StatusNotFound, "unknown camera")
	}
}

// answer makes a real pion answer; once connected, it plays the clip.
func (g *fakeGateway) answer(id, offer string) (string, error) {
	pc, err := g.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	if g.pcs == nil { // closing
		g.mu.Unlock()
		_ = pc.Close()
		return "", fmt.Errorf("shutting down")
	}
	g.pcs[id] = pc
	g.mu.Unlock()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "lobby")
	if err != nil {
		return "", err
	}
	if _, err := pc.AddTrack(track); err != nil {
		return "", err
	}
	if g.aus != nil {
		g.play(pc, track)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	return pc.LocalDescription().SDP, nil
}

func waitJS(ctx context.Context, t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	var ok bool
	if err := chromedp.Run(ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(timeout),
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		var dump string
		_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ''`, &dump))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, dump)
	}
}

func evalString(ctx context.Context, t *testing.T, expr string) string {
	t.Helper()
	var s string
	if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &s)); err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

func signIn(ctx context.Context, t *testing.T, user, pass string) {
	t.Helper()
	waitJS(ctx, t, "sign-in form", `!document.getElementById('signin').hidden && !document.getElementById('signin-submit').disabled`, 5*time.Second)
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#username", user, chromedp.ByQuery),
		chromedp.SetValue("#password", pass, chromedp.ByQuery),
		chromedp.Click("#signin-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
}

// startViewer runs the fake gateway (serving Handler at "/") and opens the
// page in a fresh headless chromium.
func startViewer(t *testing.T, clip bool) (*fakeGateway, context.Context, *testtool.PageProblems) {
	t.Helper()
	g := newFakeGateway(t)
	if clip {
		g.aus = loadClip(t)
	}
	t.Cleanup(g.close)
	mux := http.NewServeMux()
	mux.Handle("/api/", g)
	mux.Handle("/whep/", SecurityHeaders(g))
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on loopback: %s", srv.URL)
	}

	ctx := testtool.Browser(t, 60*time.Second)
	problems := testtool.WatchPage(ctx)
	if err := chromedp.Run(ctx,
		testtool.AddCSPProbe(""),
		chromedp.Navigate(srv.URL+"/"),
	); err != nil {
		t.Fatal(err)
	}
	return g, ctx, problems
}

func tileState(cam, state string) string {
	return fmt.Sprintf(`document.querySelector('[data-camera=%q]') && document.querySelector('[data-camera=%q]').dataset.state === %q`, cam, cam, state)
}

// TestBrowserReconnects: a playing tile whose session the gateway ends goes
// "reconnecting" and plays again on a new WHEP session, by itself.
func TestBrowserReconnects(t *testing.T) {
	t.Parallel()
	start := time.Now()
	g, ctx, problems := startViewer(t, true)
	if g.aus == nil {
		t.Skip("no clip (ffmpeg missing)")
	}
	signIn(ctx, t, "demo", "demo")
	waitJS(ctx, t, "lobby playing", tileState("lobby", "playing"), 10*time.Second)
	posts := g.count(http.MethodPost, "/whep/lobby")
	g.dropSessions()
	t0 := time.Now()
	waitJS(ctx, t, "lobby reconnecting", tileState("lobby", "reconnecting"), 10*time.Second)
	t.Logf("reconnecting after %s", time.Since(t0).Round(time.Millisecond))
	waitJS(ctx, t, "lobby playing again", tileState("lobby", "playing"), 10*time.Second)
	t.Logf("playing again after %s", time.Since(t0).Round(time.Millisecond))
	if n := g.count(http.MethodPost, "/whep/lobby"); n != posts+1 {
		t.Errorf("%d new WHEP POSTs for lobby after the drop, want 1", n-posts)
	}
	// The other tiles kept their states: no retry storm on 403.
	if n := g.count(http.MethodPost, "/whep/yard-east"); n != 1 {
		t.Errorf("%d WHEP POSTs for the forbidden camera, want 1", n)
	}
	testtool.CheckPage(t, ctx, problems)

	// Leaving the page ends the live session (keepalive DELETE on pagehide).
	dels := g.count(http.MethodDelete, "")
	if err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, 5*time.Second, "DELETE on pagehide", func() bool { return g.count(http.MethodDelete, "") > dels })
	testtool.WaitFor(t, 2*time.Second, "no live WHEP session after leaving the page", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.pcs) == 0
	})
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}

// TestBrowserViewer: sign-in errors, tiles and their states, escaping, the
// admin egress line, playing video and the test hook, 401 sign-out, the
// sign-out button (logout + DELETE), no token in URLs, a clean CSP.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestBrowserViewer(t *testing.T) {
	t.Parallel()
	start := time.Now()
	g, ctx, problems := startViewer(t, true)

	// Clock ticks, styles applied (style.css loaded under the CSP).
	waitJS(ctx, t, "clock", `/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(document.getElementById('clock').textContent)`, 3*time.Second)
	if bg := evalString(ctx, t, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(11, 15, 20)" {
		t.Errorf("body background %q: style.css not applied", bg)
	}

	// Wrong password.
	signIn(ctx, t, "demo", "wrong")
	waitJS(ctx, t, "401 error", `document.getElementById('signin-error').textContent === 'invalid username or password' && !document.getElementById('signin-error').hidden`, 5*time.Second)

	// Locked out: Retry-After shown.
	signIn(ctx, t, "locked", "x")
	waitJS(ctx, t, "429 error", `/Try again in [67] s/.test(document.getElementById('signin-error').textContent)`, 5*time.Second)
	waitJS(ctx, t, "submit disabled during lockout", `document.getElementById('signin-submit').disabled`, time.Second)
	// Lift the lockout without waiting 7 s (the countdown is not under test).
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('signin-submit').disabled = false`, nil)); err != nil {
		t.Fatal(err)
	}

	// Sign in.
	signIn(ctx, t, "demo", "demo")
	waitJS(ctx, t, "viewer", `!document.getElementById('viewer').hidden && document.getElementById('signin').hidden`, 5*time.Second)
	waitJS(ctx, t, "three tiles", `document.querySelectorAll('article.tile[data-camera]').length === 3`, 5*time.Second)
	waitJS(ctx, t, "gate-north offline", `document.querySelector('[data-camera="gate-north"]').dataset.state === 'offline'`, 5*time.Second)
	waitJS(ctx, t, "yard-east forbidden", `document.querySelector('[data-camera="yard-east"]').dataset.state === 'forbidden'`, 5*time.Second)

	tileText := func(cam, sel string) string {
		return evalString(ctx, t, fmt.Sprintf(`document.querySelector('[data-camera=%q] %s').textContent`, cam, sel))
	}
	checks := []struct{ cam, sel, want string }{
		{"gate-north", ".tile-name", "Gate north"},
		{"gate-north", ".tile-badge", "camera offline"},
		{"gate-north", ".tile-id", "gate-north"},
		{"gate-north", ".tile-codec", "H264 · PCMA"},
		{"gate-north", ".tile-viewers", "2 viewers"},
		{"yard-east", ".tile-name", "Yard <b>east</b><img src=x>"},
		{"yard-east", ".tile-badge", "not permitted"},
		{"lobby", ".tile-name", "Lobby"},
	}
	for _, c := range checks {
		if got := tileText(c.cam, c.sel); got != c.want {
			t.Errorf("%s %s = %q, want %q", c.cam, c.sel, got, c.want)
		}
	}
	var markup int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('#grid b, #grid img').length`, &markup)); err != nil {
		t.Fatal(err)
	}
	if markup != 0 {
		t.Errorf("camera name was parsed as HTML: %d elements", markup)
	}
	for _, cam := range []string{"gate-north", "yard-east", "lobby"} {
		var n int
		if err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll('[data-camera=%q] video.cordon-video').length`, cam), &n)); err != nil || n != 1 {
			t.Errorf("%s: %d video.cordon-video elements (%v)", cam, n, err)
		}
	}

	// Admin egress line.
	waitJS(ctx, t, "egress line", `!document.querySelector('[data-camera="gate-north"] .tile-egress').hidden`, 5*time.Second)
	if got, want := tileText("gate-north", ".tile-egress"), "tries to reach: Hik-Connect (312 tries, last 2 min ago)"; got != want {
		t.Errorf("egress line %q, want %q", got, want)
	}
	if evalString(ctx, t, `String(document.getElementById('egress-panel').hidden)`) != "false" {
		t.Error("admin egress panel hidden")
	}

	// Defensive parsing of the egress report (its shape is the gateway's).
	var egress []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`import('/egress.js').then((m) => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const ts = '2026-01-01T11:57:30Z';
  const d = (body, cam) => m.describeEgress(m.parseEgress(body).get(cam), now);
  return [
    d([{camera: 'a', queries: 3, vendors: [{vendor: 'dahua', name: 'Easy4IP', count: 1, last_seen: ts},
                                           {vendor: 'hikvision', name: 'Hik-Connect', count: 2}]}], 'a'),
    d({cameras: [{camera_id: 'b', vendors: [{vendor: 'tuya', queries: '5', last: ts}]}]}, 'b'),
    d([{camera: 'c', queries: 4, last_seen: 'garbage', vendors: null}], 'c'),
    d([{camera: 'd', vendors: []}, null, 7, {vendors: [{name: 'x'}]}], 'd'),
    d('<html>', 'a'),
    d({egress: [{id: 'e', vendors: [{name: 'Reolink', count: 1, last_seen: 0}]}]}, 'e'),
  ];
})`, &egress, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	wantEgress := []string{
		"tries to reach: Hik-Connect (2 tries); Easy4IP (1 try, last 2 min ago)",
		"tries to reach: tuya (5 tries, last 2 min ago)",
		"DNS queries: 4 (no known vendor cloud)",
		"",
		"",
		"tries to reach: Reolink (1 try)",
	}
	if strings.Join(egress, "|") != strings.Join(wantEgress, "|") {
		t.Errorf("egress wording:\n got %q\nwant %q", egress, wantEgress)
	}

	// The test hook.
	var stats struct {
		FramesDecoded int    `json:"framesDecoded"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		State         string `json:"state"`
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.cordonStats('gate-north')`, &stats,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	if stats.State != "offline" || stats.FramesDecoded != 0 {
		t.Errorf("cordonStats(gate-north) = %+v", stats)
	}

	// Lobby got a real 201 answer: it plays (when ffmpeg made a clip).
	if g.aus == nil {
		waitJS(ctx, t, "lobby session", `['connecting','playing','reconnecting'].includes(document.querySelector('[data-camera="lobby"]').dataset.state)`, 5*time.Second)
	} else {
		waitJS(ctx, t, "lobby playing", `document.querySelector('[data-camera="lobby"]').dataset.state === 'playing'`, 10*time.Second)
		testtool.WaitFor(t, 5*time.Second, "lobby frames", func() bool {
			var n int
			_ = chromedp.Run(ctx, chromedp.Evaluate(`window.cordonStats('lobby').then((s) => s.framesDecoded)`, &n,
				func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
			return n > 10
		})
		if err := chromedp.Run(ctx, chromedp.Evaluate(`window.cordonStats('lobby')`, &stats,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
			t.Fatal(err)
		}
		if stats.State != "playing" || stats.Width != 320 || stats.Height != 240 || stats.FramesDecoded <= 10 {
			t.Errorf("cordonStats(lobby) = %+v", stats)
		}
		if got := tileText("lobby", ".tile-badge"); got != "playing" {
			t.Errorf("lobby badge %q", got)
		}

	}

	testtool.Screenshot(t, ctx, filepath.Join("testdata", "artifacts"), "viewer.png")

	// WHEP offers: SDP, bearer, recvonly audio and video.
	var token string
	for _, r := range g.requests() {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL, "/whep/") {
			if r.ContentType != "application/sdp" {
				t.Errorf("WHEP POST %s Content-Type %q", r.URL, r.ContentType)
			}
			if !strings.HasPrefix(r.Auth, "Bearer tok-") {
				t.Errorf("WHEP POST %s Authorization %q", r.URL, r.Auth)
			}
			token = strings.TrimPrefix(r.Auth, "Bearer ")
			for _, want := range []string{"v=0", "m=video", "m=audio", "a=recvonly"} {
				if !strings.Contains(r.Body, want) {
					t.Errorf("WHEP offer to %s lacks %q", r.URL, want)
				}
			}
		}
	}
	if token == "" {
		t.Fatal("no WHEP POST seen")
	}

	// Token revoked server-side: the next poll (5 s) signs the page out.
	g.revokeAll()
	waitJS(ctx, t, "signed out after 401", `!document.getElementById('signin').hidden && document.getElementById('signin-error').textContent.includes('session has ended')`, 8*time.Second)
	waitJS(ctx, t, "tiles signed-out", `[...document.querySelectorAll('article.tile')].every(t => t.dataset.state === 'signed-out')`, time.Second)

	// Sign in again, then sign out with the button.
	signIn(ctx, t, "demo", "demo")
	waitJS(ctx, t, "viewer again", `document.querySelectorAll('article.tile[data-camera]').length === 3 && document.querySelector('[data-camera="yard-east"]').dataset.state === 'forbidden'`, 5*time.Second)
	var lobbyLocation string
	testtool.WaitFor(t, 5*time.Second, "second lobby answer", func() bool {
		n := 0
		for _, r := range g.requests() {
			if r.Method == http.MethodPost && r.URL == "/whep/lobby" {
				n++
			}
		}
		return n >= 2
	})
	if err := chromedp.Run(ctx, chromedp.Click("#signout", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(ctx, t, "sign-in after sign out", `!document.getElementById('signin').hidden && document.querySelectorAll('article.tile').length === 0`, 5*time.Second)
	testtool.WaitFor(t, 5*time.Second, "logout and DELETE", func() bool {
		logout, del := false, false
		for _, r := range g.requests() {
			if r.Method == http.MethodPost && r.URL == "/api/v1/logout" && strings.HasPrefix(r.Auth, "Bearer tok-") {
				logout = true
			}
			if r.Method == http.MethodDelete && strings.HasPrefix(r.URL, "/whep/lobby/") && strings.HasPrefix(r.Auth, "Bearer tok-") {
				del = true
				lobbyLocation = r.URL
			}
		}
		return logout && del
	})
	t.Logf("DELETE %s seen", lobbyLocation)

	// Nothing secret in URLs; no cookies.
	for _, r := range g.requests() {
		if strings.Contains(r.URL, "tok-") || strings.Contains(strings.ToLower(r.URL), "token") || strings.Contains(r.URL, "demo") {
			t.Errorf("credential in URL: %s %s", r.Method, r.URL)
		}
		if r.Cookie != "" {
			t.Errorf("cookie sent: %s %s: %s", r.Method, r.URL, r.Cookie)
		}
	}

	testtool.CheckPage(t, ctx, problems)
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}
