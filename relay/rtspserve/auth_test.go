package rtspserve

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"cordon/internal/testtool"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// wwwAuthenticate joins the challenges of an answer.
func wwwAuthenticate(h http.Header) string {
	return strings.Join(h.Values("WWW-Authenticate"), ", ")
}

// nonceOf reads the Digest nonce of a WWW-Authenticate value.
func nonceOf(t *testing.T, www string) (nonce string, stale bool) {
	t.Helper()
	for _, v := range strings.Split(www, ", Basic") {
		if !strings.HasPrefix(v, "Digest") {
			continue
		}
		var a headers.Authenticate
		if err := a.Unmarshal(base.HeaderValue{v}); err != nil {
			t.Fatalf("WWW-Authenticate %q: %v", v, err)
		}
		return a.Nonce, a.Stale != nil && strings.EqualFold(*a.Stale, "true")
	}
	t.Fatalf("no Digest challenge in %q", www)
	return "", false
}

func digestAuth(user, secret, nonce, method, uri, qop, nc string) string {
	ha2 := md5hex(method + ":" + uri)
	if qop == "" {
		return fmt.Sprintf(`Digest username="%s", realm="cordon", nonce="%s", uri="%s", response="%s"`,
			user, nonce, uri, md5hex(HA1(user, secret)+":"+nonce+":"+ha2))
	}
	resp := md5hex(HA1(user, secret) + ":" + nonce + ":" + nc + ":c0ffee:auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="cordon", nonce="%s", uri="%s", qop=auth, nc=%s, cnonce="c0ffee", response="%s"`,
		user, nonce, uri, nc, resp)
}

// Every request is authenticated against the current credentials: the
// connection that proved the old secret is refused its next request, and
// the owner sees (Conns) and can close (CloseConn) each authenticated
// connection.
func TestReauthenticatesEveryRequest(t *testing.T) {
	f := newFixture(t, false)
	rc := testtool.DialRTSP(t, f.srv.Addr().String(), "127.0.0.1")
	if st, _ := rc.Do("DESCRIBE", "gate", basicAuth("alice", "s3cret-A")); st != 200 {
		t.Fatalf("DESCRIBE: %d", st)
	}
	conns := f.srv.Conns()
	if len(conns) != 1 || conns[0].Viewer.Name != "alice" || conns[0].Camera != "gate" || conns[0].Viewer.Principal != "p-alice-s3cret-A" {
		t.Fatalf("Conns() = %+v", conns)
	}
	f.access.mu.Lock()
	f.access.secrets["alice"] = "rotated"
	f.access.mu.Unlock()
	if st, _ := rc.Do("DESCRIBE", "gate", basicAuth("alice", "s3cret-A")); st != 401 {
		t.Fatalf("DESCRIBE with the old password on the same connection: %d, want 401", st)
	}
	if st, _ := rc.Do("DESCRIBE", "gate", basicAuth("alice", "rotated")); st != 200 {
		t.Fatalf("DESCRIBE with the new password: %d", st)
	}
	if !f.srv.CloseConn(conns[0].ID, "ended: credentials changed") {
		t.Fatal("CloseConn found no connection")
	}
	if st, _ := rc.Do("OPTIONS", "gate", ""); st != 0 {
		t.Fatalf("a request after CloseConn: %d, want the connection closed", st)
	}
	if f.srv.CloseConn("nope", "x") {
		t.Error("CloseConn of an unknown id")
	}
}

// Digest: the server issues one nonce per connection and checks it; an
// expired or foreign nonce is challenged again (stale=TRUE) without
// counting a failure; a replayed nonce count, a wrong uri or a malformed
// header is a failure; a locked address gets 503 + Retry-After.
func TestDigestNoncesAndFailures(t *testing.T) {
	f := newFixture(t, true)
	var mu sync.Mutex
	now := time.Now()
	f.srv.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	addr := f.srv.Addr().String()
	uri := "rtsp://" + addr + "/gate"

	rc := testtool.DialRTSP(t, addr, "127.0.0.1")
	st, h := rc.Do("DESCRIBE", "gate", "")
	if st != 401 || !strings.Contains(wwwAuthenticate(h), "Digest") || strings.Contains(wwwAuthenticate(h), "Basic") {
		t.Fatalf("challenge: %d %q (Digest only: Basic is not offered without TLS)", st, wwwAuthenticate(h))
	}
	nonce, _ := nonceOf(t, wwwAuthenticate(h))
	if st, _ := rc.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", nonce, "DESCRIBE", uri, "", "")); st != 200 {
		t.Fatalf("Digest DESCRIBE: %d", st)
	}
	// qop=auth: the count must grow
	if st, _ := rc.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", nonce, "DESCRIBE", uri, "auth", "00000001")); st != 200 {
		t.Fatalf("Digest qop=auth nc=1: %d", st)
	}
	if st, _ := rc.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", nonce, "DESCRIBE", uri, "auth", "00000001")); st != 401 {
		t.Fatalf("replayed nc=1: %d, want 401", st)
	}
	if st, _ := rc.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", nonce, "DESCRIBE", "rtsp://"+addr+"/yard", "", "")); st != 401 {
		t.Fatalf("an answer for another uri: %d, want 401", st)
	}
	if st, _ := rc.Do("DESCRIBE", "gate", `Digest username="alice", realm="cordon"`); st != 401 {
		t.Fatalf("malformed: %d, want 401", st)
	}
	if d := f.access.failureDetails(); len(d) != 3 || !strings.Contains(d[0], "replayed") || !strings.Contains(d[1], "uri") || !strings.Contains(d[2], "malformed") {
		t.Fatalf("failures counted: %q", d)
	}

	// a nonce from another connection, and an expired one: challenged
	// again, not failures
	other := testtool.DialRTSP(t, addr, "127.0.0.1")
	if st, h := other.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", nonce, "DESCRIBE", uri, "", "")); st != 401 {
		t.Fatalf("another connection's nonce: %d", st)
	} else if n2, stale := nonceOf(t, wwwAuthenticate(h)); !stale || n2 == nonce {
		t.Fatalf("another connection's nonce: stale=%v, nonce reused %v", stale, n2 == nonce)
	}
	advance(DefaultNonceTTL + time.Second)
	st, h = rc.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", nonce, "DESCRIBE", uri, "", ""))
	fresh, stale := nonceOf(t, wwwAuthenticate(h))
	if st != 401 || !stale || fresh == nonce {
		t.Fatalf("expired nonce: %d stale=%v new nonce %v", st, stale, fresh != nonce)
	}
	if st, _ := rc.Do("DESCRIBE", "gate", digestAuth("alice", "s3cret-A", fresh, "DESCRIBE", uri, "", "")); st != 200 {
		t.Fatalf("with the fresh nonce: %d", st)
	}
	if d := f.access.failureDetails(); len(d) != 3 {
		t.Fatalf("stale nonces counted as failures: %q", d)
	}

	// lockout: checked before any work, even without credentials
	f.access.mu.Lock()
	f.access.lockAfter = 3
	f.access.mu.Unlock()
	checks := func() int { f.access.mu.Lock(); defer f.access.mu.Unlock(); return f.access.checks }
	before := checks()
	for _, a := range []string{"", digestAuth("alice", "s3cret-A", fresh, "DESCRIBE", uri, "", "")} {
		st, h := rc.Do("DESCRIBE", "gate", a)
		if st != 503 || h.Get("Retry-After") != "30" {
			t.Errorf("locked address, credentials %v: %d Retry-After %q, want 503 and 30", a != "", st, h.Get("Retry-After"))
		}
	}
	if checks() != before {
		t.Error("a locked address got its credentials verified")
	}
	// another address is not locked
	elsewhere := testtool.DialRTSP(t, addr, "127.0.0.2")
	if st, _ := elsewhere.Do("DESCRIBE", "gate", ""); st != 401 {
		t.Errorf("another address: %d, want a challenge", st)
	}
}

func TestParseAuthorization(t *testing.T) {
	for _, c := range []struct {
		in      string
		ok      bool
		user    string
		scheme  string
		qop, nc string
	}{
		{basicAuth("alice", "pw:with:colons"), true, "alice", schemeBasic, "", ""},
		{`Digest username="a\"b", realm="cordon", nonce="n", uri="rtsp://h/x", response="r", algorithm=MD5`, true, `a"b`, schemeDigest, "", ""},
		{`digest username="a",realm="cordon",nonce="n",uri="u",response="r",qop=auth,nc=00000001,cnonce="c"`, true, "a", schemeDigest, "auth", "00000001"},
		{`Digest username="a", realm="cordon", nonce="n", uri="u"`, false, "a", schemeDigest, "", ""},
		{`Digest username="a", username="b", realm="cordon", nonce="n", uri="u", response="r"`, false, "a", schemeDigest, "", ""},
		{`Digest username="a", realm="cordon", nonce="n", uri="u", response="r", qop=auth`, false, "a", schemeDigest, "", ""},
		{`Digest username="a`, false, "", schemeDigest, "", ""},
		{"Basic !!!", false, "", "", "", ""},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")), false, "nocolon", "", "", ""},
		{"Bearer x", false, "", "", "", ""},
		{"Digest " + strings.Repeat("a", maxAuthorization), false, "", "", "", ""},
	} {
		cr, err := parseAuthorization(base.HeaderValue{c.in})
		if (err == nil) != c.ok || cr.user != c.user || (c.ok && (cr.scheme != c.scheme || cr.digest.QOP != c.qop || cr.digest.NC != c.nc)) {
			t.Errorf("%q: %+v %v", c.in, cr, err)
		}
	}
	if _, err := parseAuthorization(nil); err != errNoCredentials {
		t.Errorf("no header: %v", err)
	}
	if _, err := parseAuthorization(base.HeaderValue{"Basic a", "Basic b"}); err == nil {
		t.Error("two headers accepted")
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		basicAuth("alice", "s3cret"),
		`Digest username="alice", realm="cordon", nonce="abc", uri="rtsp://h:8554/gate", response="0123456789abcdef0123456789abcdef"`,
		`Digest username="a",realm="cordon",nonce="n",uri="u",response="r",qop=auth,nc=00000001,cnonce="c"`,
		`Digest username="a\\\"`, "Basic", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseAuthorization(base.HeaderValue{s})
		if err != nil {
			return
		}
		switch c.scheme {
		case schemeBasic:
			if c.user == "" || strings.Contains(c.user, ":") {
				t.Fatalf("Basic name %q", c.user)
			}
		case schemeDigest:
			// what was read is what is written back: quoting round-trips
			d := c.digest
			q := func(v string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"` }
			out := fmt.Sprintf("Digest username=%s, realm=%s, nonce=%s, uri=%s, response=%s, algorithm=%s", q(d.Username), q(d.Realm), q(d.Nonce), q(d.URI), q(d.Response), q(d.Algorithm))
			for _, kv := range [][2]string{{"qop", d.QOP}, {"nc", d.NC}, {"cnonce", d.CNonce}} {
				if kv[1] != "" {
					out += ", " + kv[0] + "=" + q(kv[1])
				}
			}
			again, err := parseAuthorization(base.HeaderValue{out})
			if len(out) <= maxAuthorization && (err != nil || again.digest != d) {
				t.Fatalf("%q -> %+v -> %q -> %+v %v", s, d, out, again.digest, err)
			}
		default:
			t.Fatalf("scheme %q", c.scheme)
		}
	})
}
