package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLoginIssuesWorkingToken(t *testing.T) {
	f := newFixture(t)
	w := f.login(t, "alice", alicePW, "192.0.2.7")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("cache control %q", cc)
	}
	var resp map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp) != 2 || resp["token"] == "" {
		t.Fatalf("response %v", resp)
	}
	if want := f.clock.Now().Add(time.Hour).Format(time.RFC3339); resp["expires_at"] != want {
		t.Fatalf("expires_at %s want %s", resp["expires_at"], want)
	}
	p, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/api/v1/cameras", resp["token"]))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "alice" || p.Kind != KindUser || !p.Admin || len(p.TokenID) != 32 || !p.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("principal %+v", p)
	}
	ev := f.auditEvents(t)
	if len(ev) != 1 || ev[0].Event != "login_ok" || ev[0].Actor != "alice" || ev[0].Remote != "192.0.2.7" || ev[0].Protocol != "http" {
		t.Fatalf("audit %+v", ev)
	}
	if got := testutil.ToFloat64(f.svc.Metrics.Logins); got != 1 {
		t.Fatalf("logins metric %v", got)
	}
	// Two logins give two distinct token ids.
	p2, _ := f.svc.AuthenticateRequest(bearerRequest("GET", "/", f.token(t, "alice", alicePW)))
	if p2.TokenID == p.TokenID {
		t.Fatal("token ids repeat")
	}
}

func TestLoginUnknownUserAndWrongPasswordLookTheSame(t *testing.T) {
	f := newFixture(t)
	type answer struct {
		code   int
		body   string
		header http.Header
		hashes int
	}
	try := func(user, pw, remote string) answer {
		before := f.svc.hashCount()
		w := f.login(t, user, pw, remote)
		h := w.Header().Clone()
		h.Del("Date")
		return answer{w.Code, w.Body.String(), h, f.svc.hashCount() - before}
	}
	wrong := try("alice", "not-her-password", "192.0.2.10")
	unknown := try("mallory", "whatever", "192.0.2.11")
	apiKeyName := try("vms-1", vmsKey, "192.0.2.12") // API keys cannot log in
	tooLong := try(strings.Repeat("a", 300), "x", "192.0.2.13")
	for name, a := range map[string]answer{"unknown user": unknown, "api key name": apiKeyName, "overlong name": tooLong} {
		if a.code != wrong.code || a.body != wrong.body || !equalHeaders(a.header, wrong.header) {
			t.Errorf("%s answers differently:\n%+v\nvs wrong password:\n%+v", name, a, wrong)
		}
		if a.hashes != 1 {
			t.Errorf("%s ran %d argon2id verifications, want 1 like a wrong password", name, a.hashes)
		}
	}
	if wrong.code != http.StatusUnauthorized || wrong.body != `{"error":"invalid username or password"}`+"\n" || wrong.hashes != 1 {
		t.Fatalf("wrong password answer %+v", wrong)
	}
	if f.countEvents(t, "login_failed") != 4 {
		t.Fatalf("audit: %+v", f.auditEvents(t))
	}
	if got := testutil.ToFloat64(f.svc.Metrics.LoginFailures.WithLabelValues("bad_credentials")); got != 4 {
		t.Fatalf("failure metric %v", got)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return true
}

func TestLoginRequestValidation(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, method, ct, body string
		code                   int
	}{
		{"get", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{"no content type", http.MethodPost, "", `{"username":"alice","password":"x"}`, http.StatusUnsupportedMediaType},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", "username=alice&password=x", http.StatusUnsupportedMediaType},
		{"latin1", http.MethodPost, "application/json; charset=latin1", `{"username":"alice","password":"x"}`, http.StatusUnsupportedMediaType},
		{"too large", http.MethodPost, "application/json", `{"username":"alice","password":"` + strings.Repeat("x", 5000) + `"}`, http.StatusRequestEntityTooLarge},
		{"malformed", http.MethodPost, "application/json", `{"username":"alice",`, http.StatusBadRequest},
		{"array", http.MethodPost, "application/json", `["alice","x"]`, http.StatusBadRequest},
		{"trailing", http.MethodPost, "application/json", `{"username":"alice","password":"x"} {}`, http.StatusBadRequest},
		{"missing password", http.MethodPost, "application/json", `{"username":"alice"}`, http.StatusBadRequest},
		{"number password", http.MethodPost, "application/json", `{"username":"alice","password":1}`, http.StatusBadRequest},
		{"empty", http.MethodPost, "application/json", ``, http.StatusBadRequest},
		{"charset ok, wrong pw", http.MethodPost, "application/json; charset=utf-8", `{"username":"alice","password":"x"}`, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/api/v1/login", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			w := httptest.NewRecorder()
			f.svc.LoginHandler().ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("status %d want %d (%s)", w.Code, tc.code, w.Body)
			}
			var e map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e) != 1 || e["error"] == "" {
				t.Fatalf("body is not a JSON error: %q", w.Body)
			}
			if strings.Contains(w.Body.String(), "xxxx") {
				t.Fatal("error echoes the password")
			}
		})
	}
	// Exactly 4 KiB is accepted (and judged on its credentials).
	pad := 4096 - len(`{"username":"alice","password":""}`)
	w := f.login(t, "alice", strings.Repeat("y", pad), "192.0.2.50")
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("4096-byte body: %d", w.Code)
	}
}

func retryAfter(t *testing.T, w *httptest.ResponseRecorder) int {
	t.Helper()
	n, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	return n
}

func TestLockoutPerAddressExponentialAndExpiry(t *testing.T) {
	f := newFixture(t)
	const addr = "198.51.100.9"
	for i := range 5 {
		if w := f.login(t, "alice", "wrong", addr); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, w.Code)
		}
	}
	// Locked for 1 s now: even the right password is refused, without
	// running argon2id.
	before := f.svc.hashCount()
	w := f.login(t, "alice", alicePW, addr)
	if w.Code != http.StatusTooManyRequests || retryAfter(t, w) != 1 {
		t.Fatalf("locked: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if f.svc.hashCount() != before {
		t.Fatal("argon2id ran while locked out")
	}
	var e map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	if !strings.Contains(e["error"], "try again") {
		t.Fatalf("429 body %s", w.Body)
	}
	if got := testutil.ToFloat64(f.svc.Metrics.LoginFailures.WithLabelValues("locked_out")); got != 1 {
		t.Fatalf("locked_out metric %v", got)
	}
	// Another user from the same address is locked too.
	if w := f.login(t, "bob", bobPW, addr); w.Code != http.StatusTooManyRequests {
		t.Fatalf("other user same address: %d", w.Code)
	}
	// Expiry, then the next failure doubles the lock.
	f.clock.Advance(1100 * time.Millisecond)
	if w := f.login(t, "bob", "wrong", addr); w.Code != http.StatusUnauthorized {
		t.Fatalf("after expiry: %d", w.Code)
	}
	if w := f.login(t, "bob", bobPW, addr); w.Code != http.StatusTooManyRequests || retryAfter(t, w) != 2 {
		t.Fatalf("doubled lock: %d %v", w.Code, w.Header())
	}
	f.clock.Advance(2100 * time.Millisecond)
	if w := f.login(t, "bob", bobPW, addr); w.Code != http.StatusOK {
		t.Fatalf("after second expiry: %d %s", w.Code, w.Body)
	}
	// The lock is capped at 15 minutes.
	for range 30 {
		f.clock.Advance(16 * time.Minute)
		f.login(t, "nobody", "wrong", addr)
	}
	w = f.login(t, "bob", bobPW, addr)
	if w.Code != http.StatusTooManyRequests || retryAfter(t, w) != 900 {
		t.Fatalf("cap: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Counters decay: after 30 quiet minutes past the lock, four failures
	// do not lock.
	f.clock.Advance(15*time.Minute + 31*time.Minute)
	for range 4 {
		f.login(t, "nobody", "wrong", addr)
	}
	if w := f.login(t, "bob", bobPW, addr); w.Code != http.StatusOK {
		t.Fatalf("after decay: %d", w.Code)
	}
}

// Failures for a name from some addresses never refuse that name's
// correct credentials from an address that has not failed (anyone could
// otherwise lock anyone out); the (name, address) pair is locked.
func TestLockoutNeverExcludesOtherAddresses(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		if w := f.login(t, "alice", "wrong", "203.0.113.1"); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, w.Code)
		}
	}
	for i := range 5 { // and spread over many addresses
		f.login(t, "alice", "wrong", "203.0.113."+strconv.Itoa(i+10))
	}
	if w := f.login(t, "alice", alicePW, "203.0.113.1"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the guessing address itself: %d", w.Code)
	}
	if w := f.login(t, "alice", alicePW, "203.0.113.200"); w.Code != http.StatusOK {
		t.Fatalf("alice from a fresh address was refused: %d %s", w.Code, w.Body)
	}
	// The (name, address) pair locks even when the address tries other
	// names successfully in between (a success for bob does not reset the
	// address, nor alice's pair).
	const a = "203.0.113.50"
	for range 4 {
		f.login(t, "alice", "wrong", a)
	}
	if w := f.login(t, "bob", bobPW, a); w.Code != http.StatusOK {
		t.Fatalf("bob: %d", w.Code)
	}
	f.login(t, "alice", "wrong", a)
	if w := f.login(t, "alice", alicePW, a); w.Code != http.StatusTooManyRequests {
		t.Fatalf("alice's pair after 5 failures: %d", w.Code)
	}
	f.clock.Advance(1100 * time.Millisecond)
	if w := f.login(t, "alice", alicePW, a); w.Code != http.StatusOK {
		t.Fatalf("alice after expiry: %d", w.Code)
	}
	// Unknown names lock the same way (no user enumeration via 429).
	for range 5 {
		f.login(t, "ghost", "wrong", "203.0.113.60")
	}
	if w := f.login(t, "ghost", "x", "203.0.113.60"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("unknown user not locked: %d", w.Code)
	}
}

func TestLockoutIPv6AggregatesSlash64(t *testing.T) {
	if addrKey("[2001:db8:1:2::5]:80") != addrKey("2001:db8:1:2:ffff::9") {
		t.Fatal("same /64 not aggregated")
	}
	if addrKey("2001:db8:1:2::5") == addrKey("2001:db8:1:3::5") {
		t.Fatal("different /64 aggregated")
	}
	if addrKey("::ffff:192.0.2.1") != addrKey("192.0.2.1:5") {
		t.Fatal("v4-mapped not unmapped")
	}
}

func TestLockoutMemoryBounded(t *testing.T) {
	l := newLockout(DefaultLockoutPolicy())
	now := time.Unix(1000, 0)
	for i := range maxLockoutEntries + 100 {
		l.fail(now.Add(time.Duration(i)*time.Millisecond), []lockKey{{key: "addr:" + strconv.Itoa(i)}})
	}
	if len(l.m) > maxLockoutEntries {
		t.Fatalf("%d entries", len(l.m))
	}
	// One scan per batch of 4,096 new keys, not one per key.
	if l.scans > 1 {
		t.Fatalf("%d eviction scans for 100 keys over the bound", l.scans)
	}
}

// Once full, eviction runs once per batch of new keys; it frees stale and
// unlocked entries before locked ones, so spraying fresh keys does not
// unlock an address.
func TestLockoutEvictionInBatches(t *testing.T) {
	p := DefaultLockoutPolicy()
	p.Base = time.Minute // outlasts the spray
	l := newLockout(p)
	l.max = 64
	now := time.Unix(1000, 0)
	locked := attemptKeys("", "203.0.113.66")
	for range p.Threshold {
		l.fail(now, locked)
	}
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		l.fail(now, []lockKey{{key: "addr:10.9." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)}})
		if len(l.m) > l.max {
			t.Fatalf("%d entries", len(l.m))
		}
	}
	if want := (1000 - 63) / 4; l.scans > want+1 {
		t.Fatalf("%d eviction scans for 1,000 new keys over a bound of 64 (want about %d)", l.scans, want)
	}
	if err := l.check(now, locked); err == nil {
		t.Fatal("spraying fresh keys evicted a locked address")
	}
}

// A failure a door records while the address is locked is refused like
// any attempt then: no count, no audit line, and no entry for the name.
func TestRecordAuthFailureWhileLocked(t *testing.T) {
	f := newFixture(t)
	const remote = "198.51.100.40"
	var lo *LockedOutError
	for i := range f.svc.Lockout.Threshold {
		err := f.svc.RecordAuthFailure("x", remote, "rtsp", "", "malformed")
		if i == f.svc.Lockout.Threshold-1 && !errors.As(err, &lo) {
			t.Fatalf("threshold reached: %v", err)
		}
	}
	f.svc.lock.mu.Lock()
	entries := len(f.svc.lock.m)
	f.svc.lock.mu.Unlock()
	lines := len(f.auditEvents(t))
	for i := range 100 {
		if err := f.svc.RecordAuthFailure("name-"+strconv.Itoa(i), remote, "rtsp", "", "malformed"); !errors.As(err, &lo) {
			t.Fatalf("failure during the lock: %v", err)
		}
	}
	f.svc.lock.mu.Lock()
	after := len(f.svc.lock.m)
	f.svc.lock.mu.Unlock()
	if after != entries {
		t.Fatalf("lockout entries %d -> %d during the lock", entries, after)
	}
	if n := len(f.auditEvents(t)); n != lines {
		t.Fatalf("audit %d -> %d lines during the lock", lines, n)
	}
	if lo.RetryAfter > f.svc.Lockout.Base {
		t.Fatalf("the lock grew during it: %v", lo.RetryAfter)
	}
}

func TestLoginFailsClosedWhenAuditFails(t *testing.T) {
	f := newFixture(t)
	f.svc.Audit = failingAudit{}
	w := f.login(t, "alice", alicePW, "192.0.2.1")
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "token") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if err := f.svc.AuditHealthy(); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("AuditHealthy %v", err)
	}
	if _, err := f.svc.AuthenticatePassword("vms-1", vmsKey, "192.0.2.3", "rtsp"); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("rtsp auth with broken audit: %v", err)
	}
}

type failingAudit struct{}

func (failingAudit) Append(auditEvent) error { return errors.New("disk full") }
func (failingAudit) Healthy() error          { return errors.New("disk full") }

func TestLoginAlwaysRunsArgon2(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		before := f.svc.hashCount()
		if w := f.login(t, "bob", bobPW, "192.0.2.1"); w.Code != http.StatusOK {
			t.Fatal(w.Code)
		}
		if f.svc.hashCount()-before != 1 {
			t.Fatal("interactive login skipped argon2id (cached): correct and wrong passwords would differ in time")
		}
	}
}
