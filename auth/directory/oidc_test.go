package directory

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/internal/testtool/oidcop"
	"cordon/internal/testtool/testca"
)

// rp is a relying party (cordon's two handlers) on a loopback test server.
type rp struct {
	o   *OIDC
	srv *httptest.Server
	mu  sync.Mutex
	ids []Identity
}

func (e *rp) signedIn() []Identity {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ids)
}

func (e *rp) loginURL() string { return e.srv.URL + "/api/v1/oidc/login?return_to=/cameras" }

// newRP starts a relying party against the package's provider.
func newRP(t *testing.T, edit func(*OIDC)) *rp {
	t.Helper()
	e := &rp{}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.o = &OIDC{
		Issuer:       idp.Issuer,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURL:  e.srv.URL + "/api/v1/oidc/callback",
		CAFile:       idp.CA.CertFile,
		RoleMap: []RoleMapping{
			{Group: "cctv-operators", Roles: []string{"operator"}},
			{Group: "staff", Roles: []string{"wrong-case"}},
		},
		TokenTTL: 8 * time.Hour,
		Timeout:  healthyTimeout,
		Metrics:  NewMetrics(nil),
		Logger:   slog.New(slog.DiscardHandler),
		SignIn: func(w http.ResponseWriter, r *http.Request, id Identity) (string, error) {
			e.mu.Lock()
			e.ids = append(e.ids, id)
			e.mu.Unlock()
			return "", nil
		},
	}
	if edit != nil {
		edit(e.o)
	}
	idp.AllowRedirect(e.o.RedirectURL)
	if err := e.o.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.o.Close)
	mux.Handle("/api/v1/oidc/login", e.o.LoginHandler())
	mux.Handle("/api/v1/oidc/callback", e.o.CallbackHandler())
	mux.HandleFunc("/cameras", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "cordon cameras page") })
	return e
}

// login signs user in through the provider's login page; it returns the
// last status and body.
func login(t *testing.T, e *rp, user, pw string) (int, string) {
	t.Helper()
	c := idp.BrowserClient()
	resp, err := idp.Login(c, e.loginURL(), user, pw)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func TestOIDCSignIn(t *testing.T) {
	e := newRP(t, nil)
	start := time.Now()
	status, body := login(t, e, "alice", "alice-idp-1")
	if status != 200 || body != "cordon cameras page" {
		t.Fatalf("after sign-in: %d %q (want the return_to page)", status, body)
	}
	ids := e.signedIn()
	if len(ids) != 1 {
		t.Fatalf("identities %+v", ids)
	}
	id := ids[0]
	if id.Name != "alice" || id.Source != SourceOIDC || id.Subject != "sub-alice" {
		t.Errorf("identity %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"cctv-operators", "Staff"}) || !slices.Equal(id.Roles, []string{"operator"}) {
		t.Errorf("groups %v roles %v (role_map is exact-case: Staff is not staff)", id.Groups, id.Roles)
	}
	// the ID token lives 1h, token_ttl 8h: the session may last 1h
	if id.Expires.Before(start.Add(59*time.Minute)) || id.Expires.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("expires %v, want the ID token's expiry (~1h)", id.Expires)
	}
	if e.o.Health() != nil || testutil.ToFloat64(e.o.Metrics.Requests.WithLabelValues("oidc", "ok")) != 1 {
		t.Errorf("health %v, ok count %v", e.o.Health(), testutil.ToFloat64(e.o.Metrics.Requests.WithLabelValues("oidc", "ok")))
	}
	if e.o.pending.len() != 0 {
		t.Errorf("%d sign-ins still pending", e.o.pending.len())
	}
}

func TestOIDCSessionBoundedByTokenTTL(t *testing.T) {
	e := newRP(t, func(o *OIDC) { o.TokenTTL = 10 * time.Minute })
	login(t, e, "alice", "alice-idp-1")
	if ids := e.signedIn(); len(ids) != 1 || ids[0].Expires.After(time.Now().Add(10*time.Minute)) {
		t.Fatalf("expires %+v, want at most now+10m", ids)
	}
}

func TestOIDCNoMappedGroupAndUserinfo(t *testing.T) {
	e := newRP(t, nil)
	login(t, e, "bob", "bob-idp-1")
	login(t, e, "carl", "carl-idp-1")
	ids := e.signedIn()
	if len(ids) != 2 {
		t.Fatalf("identities %+v", ids)
	}
	if ids[0].Name != "bob" || len(ids[0].Roles) != 0 || !slices.Equal(ids[0].Groups, []string{"canteen"}) {
		t.Errorf("bob (no mapped group) %+v", ids[0])
	}
	if ids[1].Name != "carl" || !slices.Equal(ids[1].Roles, []string{"operator"}) {
		t.Errorf("carl (groups from userinfo) %+v", ids[1])
	}
}

func TestOIDCLoginRedirect(t *testing.T) {
	e := newRP(t, nil)
	rec := httptest.NewRecorder()
	e.o.LoginHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/oidc/login?return_to=//evil.example/x", nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	u, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || !strings.HasPrefix(u.String(), idp.Issuer+"/") {
		t.Fatalf("redirect to %q", rec.Header().Get("Location"))
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("nonce")) != 43 ||
		len(q.Get("state")) != 43 || q.Get("client_id") != testClientID || q.Get("response_type") != "code" ||
		!strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("authorization request %v", q)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode ||
		cookies[0].Path != "/api/v1/oidc/callback" || cookies[0].Name != cookiePrefix+q.Get("state")[:16] {
		t.Errorf("binding cookie %+v", cookies)
	}
	// return_to off this origin is dropped
	if p, ok := e.o.pending.take(q.Get("state")); !ok || p.returnTo != "/" {
		t.Errorf("return_to kept as %q", p.returnTo)
	}
}

// callbackURL goes through the provider but stops at cordon's callback:
// it returns the callback URL (code and state) and the browser.
func callbackURL(t *testing.T, e *rp, user, pw string) (string, *http.Client) {
	t.Helper()
	c := idp.BrowserClient()
	var cb string
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), e.o.RedirectURL) {
			cb = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := idp.Login(c, e.loginURL(), user, pw)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cb == "" {
		t.Fatal("never redirected to the callback")
	}
	return cb, c
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func TestOIDCStateRefusals(t *testing.T) {
	e := newRP(t, nil)
	cb, browser := callbackURL(t, e, "alice", "alice-idp-1")
	// another browser (no binding cookie) cannot complete it: login CSRF
	other := idp.BrowserClient()
	if status, body := get(t, other, cb); status != 400 || !strings.Contains(body, "another browser") {
		t.Errorf("callback from another browser: %d %s", status, body)
	}
	// and the state is now spent, even for the right browser
	browser.CheckRedirect = nil
	if status, body := get(t, browser, cb); status != 400 || !strings.Contains(body, "expired or was already used") {
		t.Errorf("callback after the state was spent: %d %s", status, body)
	}
	// replay: a completed callback cannot be used again
	cb, browser = callbackURL(t, e, "alice", "alice-idp-1")
	browser.CheckRedirect = nil
	if status, _ := get(t, browser, cb); status != 200 {
		t.Fatalf("first callback: %d", status)
	}
	if status, body := get(t, browser, cb); status != 400 || !strings.Contains(body, "already used") {
		t.Errorf("replayed callback: %d %s", status, body)
	}
	// unknown, malformed and missing states
	for _, q := range []string{"state=" + randomToken() + "&code=x", "state=short&code=x", "code=x",
		"state=" + strings.Repeat("a", 200) + "&code=x"} {
		if status, _ := get(t, browser, e.o.RedirectURL+"?"+q); status != 400 {
			t.Errorf("callback ?%s: %d, want 400", q, status)
		}
	}
	if n := len(e.signedIn()); n != 1 {
		t.Errorf("%d sign-ins reached the owner, want 1", n)
	}
}

func TestOIDCStateExpiresAndIsBounded(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newRP(t, func(o *OIDC) { o.Now = clock; o.MaxPending = 2; o.StateTTL = time.Minute })
	cb, browser := callbackURL(t, e, "alice", "alice-idp-1")
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	browser.CheckRedirect = nil
	if status, body := get(t, browser, cb); status != 400 || !strings.Contains(body, "expired") {
		t.Errorf("expired state: %d %s", status, body)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{302, 302, 503} {
		if status, _ := get(t, noFollow, e.loginURL()); status != want {
			t.Errorf("login %d: %d, want %d", i, status, want)
		}
	}
}

func TestOIDCProviderError(t *testing.T) {
	e := newRP(t, nil)
	cb, browser := callbackURL(t, e, "alice", "alice-idp-1")
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Del("code")
	q.Set("error", "access_denied<script>")
	u.RawQuery = q.Encode()
	browser.CheckRedirect = nil
	status, body := get(t, browser, u.String())
	if status != 401 || strings.Contains(body, "<script>") || !strings.Contains(body, "did not sign you in") {
		t.Errorf("provider error: %d %s", status, body)
	}
}

// tamper makes the provider's token endpoint return a modified ID token.
func tamper(t *testing.T, f func(claims map[string]any) (string, error)) {
	t.Helper()
	idp.SetTokenHook(func(tok string) string {
		claims, err := oidcop.Claims(tok)
		if err != nil {
			t.Error(err)
			return tok
		}
		out, err := f(claims)
		if err != nil {
			t.Error(err)
		}
		return out
	})
	t.Cleanup(func() { idp.SetTokenHook(nil) })
}

// Every way an ID token can be wrong is refused, through the real flow.
func TestOIDCBadIDTokens(t *testing.T) {
	e := newRP(t, nil)
	manyGroups := make([]any, MaxGroups+1)
	for i := range manyGroups {
		manyGroups[i] = "g"
	}
	cases := map[string]func(map[string]any) (string, error){
		"wrong audience": func(c map[string]any) (string, error) { c["aud"] = []any{"other-client"}; return idp.Sign(c) },
		"extra audience without azp": func(c map[string]any) (string, error) {
			c["aud"] = []any{testClientID, "other"}
			delete(c, "azp")
			return idp.Sign(c)
		},
		"wrong issuer": func(c map[string]any) (string, error) { c["iss"] = "https://evil.example"; return idp.Sign(c) },
		"expired": func(c map[string]any) (string, error) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return idp.Sign(c)
		},
		"nonce mismatch": func(c map[string]any) (string, error) { c["nonce"] = "another-nonce"; return idp.Sign(c) },
		"no nonce":       func(c map[string]any) (string, error) { delete(c, "nonce"); return idp.Sign(c) },
		"alg none":       func(c map[string]any) (string, error) { return oidcop.SignNone(c) },
		"HS256 with the client secret": func(c map[string]any) (string, error) {
			return oidcop.SignHS256(c, testClientSecret)
		},
		"unpublished key": func(c map[string]any) (string, error) { return oidcop.SignUnpublished(c) },
		"altered payload": func(c map[string]any) (string, error) {
			tok, err := idp.Sign(c)
			c["preferred_username"] = "admin"
			forged, _ := oidcop.SignNone(c)
			parts, fparts := strings.Split(tok, "."), strings.Split(forged, ".")
			return parts[0] + "." + fparts[1] + "." + parts[2], err
		},
		"oversized token": func(c map[string]any) (string, error) {
			c["groups"] = []any{strings.Repeat("x", maxIDTokenLen)}
			return idp.Sign(c)
		},
		"too many groups": func(c map[string]any) (string, error) { c["groups"] = manyGroups; return idp.Sign(c) },
		"group too long": func(c map[string]any) (string, error) {
			c["groups"] = []any{strings.Repeat("g", MaxGroupLen+1)}
			return idp.Sign(c)
		},
		"groups not list":  func(c map[string]any) (string, error) { c["groups"] = map[string]any{"a": 1}; return idp.Sign(c) },
		"control in name":  func(c map[string]any) (string, error) { c["preferred_username"] = "alice\nadmin"; return idp.Sign(c) },
		"no id_token":      func(c map[string]any) (string, error) { return "", nil },
		"garbage id_token": func(c map[string]any) (string, error) { return "not.a.jwt", nil },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			tamper(t, f)
			status, body := login(t, e, "alice", "alice-idp-1")
			if status != 401 || !strings.Contains(body, "failed") {
				t.Errorf("status %d body %s", status, body)
			}
		})
	}
	if n := len(e.signedIn()); n != 0 {
		t.Errorf("%d bad tokens reached the owner", n)
	}
	if got := testutil.ToFloat64(e.o.Metrics.Requests.WithLabelValues("oidc", "invalid")); got != float64(len(cases)) {
		t.Errorf("invalid count %v, want %d", got, len(cases))
	}
	// the same flow without tampering still works
	if status, _ := login(t, e, "alice", "alice-idp-1"); status != 200 || len(e.signedIn()) != 1 {
		t.Errorf("untampered sign-in after the bad ones: %d", status)
	}
}

// The provider rotates its signing key mid-test and drops the old one:
// cordon refetches the JWKS for the unknown key id and keeps signing in.
func TestOIDCKeyRotation(t *testing.T) {
	e := newRP(t, nil)
	if status, _ := login(t, e, "alice", "alice-idp-1"); status != 200 {
		t.Fatal("first sign-in failed")
	}
	fetches := idp.KeyFetches()
	if status, _ := login(t, e, "alice", "alice-idp-1"); status != 200 || idp.KeyFetches() != fetches {
		t.Errorf("second sign-in: %d, JWKS fetched %d more times (want cached)", status, idp.KeyFetches()-fetches)
	}
	if _, err := idp.RotateKey(true); err != nil {
		t.Fatal(err)
	}
	if status, _ := login(t, e, "alice", "alice-idp-1"); status != 200 {
		t.Errorf("sign-in after rotation: %d", status)
	}
	if idp.KeyFetches() != fetches+1 {
		t.Errorf("JWKS fetched %d times after rotation, want 1", idp.KeyFetches()-fetches)
	}
	if n := len(e.signedIn()); n != 3 {
		t.Errorf("%d sign-ins", n)
	}
}

// The issuer unreachable: each case is a 503 and a health error naming
// its reason. Only "never answers" is timed (the answer must come at the
// deadline); the others answer, so they get a generous Timeout and what is
// checked is that the reason names the answer.
func TestOIDCIssuerUnreachable(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*OIDC)
		reason  string
		timeout time.Duration
	}{
		{"nothing listening", func(o *OIDC) { o.Issuer = "https://" + closedAddr(t) }, "cannot connect", healthyTimeout},
		{"never answers", func(o *OIDC) { o.Issuer = "https://" + blackholeAddr(t) }, "no answer within " + deadlineTimeout.String(), deadlineTimeout},
		{"untrusted CA", func(o *OIDC) { o.CAFile = "" }, "TLS failed: x509: certificate signed by unknown authority", healthyTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newRP(t, func(o *OIDC) { o.Timeout = c.timeout; c.edit(o) })
			var status int
			var body string
			took, late := timeLate(func() { status, body = get(t, &http.Client{}, e.loginURL()) })
			if status != 503 || !strings.Contains(body, "Cannot reach") {
				t.Errorf("login: %d: %s", status, body)
			}
			if c.timeout == deadlineTimeout {
				checkDeadline(t, "login", took, late, c.timeout)
			}
			if h := e.o.Health(); !errors.Is(h, ErrUnavailable) || !strings.Contains(h.Error(), c.reason) {
				t.Errorf("health %v, want naming %q", h, c.reason)
			}
			if up := testutil.ToFloat64(e.o.Metrics.Up.WithLabelValues("oidc")); up != 0 {
				t.Errorf("up = %v", up)
			}
		})
	}
}

// fakeIssuer serves a hand-written discovery document over TLS with the
// provider's CA (so only the document is wrong).
func fakeIssuer(t *testing.T, doc func(issuer string) string) string {
	t.Helper()
	leaf, err := idp.CA.Issue("fake-"+strings.ReplaceAll(t.Name(), "/", "-"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var issuer string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, doc(issuer))
	}))
	srv.TLS = tlsConfig(leaf)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	issuer = srv.URL
	return issuer
}

func TestOIDCDiscoveryRefused(t *testing.T) {
	cases := map[string]func(string) string{
		"jwks off origin": func(iss string) string {
			return `{"issuer":"` + iss + `","authorization_endpoint":"` + iss + `/auth","token_endpoint":"` + iss +
				`/token","jwks_uri":"https://keys.elsewhere.example/keys"}`
		},
		"token endpoint off origin": func(iss string) string {
			return `{"issuer":"` + iss + `","authorization_endpoint":"` + iss + `/auth","token_endpoint":"https://127.0.0.2:1/token","jwks_uri":"` + iss + `/keys"}`
		},
		"issuer mismatch": func(iss string) string {
			return `{"issuer":"https://other.example","authorization_endpoint":"` + iss + `/auth","token_endpoint":"` + iss + `/token","jwks_uri":"` + iss + `/keys"}`
		},
		"oversized document": func(iss string) string {
			return `{"issuer":"` + iss + `","pad":"` + strings.Repeat("x", 2<<20) + `"}`
		},
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			iss := fakeIssuer(t, doc)
			e := newRP(t, func(o *OIDC) { o.Issuer = iss })
			if status, _ := get(t, &http.Client{}, e.loginURL()); status != 503 {
				t.Errorf("login: %d, want 503", status)
			}
		})
	}
}

func TestOIDCConfigRefused(t *testing.T) {
	cases := map[string]func(*OIDC){
		"issuer: must be an https":     func(o *OIDC) { o.Issuer = strings.Replace(idp.Issuer, "https", "http", 1) },
		"client_id: must not be empty": func(o *OIDC) { o.ClientID = "" },
		"redirect_url: must be https":  func(o *OIDC) { o.RedirectURL = "http://cordon.example/api/v1/oidc/callback" },
		"redirect_url: must be an":     func(o *OIDC) { o.RedirectURL = "/api/v1/oidc/callback" },
		"role_map[0].group":            func(o *OIDC) { o.RoleMap = []RoleMapping{{Roles: []string{"x"}}} },
		"SignIn is required":           func(o *OIDC) { o.SignIn = nil },
		"ca_file":                      func(o *OIDC) { o.CAFile = "/nonexistent" },
	}
	for want, edit := range cases {
		o := &OIDC{Issuer: idp.Issuer, ClientID: "c", RedirectURL: "https://cordon.example/cb",
			SignIn: func(http.ResponseWriter, *http.Request, Identity) (string, error) { return "", nil }}
		edit(o)
		if err := o.Initialize(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error containing %q, got %v", want, err)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/cameras": "/cameras", "/a?b=c": "/a?b=c", "": "/", "//evil.example": "/", "/\\evil.example": "/",
		"https://evil.example/": "/", "javascript:alert(1)": "/", "/a\r\nSet-Cookie: x": "/", "cameras": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupsFrom(t *testing.T) {
	claims := map[string]any{
		"groups":       []any{"a", "b"},
		"one":          "solo",
		"realm_access": map[string]any{"roles": []any{"r1"}},
		"dotted.key":   []any{"literal"},
		"mixed":        []any{"a", 1.0},
		"null":         nil,
	}
	for claim, want := range map[string][]string{"groups": {"a", "b"}, "one": {"solo"}, "realm_access.roles": {"r1"},
		"dotted.key": {"literal"}, "absent": {}, "realm_access.none": {}, "null": {}} {
		got, _, err := groupsFrom(claims, claim)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", claim, got, err, want)
		}
	}
	if _, _, err := groupsFrom(claims, "mixed"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("mixed list: %v", err)
	}
}

func tlsConfig(leaf *testca.Leaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
}
