package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/internal/testtool"
)

// scriptedDirectory is a PasswordDirectory answering from a table; the
// real LDAP behind the gateway's adapter is exercised end to end (e2e,
// against slapd). It counts what reaches it.
type scriptedDirectory struct {
	mu     sync.Mutex
	users  map[string]string // name -> password
	roles  map[string][]string
	rename map[string]string // typed name -> the directory's spelling
	down   bool
	calls  []string
	gate   chan struct{} // when set, answers wait for it to close
}

func (d *scriptedDirectory) Source() string { return SourceLDAP }

func (d *scriptedDirectory) AuthenticatePassword(_ context.Context, name, password string) (Identity, error) {
	d.mu.Lock()
	d.calls = append(d.calls, name)
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return Identity{}, &DirectoryUnavailableError{Source: SourceLDAP}
	}
	pw, ok := d.users[name]
	if !ok || password == "" || pw != password {
		return Identity{}, ErrBadCredentials
	}
	canon := name
	if r, ok := d.rename[name]; ok {
		canon = r
	}
	return Identity{Name: canon, Source: SourceLDAP, Groups: []string{"cn=g," + name}, Roles: d.roles[name]}, nil
}

func (d *scriptedDirectory) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func (d *scriptedDirectory) set(fn func(d *scriptedDirectory)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

func directoryFixture(t *testing.T) (*fixture, *scriptedDirectory) {
	t.Helper()
	f := rolesFixture(t)
	d := &scriptedDirectory{
		users:  map[string]string{"frank": "frank-pw", "gina": "gina-pw", "ALICE": "dir-alice-pw", "hank": "hank-pw"},
		roles:  map[string][]string{"frank": {"operator"}, "hank": {"operator"}},
		rename: map[string]string{"hank": "Carol"},
	}
	f.svc.DirectoryPasswords = d
	return f, d
}

func TestDirectoryLoginIssuesToken(t *testing.T) {
	f, d := directoryFixture(t)
	w := f.login(t, "frank", "frank-pw", "192.0.2.30")
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	tok := f.token(t, "frank", "frank-pw")
	p, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != SourceLDAP || p.Name != "frank" || !p.CanView("gate-north") || p.Admin {
		t.Fatalf("principal %+v", p)
	}
	if ttl := p.ExpiresAt.Sub(f.clock.Now()); ttl > time.Hour || ttl <= 0 {
		t.Fatalf("token lives %v, token_ttl is 1h", ttl)
	}
	b, _ := readFile(f.auditPath)
	if !strings.Contains(b, `"event":"login_ok","actor":"frank"`) || !strings.Contains(b, `"source":"ldap"`) {
		t.Fatalf("audit:\n%s", b)
	}
	if got := d.seen(); len(got) != 2 || got[0] != "frank" {
		t.Fatalf("directory asked %v", got)
	}
	// a user in no mapped group signs in with no rights
	tok = f.token(t, "gina", "gina-pw")
	p, err = f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err != nil || len(p.Roles) != 0 || p.CanView("gate-north") {
		t.Fatalf("gina: %+v %v", p, err)
	}
}

// A local name (or a case variant of one) is never sent to the directory,
// whatever the directory would say; and a directory identity that comes
// back with a local name is refused.
func TestDirectoryNameClash(t *testing.T) {
	f, d := directoryFixture(t)
	for _, name := range []string{"alice", "ALICE", "Carol", "nvr-1", "NVR-1"} {
		if w := f.login(t, name, "dir-alice-pw", "192.0.2.31"); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	if got := d.seen(); len(got) != 0 {
		t.Fatalf("local names sent to the directory: %v", got)
	}
	if w := f.login(t, "alice", alicePW, "192.0.2.32"); w.Code != http.StatusOK {
		t.Fatalf("local alice: %d", w.Code)
	}
	// hank's directory spelling is "Carol", a local user's name
	if w := f.login(t, "hank", "hank-pw", "192.0.2.33"); w.Code != http.StatusUnauthorized {
		t.Fatalf("hank renamed to a local name: %d %s", w.Code, w.Body)
	}
	b, _ := readFile(f.auditPath)
	if !strings.Contains(b, "is a local account") {
		t.Fatalf("clash not audited:\n%s", b)
	}
}

func TestDirectoryFailuresCountTowardsLockout(t *testing.T) {
	f, d := directoryFixture(t)
	for i := range 5 {
		if w := f.login(t, "frank", "wrong", "192.0.2.40"); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	w := f.login(t, "frank", "frank-pw", "192.0.2.40")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after 5 failures: %d %v", w.Code, w.Header())
	}
	if got := len(d.seen()); got != 5 {
		t.Fatalf("directory asked %d times, want 5 (a locked attempt must not reach it)", got)
	}
	if f.countEvents(t, "login_failed") != 5 {
		t.Fatalf("login_failed lines: %d", f.countEvents(t, "login_failed"))
	}
	b, _ := readFile(f.auditPath)
	if !strings.Contains(b, `"event":"login_failed","actor":"frank"`) || !strings.Contains(b, `"source":"ldap"`) {
		t.Fatalf("audit:\n%s", b)
	}
	// another address is not locked out
	if w := f.login(t, "frank", "frank-pw", "192.0.2.41"); w.Code != http.StatusOK {
		t.Fatalf("from another address: %d", w.Code)
	}
	// an empty password is a failure like any other (the directory refuses it)
	if w := f.login(t, "gina", "", "192.0.2.42"); w.Code != http.StatusUnauthorized {
		t.Fatalf("empty password: %d", w.Code)
	}
}

// An unreachable directory: 503 with Retry-After for directory names (not
// counted towards lockout), local users unaffected.
func TestDirectoryUnavailable(t *testing.T) {
	f, d := directoryFixture(t)
	d.set(func(d *scriptedDirectory) { d.down = true })
	for range 8 {
		w := f.login(t, "frank", "frank-pw", "192.0.2.50")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(w.Body.String(), "local accounts still can") {
			t.Fatalf("directory down: %d %v %s", w.Code, w.Header(), w.Body)
		}
	}
	if w := f.login(t, "alice", alicePW, "192.0.2.50"); w.Code != http.StatusOK {
		t.Fatalf("local user while the directory is down: %d", w.Code)
	}
	_, err := f.svc.AuthenticatePassword("frank", "frank-pw", "192.0.2.50:554", "rtsp")
	if a := Explain(err); !errors.Is(err, ErrDirectoryUnavailable) || a.RTSPStatus != 503 || a.RetryAfter <= 0 {
		t.Fatalf("RTSP: %v %+v", err, a)
	}
	d.set(func(d *scriptedDirectory) { d.down = false })
	if w := f.login(t, "frank", "frank-pw", "192.0.2.50"); w.Code != http.StatusOK {
		t.Fatalf("directory back: %d %s", w.Code, w.Body)
	}
}

// RTSP Basic: the directory is asked once per VerifyCacheTTL, not per
// request; a removed identity is refused at its next request even while
// its success is cached, and narrowed roles apply at once.
func TestDirectoryRTSPCache(t *testing.T) {
	f, d := directoryFixture(t)
	auth := func(pw string) (*Principal, error) {
		return f.svc.AuthenticatePasswordContext(context.Background(), "frank", pw, "192.0.2.60:5000", "rtsp")
	}
	for range 5 {
		p, err := auth("frank-pw")
		if err != nil || p.Source != SourceLDAP || !p.CanView("gate-north") {
			t.Fatalf("%+v %v", p, err)
		}
	}
	if n := len(d.seen()); n != 1 {
		t.Fatalf("directory asked %d times for 5 requests", n)
	}
	if _, err := auth("wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password with a cached success: %v", err)
	}
	f.svc.RefreshIdentity(Identity{Name: "frank", Source: SourceLDAP, Roles: []string{"investigator"}})
	if p, err := auth("frank-pw"); err != nil || p.CanView("gate-north") {
		t.Fatalf("narrowed: %+v %v", p, err)
	}
	d.set(func(d *scriptedDirectory) { delete(d.users, "frank") })
	f.svc.RemoveIdentity(SourceLDAP, "frank", "test")
	if _, err := auth("frank-pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("removed user: %v", err)
	}
	if n := len(d.seen()); n != 3 {
		t.Fatalf("directory asked %d times, want 3 (first, wrong password, after removal)", n)
	}
	f.clock.Advance(2 * time.Minute)
	if got := f.countEvents(t, "login_ok"); got != 1 {
		t.Fatalf("login_ok lines %d, want 1 (cached successes are not audited)", got)
	}
}

// An NVR opening many streams at once with the same directory credentials
// costs one bind.
func TestDirectoryRTSPSharedVerification(t *testing.T) {
	f, d := directoryFixture(t)
	gate := make(chan struct{})
	d.set(func(d *scriptedDirectory) { d.gate = gate })
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.AuthenticatePasswordContext(context.Background(), "frank", "frank-pw", "192.0.2.70:5000", "rtsp")
			errs <- err
		}()
	}
	// every attempt is either the one asking the directory or waiting on it
	testtool.WaitFor(t, 10*time.Second, "one bind and n-1 attempts sharing it", func() bool {
		return len(d.seen()) == 1 && int(f.svc.followers.Load()) == n-1
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(d.seen()); got != 1 {
		t.Fatalf("%d binds for %d identical attempts", got, n)
	}
}
