package auth

import (
	"bufio"
	"encoding/json"
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

	"go.uber.org/goleak"

	"cordon/auth/audit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type fixture struct {
	svc       *Service
	clock     *testClock
	audit     *audit.Log
	auditPath string
	stateDir  string
	dir       *Directory
	users     []User
	keys      []APIKey
}

const (
	alicePW = "alice-correct-horse"
	bobPW   = "bob-battery-staple"
	vmsKey  = "k3y-f0r-the-vms-0123456789"
)

func defaultUsers(t testing.TB) ([]User, []APIKey) {
	return []User{
			{Name: "alice", PasswordHash: mustHash(t, alicePW), Cameras: []string{"*"}, Admin: true},
			{Name: "bob", PasswordHash: mustHash(t, bobPW), Cameras: []string{"gate-*"}},
		}, []APIKey{
			{Name: "vms-1", KeyHash: mustHash(t, vmsKey), Cameras: []string{"gate-*", "yard-1"}},
		}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	users, keys := defaultUsers(t)
	return newFixtureWith(t, t.TempDir(), users, keys)
}

// newFixtureWith starts a Service on users and keys with its state and
// audit log under base; each with changes the Service before it starts.
func newFixtureWith(t testing.TB, base string, users []User, keys []APIKey, with ...func(*Service)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), users: users, keys: keys}
	f.auditPath = filepath.Join(base, "audit.log")
	f.stateDir = filepath.Join(base, "state")
	f.audit = &audit.Log{Path: f.auditPath, Logger: quiet(), Now: f.clock.Now}
	if err := f.audit.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.audit.Close)
	dir, err := NewDirectory(users, keys)
	if err != nil {
		t.Fatal(err)
	}
	f.dir = dir
	f.svc = &Service{
		StateDir:  f.stateDir,
		TokenTTL:  time.Hour,
		Directory: dir,
		Audit:     f.audit,
		Logger:    quiet(),
		Metrics:   NewMetrics(nil),
		Now:       f.clock.Now,
	}
	for _, w := range with {
		w(f.svc)
	}
	if err := f.svc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.svc.Close)
	return f
}

// restart builds a new Service on the same state dir and directory.
func (f *fixture) restart(t testing.TB) *Service {
	t.Helper()
	svc := &Service{StateDir: f.stateDir, TokenTTL: time.Hour, Directory: f.dir, Audit: f.audit, Logger: quiet(), Now: f.clock.Now}
	if err := svc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func loginRequestFor(user, pw, remote string) *http.Request {
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	r := httptest.NewRequest(http.MethodPost, "/api/v1/login", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = remote + ":40000"
	return r
}

func (f *fixture) login(t testing.TB, user, pw, remote string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.svc.LoginHandler().ServeHTTP(w, loginRequestFor(user, pw, remote))
	return w
}

func (f *fixture) token(t testing.TB, user, pw string) string {
	t.Helper()
	w := f.login(t, user, pw, "192.0.2.1")
	if w.Code != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, w.Code, w.Body)
	}
	var resp struct{ Token, ExpiresAt string }
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Token
}

func bearerRequest(method, target, tok string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:40000"
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

type auditLine struct {
	Seq      uint64
	Event    string
	Actor    string
	Camera   string
	Remote   string
	Protocol string
	Detail   string
}

func (f *fixture) auditEvents(t testing.TB) []auditLine {
	t.Helper()
	fh, err := os.Open(f.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fh.Close() }()
	var out []auditLine
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func (f *fixture) countEvents(t testing.TB, event string) int {
	n := 0
	for _, e := range f.auditEvents(t) {
		if e.Event == event {
			n++
		}
	}
	return n
}

type auditEvent = audit.Event

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
