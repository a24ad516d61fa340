package whep

import (
	"errors"
	"net/http"
	"time"

	"cordon/relay/session"
)

// Viewer is the principal the owner's Access resolved for a request.
type Viewer struct {
	Name    string // user or API key name
	Kind    string // "user" or "api_key" (free text, shown in the admin listing)
	Source  string // where the identity was proven ("local", "ldap", "oidc")
	TokenID string // the token the request presented (audit correlation)
	Remote  string // client address as the gateway sees it (proxy-aware); "" = r.RemoteAddr
	Admin   bool   // may end other principals' sessions
	// Principal is the owner's handle on the authenticated principal,
	// opaque here: it is carried into session.Info for the owner's live
	// re-check.
	Principal any
}

// Access decides who may view which camera. The gateway implements it with
// auth. Both methods return an error carrying the HTTP status (see
// HTTPError / StatusOf). They are called once per WHEP request, never in a
// media goroutine.
type Access interface {
	// Authorize answers a POST: who is asking and may they view camera
	// now (401 without a valid token, 403 camera not permitted, 404 only
	// for a permitted camera that does not exist).
	Authorize(r *http.Request, camera string) (Viewer, error)
	// Authenticate answers a PATCH or DELETE: who is asking. The door
	// lets a session's own principal (or an admin) act on it; others get
	// 404.
	Authenticate(r *http.Request) (Viewer, error)
}

// Events is told when viewing starts and ends (audit log and logs). ViewEnd
// is called exactly once per started session.
//
// An Events value that also implements Readier is asked before every new
// session; an error fails the POST closed with 503 and the error's text
// (e.g. the audit log cannot be written).
type Events interface {
	// ViewStart records a session start; an error (e.g. the audit log
	// cannot be written) refuses the session with 503.
	ViewStart(s session.Info) error
	ViewEnd(s session.Info, dur time.Duration, bytes uint64)
}

// Readier is the optional fail-closed hook of Events.
type Readier interface {
	Ready() error
}

// HTTPError is an error with the HTTP status to answer. Access
// implementations may return it or any error with an HTTPStatus() int method.
type HTTPError struct {
	Status     int
	Msg        string        // a sentence safe to show to the client
	RetryAfter time.Duration // sent as Retry-After (seconds) when > 0
	Challenge  string        // WWW-Authenticate of a 401 ("" = Bearer realm="cordon")
}

func (e *HTTPError) Error() string { return e.Msg }

// HTTPStatus returns the status.
func (e *HTTPError) HTTPStatus() int { return e.Status }

// StatusOf returns the HTTP status an error carries, or 500.
func StatusOf(err error) int {
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) {
		if s := hs.HTTPStatus(); s >= 400 && s <= 599 {
			return s
		}
	}
	return http.StatusInternalServerError
}
