package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"cordon/auth"
	"cordon/internal/httpx"
)

// SignInMethods says how people can sign in, for the viewer's sign-in
// form: GET /api/v1/auth/methods (no credentials needed; it names nothing
// secret).
type SignInMethods struct {
	// LDAP: directory names and passwords are accepted by the form.
	LDAP bool
	// OIDC is the provider's display name ("" = OIDC off).
	OIDC string
}

type methodsJSON struct {
	Password bool      `json:"password"` // the form: local accounts (and LDAP)
	LDAP     bool      `json:"ldap"`
	OIDC     *oidcJSON `json:"oidc"` // null when off
}

type oidcJSON struct {
	Name     string `json:"name"`      // "Sign in with <name>"
	LoginURL string `json:"login_url"` // a same-origin path to navigate to
}

// OIDCLoginPath starts an OIDC sign-in (auth/directory's LoginHandler).
const OIDCLoginPath = "/api/v1/oidc/login"

// Handler serves the methods.
func (m SignInMethods) Handler() http.Handler {
	body := methodsJSON{Password: true, LDAP: m.LDAP}
	if m.OIDC != "" {
		body.OIDC = &oidcJSON{Name: m.OIDC, LoginURL: OIDCLoginPath + "?return_to=/"}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, body)
	})
}

type meJSON struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`   // user | api_key
	Source    string   `json:"source"` // local | ldap | oidc
	Roles     []string `json:"roles"`
	Admin     bool     `json:"admin"`
	ExpiresAt string   `json:"expires_at,omitempty"` // the session token's expiry
}

// MeHandler serves GET /api/v1/me (Bearer): who the caller is signed in
// as: name, kind, source, role names, admin, and the token's expiry. The
// viewer uses it to name an OIDC user and to say plainly when a directory
// user's groups give no rights.
func MeHandler(a Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.AuthenticateRequest(r)
		if err != nil {
			auth.WriteError(w, err)
			return
		}
		out := meJSON{Name: p.Name, Kind: p.Kind, Source: p.Source, Roles: p.Roles, Admin: p.Admin}
		if out.Source == "" {
			out.Source = auth.SourceLocal
		}
		if out.Roles == nil {
			out.Roles = []string{}
		}
		if !p.ExpiresAt.IsZero() {
			out.ExpiresAt = p.ExpiresAt.UTC().Format(time.RFC3339)
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}

// degradedReason joins the degraded parts into one sentence ("part: why;
// ..."), in a stable order.
func degradedReason(d map[string]string) string {
	parts := make([]string, 0, len(d))
	for k, v := range d {
		parts = append(parts, k+": "+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}
