package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/auth/directory"
)

type apiClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *apiClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *apiClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type signInFixture struct {
	svc   *auth.Service
	o     *OIDCSignIn
	clock *apiClock
	audit string
}

// newSignIn builds a real auth.Service (state dir, audit log) with a local
// user alice and the role operator, and the OIDC sign-in on it.
func newSignIn(t *testing.T) *signInFixture {
	t.Helper()
	dir := t.TempDir()
	f := &signInFixture{clock: &apiClock{t: time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)}, audit: filepath.Join(dir, "audit.log")}
	quiet := slog.New(slog.DiscardHandler)
	log := &audit.Log{Path: f.audit, Logger: quiet, Now: f.clock.Now}
	if err := log.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	hash, err := auth.HashSecret([]byte("alice-pw"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := auth.NewDirectoryConfig(auth.DirectoryConfig{
		Roles: []auth.Role{{Name: "operator", Cameras: []string{"*"}, Rights: []auth.Right{auth.RightView}}},
		Users: []auth.User{{Name: "alice", PasswordHash: hash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = &auth.Service{StateDir: filepath.Join(dir, "state"), TokenTTL: time.Hour, Directory: d, Audit: log, Logger: quiet, Now: f.clock.Now}
	if err := f.svc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.svc.Close)
	f.o = &OIDCSignIn{Auth: f.svc, Provider: "Force IdP", Logger: quiet, Now: f.clock.Now}
	if err := f.o.Initialize(); err != nil {
		t.Fatal(err)
	}
	return f
}

// signIn runs SignIn as the callback would and returns the redirect and
// the hand-off cookie.
func (f *signInFixture) signIn(t *testing.T, id directory.Identity) (string, *http.Cookie, error) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/oidc/callback?state=s&code=c", nil)
	to, err := f.o.SignIn(w, r, id)
	var c *http.Cookie
	for _, k := range w.Result().Cookies() {
		if k.Name == handoffCookie {
			c = k
		}
	}
	return to, c, err
}

func (f *signInFixture) exchange(t *testing.T, c *http.Cookie, hdr map[string]string) (int, []*http.Cookie, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, ExchangePath, nil)
	if c != nil {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.o.ExchangeHandler().ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Result().Cookies(), string(b)
}

func olga(exp time.Time) directory.Identity {
	return directory.Identity{Name: "olga", Source: directory.SourceOIDC, Subject: "sub-olga", Groups: []string{"cctv-operators"}, Roles: []string{"operator"}, Expires: exp}
}

func TestOIDCHandoff(t *testing.T) {
	f := newSignIn(t)
	idExp := f.clock.Now().Add(10 * time.Minute)
	to, c, err := f.signIn(t, olga(idExp))
	if err != nil || to != "/#signin=oidc" || c == nil {
		t.Fatalf("SignIn: %q %v %v", to, c, err)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != ExchangePath || c.MaxAge != 60 || c.Secure || len(c.Value) < 43 {
		t.Fatalf("hand-off cookie %+v", c)
	}
	// a request made by another site never completes the sign-in, and
	// does not use the code up
	if code, _, body := f.exchange(t, c, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Fatalf("cross-site exchange: %d %s", code, body)
	}
	code, cookies, body := f.exchange(t, c, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %s", code, body)
	}
	if len(cookies) != 1 || cookies[0].Name != handoffCookie || cookies[0].MaxAge >= 0 {
		t.Fatalf("the exchange must delete the cookie: %+v", cookies)
	}
	var out exchangeResponse
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.User != "olga" || out.Token == "" || strings.Contains(c.Value, out.Token) {
		t.Fatalf("exchange answer %s: %v", body, err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+out.Token)
	p, err := f.svc.AuthenticateRequest(req)
	if err != nil || p.Source != auth.SourceOIDC || !p.CanView("gate") || p.ExpiresAt.After(idExp) {
		t.Fatalf("the handed-off token: %+v %v (ID token expires %v)", p, err, idExp)
	}
	if exp, _ := time.Parse(time.RFC3339, out.ExpiresAt); exp.After(idExp) {
		t.Fatalf("expires_at %s after the ID token's %v", out.ExpiresAt, idExp)
	}
	// single use
	if code, _, _ := f.exchange(t, c, nil); code != http.StatusUnauthorized {
		t.Fatalf("second exchange: %d", code)
	}
	// none at all, or the wrong method
	if code, _, _ := f.exchange(t, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("no cookie: %d", code)
	}
	w := httptest.NewRecorder()
	f.o.ExchangeHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, ExchangePath, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", w.Code)
	}
	// a code not exchanged within the TTL is gone
	_, c, _ = f.signIn(t, olga(idExp))
	f.clock.Advance(61 * time.Second)
	if code, _, _ := f.exchange(t, c, nil); code != http.StatusUnauthorized {
		t.Fatalf("late exchange: %d", code)
	}
	b, _ := os.ReadFile(f.audit)
	if !strings.Contains(string(b), `"event":"login_ok","actor":"olga"`) || !strings.Contains(string(b), `"source":"oidc"`) {
		t.Fatalf("audit:\n%s", b)
	}
	if strings.Contains(string(b), out.Token) {
		t.Fatal("the token is in the audit log")
	}
}

func TestOIDCSignInRefusals(t *testing.T) {
	f := newSignIn(t)
	exp := f.clock.Now().Add(time.Hour)
	var se *directory.StatusError
	id := olga(exp)
	id.Name = "ALICE" // a local account's name, whatever the case
	if _, c, err := f.signIn(t, id); !errors.As(err, &se) || se.Status != http.StatusForbidden || c != nil ||
		!strings.Contains(se.Message, "local cordon account") {
		t.Fatalf("local name: %v %v", err, c)
	}
	id.Name = "olga smith" // not a cordon name
	if _, _, err := f.signIn(t, id); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Fatalf("name with a space: %v", err)
	}
	if _, _, err := f.signIn(t, olga(f.clock.Now().Add(-time.Second))); !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("expired ID token: %v", err)
	}
	// no mapped group: signed in, no rights
	id = olga(exp)
	id.Roles = nil
	if to, c, err := f.signIn(t, id); err != nil || c == nil || to == "" {
		t.Fatalf("no roles: %v", err)
	}
	// a full table refuses rather than growing
	f.o.MaxHandoffs = 2
	f.o.handoffs = map[[32]byte]handoff{}
	for i := range 3 {
		_, _, err := f.signIn(t, olga(exp))
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && (!errors.As(err, &se) || se.Status != http.StatusServiceUnavailable) {
			t.Fatalf("full table: %v", err)
		}
	}
	f.clock.Advance(2 * time.Minute) // expired entries make room
	if _, _, err := f.signIn(t, olga(f.clock.Now().Add(time.Hour))); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if f.o.Pending() != 1 {
		t.Fatalf("pending %d", f.o.Pending())
	}
}

func TestOIDCErrorPage(t *testing.T) {
	f := newSignIn(t)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/oidc/callback?state=x", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	f.o.ErrorPage(w, r, http.StatusUnauthorized, `Signing in with <b>X</b> failed.`)
	body := w.Body.String()
	if w.Code != http.StatusUnauthorized || !strings.Contains(body, "Signing in with &lt;b&gt;X&lt;/b&gt; failed.") ||
		strings.Contains(body, "<script") || !strings.Contains(body, `href="/"`) {
		t.Fatalf("%d %s", w.Code, body)
	}
	b, _ := os.ReadFile(f.audit)
	if !strings.Contains(string(b), `"event":"login_failed"`) || !strings.Contains(string(b), `"source":"oidc"`) {
		t.Fatalf("a refused callback is not audited:\n%s", b)
	}
	// other pages (e.g. the provider is down) are not sign-in failures
	n := strings.Count(string(b), "login_failed")
	f.o.ErrorPage(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/oidc/login", nil), http.StatusServiceUnavailable, "down")
	b, _ = os.ReadFile(f.audit)
	if strings.Count(string(b), "login_failed") != n {
		t.Fatal("a 503 page was audited as a failed sign-in")
	}
}
