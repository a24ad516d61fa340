package oidcop

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestProvider checks the fixture as a relying party would see it:
// discovery, the login page (wrong and right password), the code, the
// token endpoint with PKCE, JWKS rotation and the token hook.
func TestProvider(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(dir, "rp", "rp-secret-0123456789abcdef0123456789", User{Username: "ann", Password: "pw", Groups: []string{"g1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := p.HTTPClient()
	defer c.CloseIdleConnections()
	var disc map[string]any
	getJSON(t, c, p.Issuer+"/.well-known/openid-configuration", &disc)
	if disc["issuer"] != p.Issuer || !strings.HasPrefix(disc["jwks_uri"].(string), p.Issuer) {
		t.Fatalf("discovery %v", disc)
	}
	// a relying party that only records the code
	codes := make(chan url.Values, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { codes <- r.URL.Query() }))
	defer rp.Close()
	p.AllowRedirect(rp.URL + "/cb")
	verifier := strings.Repeat("v", 43)
	authURL := p.Issuer + "/authorize?" + url.Values{
		"client_id": {"rp"}, "redirect_uri": {rp.URL + "/cb"}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"st"}, "nonce": {"nn"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
	}.Encode()
	b := p.BrowserClient()
	defer b.CloseIdleConnections()
	if _, err := p.Login(b, authURL, "ann", "wrong"); !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("wrong password: %v", err)
	}
	resp, err := p.Login(b, authURL, "ann", "pw")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q := <-codes
	if q.Get("state") != "st" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	kid, err := p.RotateKey(false)
	if err != nil {
		t.Fatal(err)
	}
	p.SetTokenHook(func(tok string) string { return tok + "x" })
	p.SetTokenHook(nil)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rp.URL + "/cb"},
		"code_verifier": {verifier}}
	req, _ := http.NewRequest("POST", p.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", p.ClientSecret)
	tr, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(tr.Body).Decode(&tok)
	tr.Body.Close()
	claims, err := Claims(tok["id_token"].(string))
	if err != nil || claims["nonce"] != "nn" || claims["preferred_username"] != "ann" || claims["aud"] == nil {
		t.Fatalf("id token claims %v %v (response %v)", claims, err, tok)
	}
	if g, _ := claims["groups"].([]any); len(g) != 1 || g[0] != "g1" {
		t.Errorf("groups %v", claims["groups"])
	}
	var jwks struct{ Keys []struct{ Kid string } }
	getJSON(t, c, p.Issuer+"/keys", &jwks)
	if len(jwks.Keys) != 2 || jwks.Keys[1].Kid != kid || p.KeyFetches() != 1 {
		t.Errorf("JWKS after rotation %+v (fetches %d)", jwks, p.KeyFetches())
	}
}

func getJSON(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v: %s", u, err, b)
	}
}

func s256(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
