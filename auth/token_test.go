package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func authErr(f *fixture, svc *Service, tok string) error {
	_, err := svc.AuthenticateRequest(bearerRequest(http.MethodGet, "/api/v1/cameras", tok))
	return err
}

func TestTokenExpiry(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	f.clock.Advance(time.Hour + 4*time.Second) // within the 5 s leeway
	if err := authErr(f, f.svc, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	if err := authErr(f, f.svc, tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestTokenNotYetValid(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	f.clock.Advance(-time.Minute) // clock stepped back: iat/nbf in the future
	if err := authErr(f, f.svc, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("future token: %v", err)
	}
}

func TestLogoutRevokesEverywhereAndAcrossRestart(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	other := f.token(t, "bob", bobPW)
	var changes []Change
	cancel := f.svc.Subscribe(func(c Change) { changes = append(changes, c) })
	defer cancel()
	p, err := f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err != nil {
		t.Fatal(err)
	}

	w := newRecorder()
	f.svc.LogoutHandler().ServeHTTP(w, bearerRequest(http.MethodPost, "/api/v1/logout", tok))
	if w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if err := authErr(f, f.svc, tok); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("after logout: %v", err)
	}
	if len(changes) != 1 || changes[0] != (Change{Kind: TokenRevoked, Name: "bob", PrincipalKind: KindUser, Source: SourceLocal, TokenID: p.TokenID}) {
		t.Fatalf("changes %+v", changes)
	}
	if err := f.svc.Recheck(p, RightView, "gate-1"); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("recheck after logout: %v", err)
	}
	if f.countEvents(t, "logout") != 1 {
		t.Fatal("logout not audited")
	}
	// Logging out again: the token is dead.
	w = newRecorder()
	f.svc.LogoutHandler().ServeHTTP(w, bearerRequest(http.MethodPost, "/api/v1/logout", tok))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("second logout: %d", w.Code)
	}

	// A new Service on the same state dir: same key, same revocations.
	svc2 := f.restart(t)
	if err := authErr(f, svc2, tok); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("after restart: %v", err)
	}
	if err := authErr(f, svc2, other); err != nil {
		t.Fatalf("unrevoked token after restart: %v", err)
	}
}

func TestRevocationsPrunedAtStart(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	p, _ := f.svc.AuthenticateRequest(bearerRequest("GET", "/", tok))
	if err := f.svc.Logout(p, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.stateDir, revokedFileName)
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), p.TokenID+" ") {
		t.Fatalf("revocation not persisted: %q", b)
	}
	// A torn final line (crash mid-write) is ignored.
	if err := os.WriteFile(path, append(b, "abc"...), 0o600); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	svc2 := f.restart(t)
	b, _ = os.ReadFile(path)
	if len(b) != 0 {
		t.Fatalf("expired revocation not pruned: %q", b)
	}
	if len(svc2.revoked.m) != 0 {
		t.Fatal("expired revocation kept in memory")
	}
	// A malformed complete line is refused (state damaged).
	if err := os.WriteFile(path, []byte("nothex 123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := &Service{StateDir: f.stateDir, Directory: f.dir, Audit: f.audit, Logger: quiet()}
	if err := bad.Initialize(); err == nil {
		bad.Close()
		t.Fatal("malformed revocations accepted")
	}
}

// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestTokenRejections(t *testing.T) {
	f := newFixture(t)
	good := f.token(t, "bob", bobPW)
	parts := strings.Split(good, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", good)
	}
	dec := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := dec(parts[1])

	// A token from another installation (different key).
	g := newFixtureWith(t, t.TempDir(), f.users, f.keys)
	foreign := g.token(t, "alice", alicePW)

	// alg confusion: HS256 keyed with our public key; and alg none.
	pub := f.svc.tokens.pub
	claims := jwt.MapClaims{}
	for k, v := range map[string]any{"iss": "cordon", "sub": "alice", "knd": "user", "jti": strings.Repeat("ab", 16),
		"iat": f.clock.Now().Unix(), "nbf": f.clock.Now().Unix(), "exp": f.clock.Now().Add(time.Hour).Unix()} {
		claims[k] = v
	}
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// Right key, but claims we never issue.
	signed := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(f.svc.tokens.priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range claims {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}

	flipped := []byte(dec(parts[2])) // the signature with its first byte changed (always: XOR, not a fixed byte)
	flipped[0] ^= 0xff
	cases := map[string]struct {
		tok  string
		want error
	}{
		"tampered payload (sub=alice)": {parts[0] + "." + enc(strings.Replace(payload, `"sub":"bob"`, `"sub":"alice"`, 1)) + "." + parts[2], ErrInvalidToken},
		"tampered signature":           {parts[0] + "." + parts[1] + "." + enc(string(flipped)), ErrInvalidToken},
		"wrong key":                    {foreign, ErrInvalidToken},
		"alg HS256 with public key":    {hs, ErrInvalidToken},
		"alg none":                     {none, ErrInvalidToken},
		"header alg swapped":           {enc(`{"alg":"HS256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], ErrInvalidToken},
		"oversized":                    {good + strings.Repeat("A", MaxTokenLen), ErrInvalidToken},
		"bad base64":                   {parts[0] + ".!!!." + parts[2], ErrInvalidToken},
		"padded base64":                {parts[0] + "." + parts[1] + "==." + parts[2], ErrInvalidToken},
		"two parts (a bare key)":       {parts[0] + "." + parts[1], ErrBareAPIKey},
		"empty parts":                  {"..", ErrInvalidToken},
		"wrong issuer":                 {signed(with("iss", "other")), ErrInvalidToken},
		"no exp":                       {signed(with("exp", nil)), ErrInvalidToken},
		"no jti":                       {signed(with("jti", nil)), ErrInvalidToken},
		"short jti":                    {signed(with("jti", "abc")), ErrInvalidToken},
		"api key kind":                 {signed(with("knd", "api_key")), ErrInvalidToken},
		"unknown user":                 {signed(with("sub", "mallory")), ErrPrincipalGone},
		"stale credential":             {signed(with("crd", "0000000000000000")), ErrPrincipalGone},
	}
	for name, tc := range cases {
		err := authErr(f, f.svc, tc.tok)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
		if HTTPStatus(err) != http.StatusUnauthorized {
			t.Errorf("%s: status %d", name, HTTPStatus(err))
		}
		if err != nil && strings.Contains(err.Error(), tc.tok[:min(len(tc.tok), 20)]) {
			t.Errorf("%s: error echoes the token", name)
		}
	}
	if err := authErr(f, f.svc, good); err != nil {
		t.Fatalf("good token rejected: %v", err)
	}
}

func TestTokenInQueryStringRejected(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	for _, target := range []string{"/api/v1/cameras?access_token=" + tok, "/whep/gate-1?token=" + tok, "/x?api_key=" + vmsKey} {
		r := bearerRequest(http.MethodGet, target, "")
		if _, err := f.svc.AuthenticateRequest(r); !errors.Is(err, ErrTokenInQuery) {
			t.Errorf("%s: %v", target, err)
		}
		// Even alongside a valid header.
		r = bearerRequest(http.MethodGet, target, tok)
		if _, err := f.svc.AuthenticateRequest(r); !errors.Is(err, ErrTokenInQuery) {
			t.Errorf("%s with header: %v", target, err)
		}
		w := newRecorder()
		WriteError(w, ErrTokenInQuery)
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="cordon"`) {
			t.Errorf("status %d %v", w.Code, w.Header())
		}
	}
	// Unrelated query parameters are fine.
	if _, err := f.svc.AuthenticateRequest(bearerRequest(http.MethodGet, "/api/v1/cameras?x=1", tok)); err != nil {
		t.Fatal(err)
	}
}

func TestAuthorizationHeaderForms(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "bob", bobPW)
	r := bearerRequest("GET", "/", "")
	r.Header.Set("Authorization", "bearer  "+tok)
	if _, err := f.svc.AuthenticateRequest(r); err != nil {
		t.Fatalf("lower-case scheme: %v", err)
	}
	for name, h := range map[string][]string{
		"none":       nil,
		"basic":      {"Basic Ym9iOmJvYg=="},
		"empty":      {"Bearer "},
		"two values": {"Bearer " + tok, "Bearer " + tok},
	} {
		r := bearerRequest("GET", "/", "")
		for _, v := range h {
			r.Header.Add("Authorization", v)
		}
		_, err := f.svc.AuthenticateRequest(r)
		if HTTPStatus(err) != http.StatusUnauthorized {
			t.Errorf("%s: %v", name, err)
		}
		if name == "none" && !errors.Is(err, ErrNoCredentials) {
			t.Errorf("none: %v", err)
		}
	}
}

func TestPasswordChangeAndRemovalInvalidateTokens(t *testing.T) {
	f := newFixture(t)
	tokBob := f.token(t, "bob", bobPW)
	tokAlice := f.token(t, "alice", alicePW)
	var kinds []ChangeKind
	cancel := f.svc.Subscribe(func(c Change) { kinds = append(kinds, c.Kind) })
	defer cancel()
	users := []User{f.users[0], {Name: "bob", PasswordHash: mustHash(t, "new-password"), Cameras: []string{"gate-*"}}}
	if err := f.dir.Update(users, f.keys); err != nil {
		t.Fatal(err)
	}
	if len(kinds) != 2 || kinds[0] != CredentialChanged || kinds[1] != DirectoryChanged {
		t.Fatalf("changes %v", kinds)
	}
	if err := authErr(f, f.svc, tokBob); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("bob's token after password change: %v", err)
	}
	if err := authErr(f, f.svc, tokAlice); err != nil {
		t.Fatalf("alice unaffected: %v", err)
	}
	if err := f.dir.Update(users[1:], f.keys); err != nil {
		t.Fatal(err)
	}
	if err := authErr(f, f.svc, tokAlice); !errors.Is(err, ErrPrincipalGone) {
		t.Fatalf("removed user's token: %v", err)
	}
}

func TestStateDirAndKeyFiles(t *testing.T) {
	f := newFixture(t)
	st, err := os.Stat(f.stateDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir %v %v", st.Mode(), err)
	}
	kp := filepath.Join(f.stateDir, keyFileName)
	st, err = os.Stat(kp)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key %v %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(kp)
	k, err := decodeKey(b)
	if err != nil || !k.Equal(f.svc.tokens.priv) {
		t.Fatalf("key file does not hold the signing key: %v", err)
	}
	if err := os.Chmod(kp, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Service{StateDir: f.stateDir, Directory: f.dir, Audit: f.audit, Logger: quiet()}
	if err := s.Initialize(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		s.Close()
		t.Fatalf("world-readable key accepted: %v", err)
	}
	if err := os.WriteFile(kp, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Initialize(); err == nil {
		s.Close()
		t.Fatal("garbage key accepted")
	}
	// A loose pre-existing state dir is tightened.
	loose := filepath.Join(t.TempDir(), "st")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	s2 := &Service{StateDir: loose, Directory: f.dir, Audit: f.audit, Logger: quiet()}
	if err := s2.Initialize(); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if st, _ := os.Stat(loose); st.Mode().Perm() != 0o700 {
		t.Fatalf("loose dir left %v", st.Mode().Perm())
	}
}
