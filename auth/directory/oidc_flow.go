package directory

import (
	"errors"
	"html/template"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"cordon/internal/addrlimit"
)

// cookiePrefix names the browser-binding cookie of one sign-in; the rest
// of the name is the start of its state, so two tabs can sign in at once.
const cookiePrefix = "cordon_oidc_"

// Bounds on what the callback accepts.
const (
	maxStateLen = 128
	maxCodeLen  = 4096
)

// LoginHandler starts a sign-in (GET /api/v1/oidc/login[?return_to=/path]):
// it records state, nonce and PKCE verifier, binds them to this browser
// with a short-lived cookie, and redirects to the provider.
func (o *OIDC) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			o.fail(w, r, http.StatusMethodNotAllowed, "Use GET to start signing in.")
			return
		}
		addr := o.remoteAddr(r)
		if !o.logins.Allow(addr) {
			o.Logger.Debug("oidc: sign-in refused", "reason", "rate limit", "remote", addr)
			w.Header().Set("Retry-After", "10")
			o.fail(w, r, http.StatusTooManyRequests, "Too many sign-ins from your address. Try again in a few seconds.")
			return
		}
		d, err := o.discover(r.Context())
		if err != nil {
			o.health.observe(o.Now(), o.Now(), err)
			o.fail(w, r, http.StatusServiceUnavailable, "Cannot reach "+o.Name()+" to sign in. Try again later, or sign in with a cordon account.")
			return
		}
		state, binding := randomToken(), randomToken()
		p := &pending{
			nonce:    randomToken(),
			verifier: randomToken(),
			binding:  bindingHash(binding),
			returnTo: localPath(r.URL.Query().Get("return_to")),
			addr:     addrlimit.Key(addr),
		}
		if err := o.pending.put(state, p); err != nil {
			w.Header().Set("Retry-After", "60")
			if errors.Is(err, errBusyAddr) {
				o.Logger.Debug("oidc: sign-in refused", "reason", err.Error(), "remote", addr)
				o.fail(w, r, http.StatusTooManyRequests, "Too many sign-ins in progress from your address. Finish one, or try again in a few minutes.")
				return
			}
			o.Logger.Warn("oidc: sign-in refused", "reason", err.Error())
			o.fail(w, r, http.StatusServiceUnavailable, "Too many sign-ins in progress. Try again in a minute.")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name:     cookiePrefix + state[:16],
			Value:    binding,
			Path:     o.redirect.Path,
			MaxAge:   int(o.StateTTL.Seconds()),
			HttpOnly: true,
			Secure:   o.secureCookie,
			SameSite: http.SameSiteLaxMode, // sent on the provider's top-level redirect back
		})
		w.Header().Set("Cache-Control", "no-store")
		u := d.oauth.AuthCodeURL(state,
			oauth2.SetAuthURLParam("nonce", p.nonce),
			oauth2.SetAuthURLParam("code_challenge", pkceChallenge(p.verifier)),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		http.Redirect(w, r, u, http.StatusFound)
	})
}

// remoteAddr is the client address of r (RemoteAddr, or the TCP peer).
func (o *OIDC) remoteAddr(r *http.Request) string {
	if o.RemoteAddr != nil {
		return o.RemoteAddr(r)
	}
	return r.RemoteAddr
}

// CallbackHandler completes a sign-in (GET /api/v1/oidc/callback): the
// state must be one this server issued, unused, unexpired and bound to this
// browser; the code is exchanged with the PKCE verifier; the ID token is
// verified (see verifyIDToken); the identity goes to SignIn.
func (o *OIDC) CallbackHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		start := o.Now()
		id, returnTo, status, msg, err := o.callback(r, w)
		o.health.observe(start, o.Now(), err)
		if err != nil {
			o.Logger.Info("oidc: sign-in failed", "reason", err.Error())
			o.fail(w, r, status, msg)
			return
		}
		to, err := o.SignIn(w, r, id)
		if err != nil {
			var se *StatusError
			if errors.As(err, &se) {
				o.fail(w, r, se.Status, se.Message)
				return
			}
			o.Logger.Error("oidc: sign-in owner failed", "user", id.Name, "err", err.Error())
			o.fail(w, r, http.StatusInternalServerError, "Signing in failed. Try again.")
			return
		}
		if to == "" {
			to = returnTo
		}
		http.Redirect(w, r, localPath(to), http.StatusSeeOther)
	})
}

// callback checks the request and returns the identity, or the status
// and sentence to show with the error.
func (o *OIDC) callback(r *http.Request, w http.ResponseWriter) (Identity, string, int, string, error) {
	const restart = "This sign-in link has expired or was already used. Start signing in again."
	if r.Method != http.MethodGet {
		return Identity{}, "", http.StatusMethodNotAllowed, "Use GET.", errors.New("method " + r.Method)
	}
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < 16 || len(state) > maxStateLen {
		return Identity{}, "", http.StatusBadRequest, restart, errors.New("missing or malformed state")
	}
	// one use per state, whatever happens next
	p, ok := o.pending.take(state)
	cookieName := cookiePrefix + state[:16]
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: o.redirect.Path, MaxAge: -1,
		HttpOnly: true, Secure: o.secureCookie, SameSite: http.SameSiteLaxMode})
	if !ok {
		return Identity{}, "", http.StatusBadRequest, restart, ErrInvalidCredentials
	}
	c, err := r.Cookie(cookieName)
	if err != nil || !sameBinding(bindingHash(c.Value), p.binding) {
		return Identity{}, "", http.StatusBadRequest, "This sign-in was started in another browser. Start signing in again here.",
			errors.New("state not bound to this browser")
	}
	if e := q.Get("error"); e != "" {
		return Identity{}, "", http.StatusUnauthorized, o.Name() + " did not sign you in (" + clip(e, 64) + ").",
			errors.New("provider error " + clip(e, 64))
	}
	code := q.Get("code")
	if code == "" || len(code) > maxCodeLen {
		return Identity{}, "", http.StatusBadRequest, restart, errors.New("missing or oversized code")
	}
	id, err := o.exchange(r.Context(), code, p)
	switch {
	case errors.Is(err, ErrUnavailable):
		return Identity{}, "", http.StatusServiceUnavailable, "Cannot reach " + o.Name() + " to finish signing in. Try again later.", err
	case err != nil:
		return Identity{}, "", http.StatusUnauthorized, "Signing in with " + o.Name() + " failed. Start again; if it keeps failing, tell your administrator.", err
	}
	return id, p.returnTo, 0, "", nil
}

// localPath returns p when it is a path on this server ("/..."), else "/"
// (no open redirect to another origin).
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\\\r\n\t") || len(p) > 1024 {
		return "/"
	}
	return p
}

func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

var errorTmpl = template.Must(template.New("e").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>cordon: sign-in</title></head>
<body><h1>Sign-in did not complete</h1><p id="message">{{.}}</p><p><a href="/">Back to cordon</a></p></body></html>`))

func (o *OIDC) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if o.ErrorPage != nil {
		o.ErrorPage(w, r, status, msg)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	_ = errorTmpl.Execute(w, msg)
}
