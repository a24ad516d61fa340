package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"cordon/auth"
	"cordon/auth/directory"
	"cordon/internal/httpx"
)

// The hand-off of an OIDC sign-in's session token to the viewer, which
// keeps its token in memory only (no cookie, no storage, never in a URL):
//
//  1. The callback (auth/directory's CallbackHandler) verifies the ID token
//     and calls SignIn, which issues cordon's session token (LoginIdentity:
//     login_ok with source oidc) and keeps it server-side under a one-time
//     code: 256 random bits, valid for HandoffTTL (60 s), usable once.
//  2. The code goes to the browser only as a cookie: HttpOnly (no script
//     reads it), SameSite=Strict (never sent by another site's request),
//     Secure with an https redirect_url, Path=/api/v1/oidc/exchange (sent
//     nowhere else), Max-Age=HandoffTTL. The callback redirects to
//     "/#signin=oidc": a marker without any secret.
//  3. The viewer sees the marker, removes it from the address bar and the
//     history entry (history.replaceState), and POSTs
//     /api/v1/oidc/exchange. The exchange reads the cookie, deletes it,
//     takes the code (single use) and answers {"token","expires_at","user"}.
//
// Neither the token nor the code ever appears in a URL (so in no history,
// Referer or access log); a code that nobody exchanges within HandoffTTL is
// forgotten with its token.

// Hand-off defaults.
const (
	DefaultHandoffTTL = 60 * time.Second
	// DefaultMaxHandoffs bounds sign-ins completed but not yet exchanged.
	DefaultMaxHandoffs = 10000
	handoffCookie      = "cordon_signin"
	// ExchangePath is where the viewer completes an OIDC sign-in.
	ExchangePath = "/api/v1/oidc/exchange"
	// handoffMarker is where the callback sends the browser.
	handoffMarker = "/#signin=oidc"
)

// IdentitySignIn is what OIDCSignIn needs from auth (*auth.Service).
type IdentitySignIn interface {
	LoginIdentity(ctx context.Context, id auth.Identity, remote, protocol string) (string, *auth.Principal, error)
	RemoteAddr(r *http.Request) string
	RecordAuthFailure(name, remote, protocol, source, detail string) error
}

// OIDCSignIn turns identities verified by auth/directory's OIDC into
// cordon sessions and hands their tokens to the viewer (see above). Set
// the fields, then Initialize; its SignIn and ErrorPage go into
// directory.OIDC, ExchangeHandler is mounted at ExchangePath.
type OIDCSignIn struct {
	Auth IdentitySignIn
	// Provider is the provider's name for the pages ("Sign in with ...").
	Provider string
	// SecureCookie sets the cookie's Secure attribute (an https
	// redirect_url).
	SecureCookie bool
	// HandoffTTL (0 = DefaultHandoffTTL) and MaxHandoffs (0 =
	// DefaultMaxHandoffs) bound the sign-ins waiting for their exchange.
	HandoffTTL  time.Duration
	MaxHandoffs int
	Logger      *slog.Logger
	Now         func() time.Time

	mu       sync.Mutex
	handoffs map[[32]byte]handoff
}

type handoff struct {
	token   string
	expires time.Time // the session token's expiry
	user    string
	until   time.Time // exchange by
}

// Initialize fills the defaults.
func (o *OIDCSignIn) Initialize() error {
	if o.Auth == nil {
		return errors.New("oidc sign-in: Auth is required")
	}
	if o.HandoffTTL <= 0 {
		o.HandoffTTL = DefaultHandoffTTL
	}
	if o.MaxHandoffs <= 0 {
		o.MaxHandoffs = DefaultMaxHandoffs
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.handoffs = map[[32]byte]handoff{}
	return nil
}

// SignIn is the directory.SignInFunc: it issues the session (no longer
// than the ID token, id.Expires, nor token_ttl), stores it for the
// exchange and sends the browser to the viewer. A user whose groups map to
// no role is signed in with no rights; the viewer says so.
func (o *OIDCSignIn) SignIn(w http.ResponseWriter, r *http.Request, id directory.Identity) (string, error) {
	remote := o.Auth.RemoteAddr(r)
	tok, p, err := o.Auth.LoginIdentity(r.Context(), auth.Identity{
		Name: id.Name, Source: auth.SourceOIDC, Groups: id.Groups, Roles: id.Roles, Expires: id.Expires,
	}, remote, "http")
	switch {
	case errors.Is(err, auth.ErrAuditUnavailable):
		return "", &directory.StatusError{Status: http.StatusServiceUnavailable,
			Message: "The audit log cannot be written, so nobody can sign in now. Tell your administrator."}
	case errors.Is(err, auth.ErrLocalName):
		return "", &directory.StatusError{Status: http.StatusForbidden,
			Message: "You signed in with " + o.Provider + " as " + id.Name + ", but that name belongs to a local cordon account. Ask your administrator."}
	case errors.Is(err, auth.ErrPrincipalGone):
		return "", &directory.StatusError{Status: http.StatusUnauthorized,
			Message: "Your sign-in with " + o.Provider + " has already expired. Sign in again."}
	case errors.Is(err, auth.ErrInvalidIdentity):
		o.Logger.Warn("oidc: identity refused", "user", id.Name, "err", err.Error())
		return "", &directory.StatusError{Status: http.StatusForbidden,
			Message: "You signed in with " + o.Provider + ", but cordon cannot use that account (" + err.Error() + "). Ask your administrator."}
	case err != nil:
		return "", err
	}
	code := make([]byte, 32)
	if _, err := rand.Read(code); err != nil {
		return "", err
	}
	raw := base64.RawURLEncoding.EncodeToString(code)
	if err := o.put(raw, handoff{token: tok, expires: p.ExpiresAt, user: p.Name}); err != nil {
		o.Logger.Warn("oidc: sign-in hand-off refused", "user", p.Name, "err", err.Error())
		return "", &directory.StatusError{Status: http.StatusServiceUnavailable, Message: "Too many sign-ins in progress. Try again in a minute."}
	}
	http.SetCookie(w, o.cookie(raw, int(o.HandoffTTL/time.Second)))
	if len(id.Roles) == 0 {
		o.Logger.Info("oidc: signed in with no rights: no group maps to a cordon role", "user", p.Name, "groups", len(id.Groups))
	}
	return handoffMarker, nil
}

func (o *OIDCSignIn) cookie(value string, maxAge int) *http.Cookie {
	if maxAge <= 0 {
		maxAge = -1
	}
	return &http.Cookie{Name: handoffCookie, Value: value, Path: ExchangePath, MaxAge: maxAge,
		HttpOnly: true, Secure: o.SecureCookie, SameSite: http.SameSiteStrictMode}
}

func (o *OIDCSignIn) put(code string, h handoff) error {
	now := o.Now()
	h.until = now.Add(o.HandoffTTL)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.handoffs) >= o.MaxHandoffs {
		for k, v := range o.handoffs {
			if !now.Before(v.until) {
				delete(o.handoffs, k)
			}
		}
		if len(o.handoffs) >= o.MaxHandoffs {
			return errors.New("hand-off table full")
		}
	}
	o.handoffs[sha256.Sum256([]byte(code))] = h
	return nil
}

// take returns and forgets the hand-off of code (single use).
func (o *OIDCSignIn) take(code string) (handoff, bool) {
	k := sha256.Sum256([]byte(code))
	o.mu.Lock()
	defer o.mu.Unlock()
	h, ok := o.handoffs[k]
	delete(o.handoffs, k)
	return h, ok && o.Now().Before(h.until)
}

// Pending is the number of hand-offs not yet exchanged or swept.
func (o *OIDCSignIn) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.handoffs)
}

type exchangeResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
	User      string `json:"user"`
}

// ExchangeHandler serves POST /api/v1/oidc/exchange: 200 {"token",
// "expires_at","user"} for the browser holding a fresh hand-off cookie
// (deleted in the same answer), 401 otherwise; 403 for a request another
// site made (Sec-Fetch-Site), 405 for other methods.
func (o *OIDCSignIn) ExchangeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpx.WriteError(w, http.StatusMethodNotAllowed, "this endpoint only accepts POST")
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			httpx.WriteError(w, http.StatusForbidden, "the sign-in can only be completed by cordon's own page")
			return
		}
		c, err := r.Cookie(handoffCookie)
		if err != nil || c.Value == "" || len(c.Value) > 128 {
			httpx.WriteError(w, http.StatusUnauthorized, "there is no sign-in to complete here: sign in again")
			return
		}
		http.SetCookie(w, o.cookie("", -1))
		h, ok := o.take(c.Value)
		if !ok {
			httpx.WriteError(w, http.StatusUnauthorized, "this sign-in expired or was already completed: sign in again")
			return
		}
		httpx.WriteJSON(w, http.StatusOK, exchangeResponse{Token: h.token, ExpiresAt: h.expires.UTC().Format(time.RFC3339), User: h.user})
	})
}

var signinPage = template.Must(template.New("p").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="color-scheme" content="dark">
<title>cordon · sign-in</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/style.css">
</head><body><main><section class="signin"><div class="signin-card">
<h1>Sign-in did not complete</h1>
<p class="signin-error" id="signin-message" role="alert">{{.Message}}</p>
<p><a class="btn btn-primary" id="signin-back" href="/">Back to sign-in</a></p>
</div></section></main></body></html>`))

// ErrorPage is directory.OIDC's ErrorPage: the sentence on a page in the
// viewer's style (no script). A refused callback (401: the provider's
// token did not verify, or the provider refused) is a failed sign-in:
// counted towards the address's lockout and audited as login_failed with
// source oidc.
func (o *OIDCSignIn) ErrorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	if status == http.StatusUnauthorized && strings.HasSuffix(r.URL.Path, "/oidc/callback") {
		_ = o.Auth.RecordAuthFailure("", o.Auth.RemoteAddr(r), "http", auth.SourceOIDC, "oidc sign-in refused: "+message)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = signinPage.Execute(w, struct{ Message string }{message})
}
