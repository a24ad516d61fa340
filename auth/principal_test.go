package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/auth/audit"
)

// principalWith returns a configured user's principal with these globs.
func principalWith(t *testing.T, cameras ...string) *Principal {
	t.Helper()
	d, err := NewDirectory([]User{{Name: "u", PasswordHash: mustHash(t, "x"), Cameras: cameras}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := d.Lookup("u", KindUser)
	return p
}

func TestCanViewGlobsDenyByDefault(t *testing.T) {
	p := principalWith(t, "gate-*", "yard-1")
	for cam, want := range map[string]bool{
		"gate-north": true, "gate-": true, "yard-1": true,
		"yard-2": false, "gate": false, "": false, "xgate-1": false,
	} {
		if p.CanView(cam) != want {
			t.Errorf("CanView(%q) = %v", cam, !want)
		}
	}
	if principalWith(t).CanView("gate-1") || (&Principal{Cameras: []string{"*"}}).CanView("gate-1") {
		t.Error("no globs (or globs not from the directory) grant access")
	}
	var nilP *Principal
	if nilP.CanView("x") {
		t.Error("nil principal grants access")
	}
	if !principalWith(t, "*").CanView("anything") {
		t.Error("* does not match")
	}
}

func TestDirectoryUpdateValidation(t *testing.T) {
	h := mustHash(t, "x")
	cases := map[string]struct {
		users []User
		keys  []APIKey
		field string
	}{
		"duplicate user": {[]User{{Name: "a", PasswordHash: h}, {Name: "a", PasswordHash: h}}, nil, "auth.users[1].name"},
		"user/key clash": {[]User{{Name: "a", PasswordHash: h}}, []APIKey{{Name: "a", KeyHash: h}}, "auth.api_keys[0].name"},
		"colon in name":  {[]User{{Name: "a:b", PasswordHash: h}}, nil, "auth.users[0].name"},
		"empty name":     {nil, []APIKey{{Name: "", KeyHash: h}}, "auth.api_keys[0].name"},
		"bad hash":       {[]User{{Name: "a", PasswordHash: "plaintext"}}, nil, "auth.users[0].password_hash"},
		"absurd memory":  {nil, []APIKey{{Name: "k", KeyHash: strings.Replace(h, "m=1024", "m=999999999", 1)}}, "auth.api_keys[0].key_hash"},
		"bad glob":       {[]User{{Name: "a", PasswordHash: h, Cameras: []string{"gate-["}}}, nil, "auth.users[0].cameras[0]"},
		"empty glob":     {[]User{{Name: "a", PasswordHash: h, Cameras: []string{""}}}, nil, "auth.users[0].cameras[0]"},
	}
	d, err := NewDirectory([]User{{Name: "keep", PasswordHash: h, Cameras: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		err := d.Update(tc.users, tc.keys)
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: %v (want field %s)", name, err, tc.field)
		}
		if err != nil && (strings.Contains(err.Error(), h) || strings.Contains(err.Error(), "plaintext")) {
			t.Errorf("%s: error contains the hash", name)
		}
	}
	// Failed updates change nothing.
	if _, ok := d.Lookup("keep", KindUser); !ok {
		t.Fatal("failed update replaced the directory")
	}
	users, keys := d.Names()
	if len(users) != 1 || len(keys) != 0 {
		t.Fatalf("names %v %v", users, keys)
	}
}

func TestAPIKeyBearerByNameAndCache(t *testing.T) {
	f := newFixture(t)
	cred := "key:vms-1:" + vmsKey
	before := f.svc.hashCount()
	p, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/whep/gate-1", cred))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "vms-1" || p.Kind != KindAPIKey || p.Source != SourceLocal || p.Admin || p.TokenID != "" || !p.CanView("yard-1") || p.CanView("yard-2") {
		t.Fatalf("principal %+v", p)
	}
	if f.svc.hashCount()-before != 1 {
		t.Fatalf("%d verifications", f.svc.hashCount()-before)
	}
	// Cached: no argon2id on the next requests.
	for range 5 {
		if _, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", cred)); err != nil {
			t.Fatal(err)
		}
	}
	if f.svc.hashCount()-before != 1 {
		t.Fatalf("not cached (%d verifications)", f.svc.hashCount()-before)
	}
	// The cache expires.
	f.clock.Advance(61 * time.Second)
	before = f.svc.hashCount()
	if _, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", cred)); err != nil {
		t.Fatal(err)
	}
	if f.svc.hashCount()-before != 1 {
		t.Fatal("cache did not expire")
	}
	// Wrong keys fail (and are never cached as good); one verification
	// each at most, never one per configured key.
	for i, cred := range []string{"key:vms-1:wrong", "key:nokey:" + vmsKey, "key:vms-1", "key::x", vmsKey} {
		r := bearerRequest("GET", "/", cred)
		r.RemoteAddr = fmt.Sprintf("198.51.100.%d:1000", i+1) // stay clear of the lockout
		before := f.svc.hashCount()
		_, err := f.svc.AuthenticateRequest(r)
		if HTTPStatus(err) != http.StatusUnauthorized || f.svc.hashCount()-before > 1 {
			t.Errorf("%q: %v, %d verifications", cred, err, f.svc.hashCount()-before)
		}
	}
	// Rotating the key in config invalidates the cached old one at once.
	keys := []APIKey{{Name: "vms-1", KeyHash: mustHash(t, "new-key"), Cameras: []string{"gate-*"}}}
	if err := f.dir.Update(f.users, keys); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", cred)); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old key after rotation: %v", err)
	}
	if _, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", "key:vms-1:new-key")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(f.svc.Metrics.RequestFailures.WithLabelValues("bad_api_key")); got < 3 {
		t.Fatalf("request failure metric %v", got)
	}
}

// A bare "Bearer <secret>" is refused with a sentence naming the right
// form, costs no argon2id, and counts towards the address's lockout.
func TestBareKeyRefusedAndCounted(t *testing.T) {
	f := newFixture(t)
	before := f.svc.hashCount()
	for range 5 {
		_, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", vmsKey))
		w := httptest.NewRecorder()
		WriteError(w, err)
		if !errors.Is(err, ErrBareAPIKey) || w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "key:<name>:<secret>") ||
			!strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_request") {
			t.Fatalf("bare key: %v %d %s", err, w.Code, w.Body)
		}
	}
	if f.svc.hashCount() != before {
		t.Fatal("a bare key ran argon2id")
	}
	_, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", "key:vms-1:"+vmsKey))
	var lo *LockedOutError
	if !errors.As(err, &lo) || HTTPStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("bare key guessing not locked out: %v", err)
	}
	if f.svc.hashCount() != before {
		t.Fatal("argon2id ran while locked out")
	}
	if n := f.countEvents(t, "login_failed"); n != 5 {
		t.Fatalf("%d login_failed lines", n)
	}
}

func TestAuthenticatePassword(t *testing.T) {
	f := newFixture(t)
	p, err := f.svc.AuthenticatePassword("bob", bobPW, "10.1.1.1:5000", "rtsp")
	if err != nil || p.Name != "bob" || p.Kind != KindUser {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = f.svc.AuthenticatePassword("vms-1", vmsKey, "10.1.1.2", "rtsp")
	if err != nil || p.Kind != KindAPIKey || p.Admin {
		t.Fatalf("%+v %v", p, err)
	}
	// RTSP clients resend credentials on every request: cached.
	before := f.svc.hashCount()
	for range 10 {
		if _, err := f.svc.AuthenticatePassword("vms-1", vmsKey, "10.1.1.2", "rtsp"); err != nil {
			t.Fatal(err)
		}
	}
	if f.svc.hashCount() != before {
		t.Fatal("RTSP verification not cached")
	}
	if _, err := f.svc.AuthenticatePassword("bob", "wrong", "10.1.1.3", "rtsp"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticatePassword("nobody", "x", "10.1.1.3", "rtsp"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	var failed []auditLine
	for _, e := range f.auditEvents(t) {
		if e.Event == "login_failed" {
			failed = append(failed, e)
		}
	}
	if len(failed) != 2 || failed[0].Protocol != "rtsp" || failed[0].Remote != "10.1.1.3" || failed[0].Actor != "bob" {
		t.Fatalf("audit %+v", failed)
	}
	// Successful verifications are audited once (not per cached request).
	if n := f.countEvents(t, "login_ok"); n != 2 {
		t.Fatalf("%d login_ok events", n)
	}
	for _, e := range f.auditEvents(t) {
		if strings.Contains(e.Detail, bobPW) || strings.Contains(e.Detail, vmsKey) || strings.Contains(e.Detail, "wrong") {
			t.Fatalf("secret in audit: %+v", e)
		}
	}
	for range 5 {
		_, _ = f.svc.AuthenticatePassword("bob", "wrong", "10.1.1.4", "rtsp")
	}
	if _, err := f.svc.AuthenticatePassword("bob", bobPW, "10.1.1.4", "rtsp"); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("rtsp lockout per (name, address): %v", err)
	}
	if _, err := f.svc.AuthenticatePassword("bob", bobPW, "10.1.1.5", "rtsp"); err != nil {
		t.Fatalf("bob from another address: %v", err)
	}
}

func TestRecheckAfterDirectoryChange(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	p, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Recheck(p, RightView, "gate-2"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []Change
	cancel := f.svc.Subscribe(func(c Change) { mu.Lock(); got = append(got, c); mu.Unlock() })
	users := []User{f.users[0], {Name: "bob", PasswordHash: f.users[1].PasswordHash, Cameras: []string{"gate-2"}}}
	if err := f.dir.Update(users, f.keys); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Change{Kind: RightsChanged, Name: "bob", PrincipalKind: KindUser, Source: SourceLocal}) || got[1].Kind != DirectoryChanged {
		t.Fatalf("%+v", got)
	}
	if err := f.svc.Recheck(p, RightView, "gate-1"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("narrowed glob: %v", err)
	}
	if err := f.svc.Recheck(p, RightView, "gate-2"); err != nil {
		t.Fatal(err)
	}
	cur, ok := f.svc.Lookup("bob", KindUser)
	if !ok || cur.CanView("gate-1") || !cur.CanView("gate-2") {
		t.Fatalf("lookup %+v", cur)
	}
	if _, ok := f.svc.Lookup("bob", KindAPIKey); ok {
		t.Fatal("lookup ignores kind")
	}
	cancel()
	if err := f.dir.Update(users[:1], f.keys); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatal("cancelled subscriber still called")
	}
	if err := f.svc.Recheck(p, RightView, "gate-2"); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("removed user: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t)
	okHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal in context")
			return
		}
		_, _ = w.Write([]byte(p.Name))
	})
	user := f.svc.RequireAuth(okHandler)
	admin := f.svc.RequireAdmin(okHandler)
	aliceTok, bobTok := f.token(t, "alice", alicePW), f.token(t, "bob", bobPW)

	serve := func(h http.Handler, tok string) *testingRecorder {
		w := newRecorder()
		h.ServeHTTP(w, bearerRequest("GET", "/api/v1/admin/sessions", tok))
		return &testingRecorder{w.Code, w.Header(), w.Body.String()}
	}
	if r := serve(user, ""); r.code != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="cordon"` || r.body != `{"error":"authentication required"}`+"\n" {
		t.Fatalf("no token: %+v", r)
	}
	if r := serve(user, "garbage.garbage.garbage"); r.code != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="cordon", error="invalid_token"` {
		t.Fatalf("bad token: %+v", r)
	}
	if r := serve(user, bobTok); r.code != 200 || r.body != "bob" {
		t.Fatalf("bob: %+v", r)
	}
	if r := serve(admin, bobTok); r.code != 403 || !strings.Contains(r.body, "not permitted") {
		t.Fatalf("bob admin: %+v", r)
	}
	if r := serve(admin, "key:vms-1:"+vmsKey); r.code != 403 {
		t.Fatalf("api key admin: %+v", r)
	}
	if r := serve(admin, aliceTok); r.code != 200 || r.body != "alice" {
		t.Fatalf("alice admin: %+v", r)
	}
	if f.countEvents(t, "denied") != 2 {
		t.Fatal("admin denials not audited")
	}
	// CORS preflight passes RequireAuth, not RequireAdmin.
	pre := httptest.NewRequest(http.MethodOptions, "/whep/gate-1", nil)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	w := newRecorder()
	f.svc.RequireAdmin(okHandler).ServeHTTP(w, pre)
	if w.Code != 401 {
		t.Fatalf("preflight on admin: %d", w.Code)
	}
}

type testingRecorder struct {
	code   int
	header http.Header
	body   string
}

func TestRemoteAddrTrustedProxies(t *testing.T) {
	s := &Service{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.5:1234"
	r.Header.Set("X-Forwarded-For", "1.2.3.4")
	if got := s.RemoteAddr(r); got != "192.0.2.5" {
		t.Fatalf("untrusted peer's XFF believed: %s", got)
	}
	r.RemoteAddr = "10.1.1.1:1234"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.2.2.2")
	if got := s.RemoteAddr(r); got != "198.51.100.7" {
		t.Fatalf("trusted chain: %s", got)
	}
	r.Header.Set("X-Forwarded-For", "not-an-ip")
	if got := s.RemoteAddr(r); got != "10.1.1.1" {
		t.Fatalf("garbage XFF: %s", got)
	}
	none := &Service{}
	r.Header.Set("X-Forwarded-For", "1.2.3.4")
	if got := none.RemoteAddr(r); got != "10.1.1.1" {
		t.Fatalf("no trusted proxies: %s", got)
	}
}

func TestAuthorizeViewAndRecords(t *testing.T) {
	f := newFixture(t)
	p, err := f.svc.AuthenticatePassword("vms-1", vmsKey, "10.9.9.9:554", "rtsp")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AuthorizeView(p, "gate-1", "10.9.9.9", "rtsp"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AuthorizeView(p, "yard-2", "10.9.9.9", "rtsp"); !errors.Is(err, ErrForbidden) || HTTPStatus(err) != 403 {
		t.Fatalf("forbidden camera: %v", err)
	}
	if err := f.svc.RecordViewStart(p, "gate-1", "10.9.9.9", "rtsp"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RecordViewEnd(p, "gate-1", "10.9.9.9", "rtsp", 1500*time.Millisecond, 4096, "client closed"); err != nil {
		t.Fatal(err)
	}
	ev := f.auditEvents(t)
	last3 := ev[len(ev)-3:]
	if last3[0].Event != "denied" || last3[0].Camera != "yard-2" || last3[1].Event != "view_start" || last3[2].Event != "view_end" {
		t.Fatalf("audit %+v", last3)
	}
	b, _ := os.ReadFile(f.auditPath)
	if !strings.Contains(string(b), `"duration_s":1.5,"bytes":4096`) {
		t.Fatalf("view_end fields missing:\n%s", b)
	}
	if _, err := audit.VerifyFile(f.auditPath); err != nil {
		t.Fatal(err)
	}
	// Fail closed when the audit log cannot write.
	f.svc.Audit = failingAudit{}
	if err := f.svc.AuthorizeView(p, "gate-1", "10.9.9.9", "rtsp"); !errors.Is(err, ErrAuditUnavailable) || HTTPStatus(err) != 503 {
		t.Fatalf("broken audit: %v", err)
	}
	if err := f.svc.RecordViewStart(p, "gate-1", "10.9.9.9", "rtsp"); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("view start with broken audit: %v", err)
	}
}

func TestZeroDirectoryIsEmptyNotPanicking(t *testing.T) {
	dir := t.TempDir()
	al := &audit.Log{Path: dir + "/audit.log", Logger: quiet()}
	if err := al.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	s := &Service{StateDir: dir + "/state", Directory: &Directory{}, Audit: al, Logger: quiet()}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AuthenticatePassword("x", "y", "10.0.0.1", "rtsp"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateRequest(bearerRequest("GET", "/", "key:some:key")); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
}
