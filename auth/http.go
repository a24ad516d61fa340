package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"cordon/auth/audit"
)

// MaxLoginBody bounds the login request body (bytes).
const MaxLoginBody = 4096

type loginRequest struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
}

type loginResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"` // RFC 3339, UTC
}

// LoginHandler serves POST /api/v1/login {"username","password"}:
// 200 {"token","expires_at"}; 401 {"error":"invalid username or password"}
// for an unknown user and a wrong password alike (both cost one argon2id
// verification); 429 + Retry-After while the address or the name is
// locked out; 400 malformed JSON; 413 body over 4 KiB; 415 not JSON;
// 405 other methods; 503 when the audit log cannot record the login.
func (s *Service) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSONError(w, http.StatusMethodNotAllowed, "this endpoint only accepts POST")
			return
		}
		if !isJSON(r.Header.Get("Content-Type")) {
			writeJSONError(w, http.StatusUnsupportedMediaType, "the request body must be application/json")
			return
		}
		var req loginRequest
		body := http.MaxBytesReader(w, r.Body, MaxLoginBody)
		dec := json.NewDecoder(body)
		err := dec.Decode(&req)
		if err == nil {
			if _, err2 := dec.Token(); !errors.Is(err2, io.EOF) {
				err = errors.New("trailing data")
			}
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeJSONError(w, http.StatusRequestEntityTooLarge, "the request body is too large")
			return
		case err != nil:
			writeJSONError(w, http.StatusBadRequest, "the request body must be a JSON object with username and password")
			return
		case req.Username == nil || req.Password == nil || *req.Username == "":
			writeJSONError(w, http.StatusBadRequest, "username and password are required")
			return
		}
		remote := s.RemoteAddr(r)
		token, p, err := s.Login(r.Context(), *req.Username, *req.Password, remote)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return // the client went away
			}
			if HTTPStatus(err) == http.StatusInternalServerError {
				s.logger().Error("login failed", "err", err, "remote", remote)
			}
			WriteError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, loginResponse{Token: token, ExpiresAt: p.ExpiresAt.UTC().Format(time.RFC3339)})
	})
}

func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	if cs, ok := params["charset"]; ok && cs != "utf-8" && cs != "UTF-8" {
		return false
	}
	return true
}

// LogoutHandler serves POST /api/v1/logout with a Bearer session token:
// 204, and the token no longer works anywhere (revocation persisted in
// the state dir; subscribers told to end its sessions). 400 for an API
// key (nothing to log out), 401 without a valid token.
func (s *Service) LogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSONError(w, http.StatusMethodNotAllowed, "this endpoint only accepts POST")
			return
		}
		p, err := s.AuthenticateRequest(r)
		if err != nil {
			WriteError(w, err)
			return
		}
		if p.TokenID == "" {
			writeJSONError(w, http.StatusBadRequest, "only session tokens can be logged out")
			return
		}
		if err := s.Logout(p, s.RemoteAddr(r)); err != nil {
			writeJSONError(w, http.StatusInternalServerError, "the logout could not be recorded; the token is revoked until restart")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored by RequireAuth.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// RequireAuth authenticates every request (Bearer only) and passes the
// principal in the context (PrincipalFrom); otherwise it answers 401 with
// WWW-Authenticate: Bearer realm="cordon" (or 429 while locked out).
// CORS preflights (OPTIONS) are passed through unauthenticated, as WHEP
// requires; next must not serve anything sensitive for OPTIONS.
func (s *Service) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.AuthenticateRequest(r)
		if err != nil {
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Middleware is RequireAuth.
func (s *Service) Middleware(next http.Handler) http.Handler { return s.RequireAuth(next) }

// maxAuditPath bounds the request path an audit line repeats (the client
// chooses it).
const maxAuditPath = 128

func clipPath(p string) string {
	if len(p) <= maxAuditPath {
		return p
	}
	return strings.ToValidUTF8(p[:maxAuditPath], "") + "..."
}

// RequireAdmin is RequireAuth plus: the principal must (currently) be an
// admin, else 403 (audited as denied, aggregated per principal when
// Service.Hostile is set).
func (s *Service) RequireAdmin(next http.Handler) http.Handler {
	return s.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok { // a CORS preflight passed through by RequireAuth
			WriteError(w, ErrNoCredentials)
			return
		}
		if !p.Admin {
			_ = s.auditDenied(audit.Event{Event: audit.Denied, Actor: p.Name, Remote: s.RemoteAddr(r), Protocol: "http",
				Detail: "admin required: " + r.Method + " " + clipPath(r.URL.Path)})
			WriteError(w, ErrForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}
