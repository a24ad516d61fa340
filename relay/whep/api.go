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
	TokenID string // the token the request presented (audit correlation)
	Remote  string // client address as the gateway sees it (proxy-aware); "" = r.RemoteAddr
	Admin   bool   // may end other principals' sessions
}

// Access decides who may view which camera. The gateway implements it with
// auth. Authorize must return an error carrying the HTTP status (see
// HTTPError / StatusOf): 401 without a valid token, 403 camera not permitted,
// 404 unknown camera. It is called once per WHEP request, never in a media
// goroutine.
type Access interface {
	Authorize(r *http.Request, camera string) (Viewer, error)
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
