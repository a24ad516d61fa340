package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"cordon/internal/addrlimit"
)

// OIDC defaults.
const (
	DefaultOIDCTimeout = 10 * time.Second
	DefaultStateTTL    = 10 * time.Minute
	DefaultMaxPending  = 10000
	// DefaultMaxPendingPerAddr bounds sign-ins in progress from one
	// address (IPv6: one /64): a control room behind one NAT starting a
	// shift fits; one attacker cannot fill DefaultMaxPending.
	DefaultMaxPendingPerAddr = 32
	// DefaultLoginRate and DefaultLoginBurst limit GET /oidc/login per
	// address (sign-ins per second, and at once).
	DefaultLoginRate     = 0.5
	DefaultLoginBurst    = 20
	DefaultGroupsClaim   = "groups"
	DefaultUsernameClaim = "preferred_username"
	// discoveryRetry is the least time between two discovery attempts
	// after one failed (so a down issuer is not hammered).
	discoveryRetry = 5 * time.Second
)

// signingAlgs are the ID token algorithms accepted: asymmetric only
// ("none" and HS* are refused whatever the token or the issuer says).
var signingAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512, gooidc.EdDSA,
}

// SignInFunc is what the callback hands a verified identity to: the owner
// issues cordon's own session (no longer than id.Expires) and returns
// where to send the browser (a local path). id.Roles may be empty: the
// owner shows a page saying the user has no rights in cordon. An error is
// shown to the user as a plain page (status 500, or the StatusError's).
type SignInFunc func(w http.ResponseWriter, r *http.Request, id Identity) (redirectTo string, err error)

// StatusError lets a SignInFunc choose the status and sentence of the
// error page.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

// OIDC signs people in through an OpenID Provider with the authorization
// code flow, PKCE (S256) and a nonce. Set the exported fields, then call
// Initialize; mount LoginHandler and CallbackHandler.
type OIDC struct {
	// Issuer is the provider's issuer URL (https://), e.g.
	// https://idp.example/realms/police. Discovery, JWKS, the token and
	// userinfo endpoints are fetched from its origin only.
	Issuer string
	// ClientID and ClientSecret of cordon at the provider (secret "" = a
	// public client, PKCE only).
	ClientID     string
	ClientSecret string
	// RedirectURL is cordon's callback as registered at the provider,
	// e.g. https://cordon.example/api/v1/oidc/callback.
	RedirectURL string
	// CAFile is a PEM bundle for a private issuer ("" = system roots).
	CAFile string
	// GroupsClaim names the claim with the groups (default "groups");
	// a dotted path ("realm_access.roles") reaches into objects. When the
	// ID token lacks it, the userinfo endpoint is asked.
	GroupsClaim string
	// UsernameClaim names the claim used as the principal name (default
	// "preferred_username"; "sub" when it is missing).
	UsernameClaim string
	// Scopes requested besides "openid" (default profile, email).
	Scopes []string
	// RoleMap maps group names (exact, case-sensitive) to roles.
	RoleMap []RoleMapping
	// DisplayName is the provider's name on the sign-in button ("" = the
	// issuer's host).
	DisplayName string
	// TokenTTL bounds Identity.Expires (0 = the ID token's expiry only).
	TokenTTL time.Duration
	// Timeout bounds each request to the issuer (0 = DefaultOIDCTimeout).
	Timeout time.Duration
	// StateTTL is how long a started sign-in may take (0 = DefaultStateTTL);
	// MaxPending bounds sign-ins in progress (0 = DefaultMaxPending),
	// MaxPendingPerAddr those from one address (0 =
	// DefaultMaxPendingPerAddr).
	StateTTL          time.Duration
	MaxPending        int
	MaxPendingPerAddr int
	// LoginRate (per second) and LoginBurst limit starting sign-ins per
	// address (0 = DefaultLoginRate, DefaultLoginBurst).
	LoginRate  float64
	LoginBurst int
	// RemoteAddr returns a request's client address (the wiring passes
	// auth's, which honours trusted proxies); nil = the TCP peer.
	RemoteAddr func(*http.Request) string
	// SignIn receives verified identities. Required.
	SignIn SignInFunc
	// ErrorPage writes a failed sign-in's page (nil = a plain HTML page).
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, message string)
	// Logger (nil = slog.Default()); never receives a token or a code.
	Logger *slog.Logger
	// Metrics (nil = none).
	Metrics *Metrics
	// Now is the clock (nil = time.Now).
	Now func() time.Time

	issuer       *url.URL
	redirect     *url.URL
	client       *http.Client
	secureCookie bool
	pending      *pendingStore
	logins       *addrlimit.Limiter
	health       health

	mu      sync.Mutex
	disc    *discovered
	discErr error
	discAt  time.Time
}

// discovered is the provider's metadata, fetched once.
type discovered struct {
	provider    *gooidc.Provider
	verifier    *gooidc.IDTokenVerifier
	oauth       oauth2.Config
	hasUserinfo bool
}

// Initialize checks the configuration. It does not contact the issuer:
// discovery happens at the first sign-in, so cordon starts while the
// provider is down.
func (o *OIDC) Initialize() error {
	if err := o.configure(); err != nil {
		return fmt.Errorf("oidc: %w", err)
	}
	roots, err := rootCAs(o.CAFile)
	if err != nil {
		return fmt.Errorf("oidc: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.client = issuerClient(o.issuer, roots, o.Timeout)
	o.pending = newPendingStore(o.MaxPending, o.MaxPendingPerAddr, o.StateTTL, o.Now)
	o.logins = addrlimit.New(o.LoginRate, o.LoginBurst, 0, o.Now)
	o.health.init(SourceOIDC, o.Metrics)
	return nil
}

func (o *OIDC) configure() error {
	var err error
	o.issuer, err = url.Parse(o.Issuer)
	if err != nil || o.issuer.Scheme != "https" || o.issuer.Host == "" || o.issuer.User != nil ||
		o.issuer.RawQuery != "" || o.issuer.Fragment != "" {
		return errors.New("issuer: must be an https:// URL without query or credentials")
	}
	if o.ClientID == "" {
		return errors.New("client_id: must not be empty")
	}
	o.redirect, err = url.Parse(o.RedirectURL)
	if err != nil || o.redirect.Host == "" || o.redirect.User != nil || o.redirect.Fragment != "" {
		return errors.New("redirect_url: must be an absolute URL")
	}
	switch {
	case o.redirect.Scheme == "https":
		o.secureCookie = true
	case o.redirect.Scheme == "http" && isLoopback(o.redirect.Hostname()):
	default:
		return errors.New("redirect_url: must be https:// (http:// only on loopback)")
	}
	for i, m := range o.RoleMap {
		if m.Group == "" {
			return fmt.Errorf("role_map[%d].group: must not be empty", i)
		}
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultGroupsClaim
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = DefaultUsernameClaim
	}
	if o.Scopes == nil {
		o.Scopes = []string{"profile", "email"}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultOIDCTimeout
	}
	if o.StateTTL <= 0 {
		o.StateTTL = DefaultStateTTL
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxPendingPerAddr <= 0 {
		o.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	if o.LoginRate <= 0 {
		o.LoginRate = DefaultLoginRate
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = DefaultLoginBurst
	}
	if o.SignIn == nil {
		return errors.New("SignIn is required")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close closes idle connections to the issuer.
func (o *OIDC) Close() {
	if o.client == nil {
		return
	}
	if t, ok := o.client.Transport.(*issuerTransport); ok {
		t.closeIdle()
	}
}

// Name is the provider's name for "Sign in with <name>".
func (o *OIDC) Name() string {
	if o.DisplayName != "" {
		return o.DisplayName
	}
	return o.issuer.Hostname()
}

// Health returns nil while the issuer answers, or an ErrUnavailable error
// naming the reason and since when.
func (o *OIDC) Health() error { return o.health.status() }

// discover fetches the provider's metadata once (again after a failure,
// at most every discoveryRetry) and checks that every endpoint cordon
// calls is on the issuer's origin.
func (o *OIDC) discover(ctx context.Context) (*discovered, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.disc != nil {
		return o.disc, nil
	}
	if o.discErr != nil && o.Now().Sub(o.discAt) < discoveryRetry {
		return nil, o.discErr
	}
	d, err := o.fetchDiscovery(ctx)
	o.discAt = o.Now()
	if err != nil {
		o.discErr = err
		return nil, err
	}
	o.disc, o.discErr = d, nil
	o.health.up()
	return d, nil
}

func (o *OIDC) fetchDiscovery(ctx context.Context) (*discovered, error) {
	// the provider's key set keeps this context's HTTP client (not its
	// deadline) for the key fetches of a rotation
	ctx, cancel := context.WithTimeout(gooidc.ClientContext(context.WithoutCancel(ctx), o.client), o.Timeout)
	defer cancel()
	p, err := gooidc.NewProvider(ctx, o.Issuer)
	if err != nil {
		o.Logger.Warn("oidc: discovery failed", "issuer", o.Issuer, "err", err.Error())
		return nil, o.unreachable(ctx, "discovery at "+o.Issuer, err)
	}
	var meta struct {
		JWKS     string `json:"jwks_uri"`
		Token    string `json:"token_endpoint"`
		Userinfo string `json:"userinfo_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, unavailable(SourceOIDC, "discovery document unreadable")
	}
	for name, u := range map[string]string{"jwks_uri": meta.JWKS, "token_endpoint": meta.Token, "userinfo_endpoint": meta.Userinfo} {
		if (u != "" || name != "userinfo_endpoint") && !sameOrigin(o.issuer, u) {
			o.Logger.Error("oidc: discovery names an endpoint off the issuer's origin; refused", "endpoint", name)
			return nil, unavailable(SourceOIDC, name+" is not on the issuer's origin")
		}
	}
	d := &discovered{
		provider: p,
		verifier: p.Verifier(&gooidc.Config{ClientID: o.ClientID, SupportedSigningAlgs: signingAlgs, Now: o.Now}),
		oauth: oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			Endpoint:     p.Endpoint(),
			RedirectURL:  o.RedirectURL,
			Scopes:       append([]string{gooidc.ScopeOpenID}, o.Scopes...),
		},
		hasUserinfo: meta.Userinfo != "",
	}
	return d, nil
}

// unreachable is the ErrUnavailable for a request to the issuer that
// failed: what was asked, and why when the error says (see failureReason).
// A request its caller cancelled (the browser went away) is errCanceled.
func (o *OIDC) unreachable(ctx context.Context, what string, err error) error {
	if canceled(ctx) {
		return errCanceled
	}
	if reason := failureReason(err, expired(ctx), o.Timeout, o.issuer.Host); reason != "" {
		return unavailable(SourceOIDC, what+" failed: "+reason)
	}
	return unavailable(SourceOIDC, what+" failed")
}
