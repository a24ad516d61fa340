package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

const nvrDigestSecret = "rtsp-only-secret-0123456789abcdef"

func digestFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	users, keys := f.users, f.keys
	keys[0].DigestHA1 = DigestHA1("vms-1", nvrDigestSecret)
	if err := f.dir.Update(users, keys); err != nil {
		t.Fatal(err)
	}
	return f
}

// response computes what an RTSP client sends.
func response(name, secret, method, uri, nonce, qop, nc, cnonce string) DigestResponse {
	ha1 := DigestHA1(name, secret)
	ha2 := md5hex(method + ":" + uri)
	r := md5hex(ha1 + ":" + nonce + ":" + ha2)
	if qop == "auth" {
		r = md5hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	}
	return DigestResponse{Username: name, Realm: DigestRealm, Nonce: nonce, URI: uri, Response: r, QOP: qop, NC: nc, CNonce: cnonce, Method: method}
}

func TestDigestSecretAndHA1(t *testing.T) {
	s1, err := NewDigestSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewDigestSecret()
	if s1 == s2 || !regexp.MustCompile(`^[a-z2-7]{32}$`).MatchString(s1) {
		t.Fatalf("secrets %q %q", s1, s2)
	}
	// RFC 2617 shape: MD5(user:realm:password), 32 lowercase hex digits.
	if h := DigestHA1("Mufasa", "Circle Of Life"); h != md5hex("Mufasa:cordon:Circle Of Life") || len(h) != 32 {
		t.Fatal(h)
	}
}

func TestAuthenticateDigest(t *testing.T) {
	f := digestFixture(t)
	uri := "rtsp://gw:8554/gate-1"
	for _, d := range []DigestResponse{
		response("vms-1", nvrDigestSecret, "DESCRIBE", uri, "n0nce-1", "", "", ""),
		response("vms-1", nvrDigestSecret, "SETUP", uri+"/trackID=0", "n0nce-1", "auth", "00000001", "c1"),
	} {
		p, err := f.svc.AuthenticateDigest(d, "10.2.2.2:40000", "rtsp")
		if err != nil || p.Name != "vms-1" || p.Kind != KindAPIKey || !p.CanView("gate-1") {
			t.Fatalf("%s: %+v %v", d.Method, p, err)
		}
	}
	// The first success for a nonce is audited once.
	if n := f.countEvents(t, "login_ok"); n != 1 {
		t.Fatalf("%d login_ok for one nonce", n)
	}
	// The login password (here the API key) does not work for Digest: the
	// HA1 comes from a separate secret.
	if _, err := f.svc.AuthenticateDigest(response("vms-1", vmsKey, "DESCRIBE", uri, "n0nce-2", "", "", ""), "10.2.2.3", "rtsp"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("login secret accepted for Digest: %v", err)
	}
	bad := []DigestResponse{
		response("bob", bobPW, "DESCRIBE", uri, "n", "", "", ""),         // no HA1 configured
		response("ghost", "x", "DESCRIBE", uri, "n", "", "", ""),         // unknown
		response("vms-1", "wrong", "DESCRIBE", uri, "n", "", "", ""),     // wrong secret
		response("vms-1", nvrDigestSecret, "PLAY", uri, "n", "", "", ""), // response for another method
	}
	other := response("vms-1", nvrDigestSecret, "DESCRIBE", uri, "n", "", "", "")
	other.Realm = "Login to 1234" // a camera's realm
	alg := response("vms-1", nvrDigestSecret, "DESCRIBE", uri, "n", "", "", "")
	alg.Algorithm = "SHA-256"
	bad = append(bad, other, alg)
	bad[3].Method = "DESCRIBE"
	for i, d := range bad {
		if _, err := f.svc.AuthenticateDigest(d, "10.3.3."+string(rune('1'+i)), "rtsp"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("bad digest %d accepted: %v", i, err)
		}
	}
	for _, e := range f.auditEvents(t) {
		if strings.Contains(e.Detail, nvrDigestSecret) || strings.Contains(e.Detail, DigestHA1("vms-1", nvrDigestSecret)) {
			t.Fatalf("secret in audit: %+v", e)
		}
	}
}

// 20 bad Digest guesses lock that address only: the right response from
// the guessing address is refused, from another address accepted.
func TestDigestLockout(t *testing.T) {
	f := digestFixture(t)
	uri := "rtsp://gw:8554/gate-1"
	var locked int
	for i := range 20 {
		_, err := f.svc.AuthenticateDigest(response("vms-1", "guess-"+string(rune('a'+i)), "DESCRIBE", uri, "n", "", "", ""), "10.4.4.4", "rtsp")
		if errors.Is(err, ErrLockedOut) {
			locked++
		} else if !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	if locked != 20-f.svc.Lockout.Threshold {
		t.Fatalf("%d of 20 guesses refused as locked", locked)
	}
	good := response("vms-1", nvrDigestSecret, "DESCRIBE", uri, "n", "", "", "")
	if _, err := f.svc.AuthenticateDigest(good, "10.4.4.4", "rtsp"); Explain(err).RTSPStatus != 503 || Explain(err).RetryAfter == 0 {
		t.Fatalf("right response from the guessing address: %v", err)
	}
	if _, err := f.svc.AuthenticateDigest(good, "10.4.4.5", "rtsp"); err != nil {
		t.Fatalf("right response from another address: %v", err)
	}
	if n := f.countEvents(t, "login_failed"); n != f.svc.Lockout.Threshold {
		t.Fatalf("%d login_failed", n)
	}
}

// Rotating the Digest secret ends what was authenticated with the old one,
// and only that: a password-authenticated principal of the same name stays.
func TestDigestRotationEndsDigestSessions(t *testing.T) {
	f := digestFixture(t)
	p, err := f.svc.AuthenticateDigest(response("vms-1", nvrDigestSecret, "DESCRIBE", "rtsp://gw/gate-1", "n", "", "", ""), "10.5.5.5", "rtsp")
	if err != nil {
		t.Fatal(err)
	}
	basic, err := f.svc.AuthenticatePassword("vms-1", vmsKey, "10.5.5.6", "rtsp")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []ChangeKind
	cancel := f.svc.Subscribe(func(c Change) { kinds = append(kinds, c.Kind) })
	defer cancel()
	keys := f.keys
	keys[0].DigestHA1 = DigestHA1("vms-1", "a-new-rtsp-secret")
	if err := f.dir.Update(f.users, keys); err != nil {
		t.Fatal(err)
	}
	if len(kinds) != 2 || kinds[0] != CredentialChanged {
		t.Fatalf("changes %v", kinds)
	}
	if err := f.svc.Recheck(p, RightView, "gate-1"); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("digest principal after rotation: %v", err)
	}
	if err := f.svc.Recheck(basic, RightView, "gate-1"); err != nil {
		t.Fatalf("basic principal after digest rotation: %v", err)
	}
	if !f.dir.DigestEnabled() {
		t.Fatal("DigestEnabled")
	}
}

// Doors whose verification auth does not do (LDAP binds, ONVIF) reserve
// an attempt first and report its outcome; failures count like any other.
func TestAttemptAndRecordFailure(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		a, err := f.svc.BeginAttempt("dora", "10.6.6.6:1", "http", SourceLDAP)
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if err := a.Failed("ldap bind refused"); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
		a.Failed("twice") // idempotent: counted once
	}
	if _, err := f.svc.BeginAttempt("dora", "10.6.6.6", "http", SourceLDAP); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("sixth attempt: %v", err)
	}
	a, err := f.svc.BeginAttempt("dora", "10.6.6.7", "http", SourceLDAP)
	if err != nil {
		t.Fatal(err)
	}
	a.Succeeded()
	c, _ := f.svc.BeginAttempt("dora", "10.6.6.7", "http", SourceLDAP)
	c.Cancel() // not judged
	var ldap int
	for _, e := range f.auditEvents(t) {
		if e.Event == "login_failed" && e.Actor == "dora" {
			ldap++
		}
	}
	if ldap != 5 {
		t.Fatalf("%d ldap failures audited", ldap)
	}
	b, _ := readFile(f.auditPath)
	if !strings.Contains(b, `"source":"ldap"`) {
		t.Fatal("login_failed does not carry the source")
	}
	// A failure a door detected itself.
	for range 4 {
		if err := f.svc.RecordAuthFailure("x", "10.8.8.8", "rtsp", "", "malformed Authorization"); !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	if err := f.svc.RecordAuthFailure("y", "10.8.8.8", "rtsp", "", "malformed Authorization"); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("fifth failure from the address: %v", err)
	}
	if err := f.svc.CheckLocked("z", "10.8.8.8:5"); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("CheckLocked: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	if err := f.svc.CheckLocked("z", "10.8.8.8"); err != nil {
		t.Fatalf("CheckLocked after expiry: %v", err)
	}
}
