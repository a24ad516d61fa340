package httpdigest

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// RFC 2617 section 3.5's example.
func TestRFC2617Vector(t *testing.T) {
	ha1 := hexHash("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
	ha2 := hexHash("MD5", "GET", "/dir/index.html")
	if got := hexHash("MD5", ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth", ha2); got != "6629fae49393a05397450978507c4ef1" {
		t.Fatal(got)
	}
}

func TestChallengeParsing(t *testing.T) {
	// Hikvision-style: Basic first, then Digest with an unquoted algorithm
	c, err := FindChallenge([]string{
		`Basic realm="IP Camera(C1234)"`,
		`Digest qop="auth", realm="IP Camera(C1234)", nonce="4e5449794d7a4d7a4e7a6f32:1a2b", stale="FALSE", algorithm=MD5`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Realm != "IP Camera(C1234)" || c.Nonce != "4e5449794d7a4d7a4e7a6f32:1a2b" || c.Algorithm != "MD5" || len(c.QOP) != 1 || c.Stale {
		t.Fatalf("%+v", c)
	}
	if c, err := ParseChallenge(`Digest realm="r", nonce="new", stale=TRUE`); err != nil || !c.Stale {
		t.Fatalf("stale: %+v %v", c, err)
	}
	c, err = ParseChallenge(`digest realm="a\"b", nonce="n", opaque="o", qop="auth,auth-int", algorithm="SHA-256"`)
	if err != nil || c.Realm != `a"b` || c.Opaque != "o" || c.Algorithm != "SHA-256" || len(c.QOP) != 2 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{
		`Basic realm="x"`, `Digest realm="x"`, `Digest nonce="n", algorithm=SHA-512-256-sess`,
		`Digest nonce="unterminated`, `Digest nonce`, `Digest ` + strings.Repeat(`a=b,`, 40) + `nonce=x`,
		`Digest nonce="` + strings.Repeat("x", MaxHeaderLen) + `"`,
	} {
		if _, err := ParseChallenge(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := FindChallenge(nil); err != ErrNoDigest {
		t.Fatal(err)
	}
}

func TestClientServer(t *testing.T) {
	now := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	s, err := NewServer("democam")
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return now }
	users := func(u string) (string, bool) { return "pw", u == "admin" }
	try := func(user, pass, uri, reqURI string) error {
		c, err := ParseChallenge(s.Challenge())
		if err != nil {
			t.Fatal(err)
		}
		auth, err := c.Authorization("POST", uri, user, pass, 1)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", reqURI, nil)
		r.Header.Set("Authorization", auth)
		_, err = s.Verify(r, users)
		return err
	}
	if err := try("admin", "pw", "/onvif/ptz", "/onvif/ptz"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"wrong password": try("admin", "nope", "/onvif/ptz", "/onvif/ptz"),
		"unknown user":   try("root", "pw", "/onvif/ptz", "/onvif/ptz"),
		"uri mismatch":   try("admin", "pw", "/onvif/other", "/onvif/ptz"),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// a nonce older than NonceTTL is refused
	c, _ := ParseChallenge(s.Challenge())
	auth, _ := c.Authorization("POST", "/x", "admin", "pw", 1)
	now = now.Add(6 * time.Minute)
	r := httptest.NewRequest("POST", "/x", nil)
	r.Header.Set("Authorization", auth)
	if _, err := s.Verify(r, users); err == nil {
		t.Fatal("stale nonce accepted")
	}
	// a forged nonce is refused
	r.Header.Set("Authorization", strings.Replace(auth, c.Nonce, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1))
	if _, err := s.Verify(r, users); err == nil {
		t.Fatal("forged nonce accepted")
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Digest qop="auth", realm="IP Camera(C1234)", nonce="abc", stale="FALSE", algorithm=MD5`)
	f.Add(`Digest realm="a\"b", nonce="n\\", opaque=o,`)
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseChallenge(v)
		if err != nil {
			return
		}
		if c.Nonce == "" {
			t.Fatal("challenge without nonce accepted")
		}
		_, _ = c.Authorization("POST", "/", "u", "p", 1)
	})
}
