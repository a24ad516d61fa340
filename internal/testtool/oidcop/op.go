// Package oidcop runs a real OpenID Provider on loopback for tests, built
// from zitadel/oidc's op package with in-memory storage: discovery, an
// authorization endpoint with PKCE (S256), a login page with a username
// and password form that a browser (or Login) goes through, the token
// endpoint, userinfo and JWKS, over HTTPS with a throw-away test CA.
//
// Tests can rotate the signing key mid-test (RotateKey), change a user's
// groups, shorten the ID token lifetime, sign arbitrary tokens with the
// provider's key (Sign) and tamper with the ID token the token endpoint
// returns (SetTokenHook) to play a hostile or broken provider.
//
// It lives in internal/testtool because the directory package's tests and
// the end-to-end browser tests share it.
package oidcop

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"cordon/internal/testtool/testca"
)

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is https://127.0.0.1:PORT.
	Issuer string
	// CA signed the provider's certificate; CA.CertFile is the ca_file.
	CA *testca.CA
	// ClientID and ClientSecret of the one registered client.
	ClientID     string
	ClientSecret string
	// GroupsClaim names the groups claim ("groups").
	GroupsClaim string

	srv        *httptest.Server
	store      *storage
	provider   *op.Provider
	mu         sync.Mutex
	redirects  []string
	lifetime   time.Duration
	tokenHook  func(idToken string) string
	keyFetches atomic.Int64
	logins     atomic.Int64
}

// Start runs a provider with its certificate files under dir, for one
// client (id and secret) and the given users. Close stops it.
func Start(dir, clientID, clientSecret string, users ...User) (*Provider, error) {
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, GroupsClaim: "groups", lifetime: time.Hour}
	var err error
	if p.CA, err = testca.New(dir, "oidc"); err != nil {
		return nil, err
	}
	leaf, err := p.CA.Issue("oidc-op", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.Issuer = "https://" + ln.Addr().String()
	p.store = &storage{p: p, requests: map[string]*authRequest{}, codes: map[string]string{},
		tokens: map[string]string{}, users: map[string]*User{}}
	for _, u := range users {
		p.AddUser(u)
	}
	if _, err := p.RotateKey(false); err != nil {
		_ = ln.Close()
		return nil, err
	}
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	p.provider, err = op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true},
		p.store, op.StaticIssuer(p.Issuer), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	p.srv = httptest.NewUnstartedServer(p.handler())
	_ = p.srv.Listener.Close()
	p.srv.Listener = ln
	// handshakes refused by clients that do not trust the CA are expected
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	p.srv.StartTLS()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

func (p *Provider) handler() http.Handler {
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(p.provider.IssuerFromRequest)
	mux.HandleFunc("GET /login", p.loginPage)
	mux.HandleFunc("POST /login", interceptor.HandlerFunc(p.loginPost))
	mux.HandleFunc("/oauth/token", p.tokenEndpoint)
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		p.keyFetches.Add(1)
		p.provider.ServeHTTP(w, r)
	})
	mux.Handle("/", p.provider)
	return mux
}

// AddUser adds or replaces a user.
func (p *Provider) AddUser(u User) {
	if u.Subject == "" {
		u.Subject = "sub-" + u.Username
	}
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.users[u.Username] = &u
}

// SetGroups changes a user's groups.
func (p *Provider) SetGroups(username string, groups ...string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	if u := p.store.users[username]; u != nil {
		u.Groups = groups
	}
}

// AllowRedirect registers a redirect_uri of the client.
func (p *Provider) AllowRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirects = append(p.redirects, uri)
}

func (p *Provider) redirectURIs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.redirects)
}

// SetIDTokenLifetime changes the lifetime of ID tokens issued from now on.
func (p *Provider) SetIDTokenLifetime(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lifetime = d
}

func (p *Provider) idTokenLifetime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lifetime
}

// RotateKey makes a new signing key (kid returned); the old keys stay
// published unless dropOld, as a provider does during a rotation.
func (p *Provider) RotateKey(dropOld bool) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	k := &key{id: "k-" + randomID()[:12], priv: priv}
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	if dropOld {
		p.store.keys = nil
	}
	p.store.keys = append(p.store.keys, k)
	return k.id, nil
}

// KeyFetches counts JWKS requests served.
func (p *Provider) KeyFetches() int64 { return p.keyFetches.Load() }

// Logins counts successful logins on the login page.
func (p *Provider) Logins() int64 { return p.logins.Load() }

// SetTokenHook makes the token endpoint replace the ID token it returns
// with hook(idToken) (nil = no change): a hostile or broken provider.
func (p *Provider) SetTokenHook(hook func(idToken string) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenHook = hook
}

// tokenEndpoint serves the real token endpoint and applies the hook.
func (p *Provider) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	hook := p.tokenHook
	p.mu.Unlock()
	if hook == nil {
		p.provider.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.provider.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	var resp map[string]any
	if rec.Code == http.StatusOK && json.Unmarshal(body, &resp) == nil {
		if tok, ok := resp["id_token"].(string); ok {
			resp["id_token"] = hook(tok)
			body, _ = json.Marshal(resp)
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Test identity provider: sign in</title></head>
<body><h1>Test identity provider</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label>Username <input id="username" name="username" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="login" type="submit">Sign in</button>
</form></body></html>`))

func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) {
	p.renderLogin(w, r.URL.Query().Get("authRequestID"), "")
}

func (p *Provider) renderLogin(w http.ResponseWriter, id, msg string) {
	var b bytes.Buffer
	if err := loginTmpl.Execute(&b, struct{ ID, Error string }{id, msg}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// loginPost checks the form and sends the browser back through the OP's
// authorization callback, which redirects to the client with a code.
func (p *Provider) loginPost(w http.ResponseWriter, r *http.Request) {
	id, user, pw := r.FormValue("authRequestID"), r.FormValue("username"), r.FormValue("password")
	s := p.store
	s.mu.Lock()
	a, okReq := s.requests[id]
	u, okUser := s.users[user]
	ok := okReq && okUser && u.Password != "" && sha256.Sum256([]byte(pw)) == sha256.Sum256([]byte(u.Password))
	if ok {
		a.subject, a.done, a.authTime = u.Subject, true, time.Now()
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		p.renderLogin(w, id, "Wrong username or password.")
		return
	}
	p.logins.Add(1)
	http.Redirect(w, r, op.AuthCallbackURL(p.provider)(r.Context(), id), http.StatusFound)
}

// HTTPClient returns a client that trusts the provider's CA.
func (p *Provider) HTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.CA.Pool(), MinVersion: tls.VersionTLS12}}}
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
