package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Errors returned by authentication and authorization. Messages are safe
// to show to clients (they never contain a credential). Match with
// errors.Is; map to answers with Explain.
var (
	ErrNoCredentials        = errors.New("authentication required")
	ErrTokenInQuery         = errors.New("credentials are not accepted in the URL query string; use the Authorization header")
	ErrMalformedCredentials = errors.New("malformed Authorization header")
	ErrBareAPIKey           = errors.New("API keys are sent as Authorization: Bearer key:<name>:<secret>")
	ErrInvalidToken         = errors.New("invalid token")
	ErrTokenExpired         = errors.New("token expired")
	ErrTokenRevoked         = errors.New("token revoked")
	ErrBadCredentials       = errors.New("invalid username or password")
	ErrPrincipalGone        = errors.New("account removed or its credentials changed")
	ErrLockedOut            = errors.New("too many failed attempts")
	ErrBusy                 = errors.New("too many sign-ins in progress; try again shortly")
	ErrForbidden            = errors.New("not permitted")
	ErrNoSuchCamera         = errors.New("no such camera")
	ErrAuditUnavailable     = errors.New("audit log unavailable")
)

// LockedOutError is returned while a remote address, or a name from that
// address, is locked out. errors.Is(err, ErrLockedOut) is true.
type LockedOutError struct {
	RetryAfter time.Duration
}

func (e *LockedOutError) Error() string {
	return fmt.Sprintf("too many failed attempts; try again in %d seconds", retrySeconds(e.RetryAfter))
}

// Is makes errors.Is(err, ErrLockedOut) true.
func (e *LockedOutError) Is(target error) bool { return target == ErrLockedOut }

// BusyError is returned when the password hashing capacity is exhausted
// (per address or in total). errors.Is(err, ErrBusy) is true.
type BusyError struct {
	RetryAfter time.Duration
}

func (e *BusyError) Error() string { return ErrBusy.Error() }

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// RTSP status codes used by Explain (RFC 2326 shares HTTP's numbers; it
// has no 429, so a lockout is 503 with Retry-After there).
const (
	rtspUnauthorized = 401
	rtspForbidden    = 403
	rtspNotFound     = 404
	rtspUnavailable  = 503
	rtspInternal     = 500
)

// Answer is how a door answers an auth error.
type Answer struct {
	HTTPStatus int
	RTSPStatus int
	// Message is the client-facing sentence ({"error": Message}).
	Message string
	// RetryAfter is sent as Retry-After (whole seconds) when > 0.
	RetryAfter time.Duration
	// Challenge is the HTTP WWW-Authenticate value for a 401 ("" else).
	Challenge string
}

// auditRetry is the Retry-After while the audit log cannot be written.
const auditRetry = 5 * time.Second

// Explain maps err to the answer every door gives. The rule "a camera
// that is not permitted and one that does not exist get the same answer"
// holds because Authorize checks permission before existence: a camera
// outside the caller's rights is ErrForbidden whether or not it exists;
// ErrNoSuchCamera only reaches callers who would be allowed to see it.
func Explain(err error) Answer {
	var lo *LockedOutError
	var busy *BusyError
	switch {
	case err == nil:
		return Answer{HTTPStatus: http.StatusOK, RTSPStatus: 200}
	case errors.As(err, &lo):
		return Answer{HTTPStatus: http.StatusTooManyRequests, RTSPStatus: rtspUnavailable, Message: lo.Error(), RetryAfter: time.Duration(retrySeconds(lo.RetryAfter)) * time.Second}
	case errors.Is(err, ErrLockedOut):
		return Answer{HTTPStatus: http.StatusTooManyRequests, RTSPStatus: rtspUnavailable, Message: ErrLockedOut.Error(), RetryAfter: busyRetry}
	case errors.As(err, &busy):
		return Answer{HTTPStatus: http.StatusServiceUnavailable, RTSPStatus: rtspUnavailable, Message: ErrBusy.Error(), RetryAfter: time.Duration(retrySeconds(busy.RetryAfter)) * time.Second}
	case errors.Is(err, ErrBusy):
		return Answer{HTTPStatus: http.StatusServiceUnavailable, RTSPStatus: rtspUnavailable, Message: ErrBusy.Error(), RetryAfter: time.Second}
	case errors.Is(err, ErrAuditUnavailable):
		return Answer{HTTPStatus: http.StatusServiceUnavailable, RTSPStatus: rtspUnavailable, Message: "the audit log cannot be written; new sessions are refused", RetryAfter: auditRetry}
	case errors.Is(err, ErrDirectoryUnavailable):
		return Answer{HTTPStatus: http.StatusServiceUnavailable, RTSPStatus: rtspUnavailable, Message: err.Error(), RetryAfter: directoryRetry}
	case errors.Is(err, ErrForbidden):
		return Answer{HTTPStatus: http.StatusForbidden, RTSPStatus: rtspForbidden, Message: "not permitted"}
	case errors.Is(err, ErrNoSuchCamera):
		return Answer{HTTPStatus: http.StatusNotFound, RTSPStatus: rtspNotFound, Message: ErrNoSuchCamera.Error()}
	}
	for _, e := range []error{
		ErrNoCredentials, ErrTokenInQuery, ErrMalformedCredentials, ErrBareAPIKey,
		ErrTokenExpired, ErrTokenRevoked, ErrInvalidToken, ErrBadCredentials, ErrPrincipalGone, ErrLocalName,
	} {
		if errors.Is(err, e) {
			return Answer{HTTPStatus: http.StatusUnauthorized, RTSPStatus: rtspUnauthorized, Message: e.Error(), Challenge: challenge(err)}
		}
	}
	return Answer{HTTPStatus: http.StatusInternalServerError, RTSPStatus: rtspInternal, Message: "internal error"}
}

// challenge is the RFC 6750 WWW-Authenticate value for a 401.
func challenge(err error) string {
	c := `Bearer realm="cordon"`
	switch {
	case errors.Is(err, ErrNoCredentials):
	case errors.Is(err, ErrTokenInQuery), errors.Is(err, ErrMalformedCredentials), errors.Is(err, ErrBareAPIKey):
		c += `, error="invalid_request"`
	default:
		c += `, error="invalid_token"`
	}
	return c
}

// HTTPStatus maps an auth error to its HTTP status (Explain(err).HTTPStatus).
func HTTPStatus(err error) int { return Explain(err).HTTPStatus }

// RTSPStatus maps an auth error to its RTSP status (Explain(err).RTSPStatus).
// An RTSP door adds a Digest/Basic challenge to 401 itself.
func RTSPStatus(err error) int { return Explain(err).RTSPStatus }

// WriteError writes err as a JSON error {"error": "..."} with its status
// and headers: WWW-Authenticate on 401, Retry-After on 429 and 503.
func WriteError(w http.ResponseWriter, err error) {
	a := Explain(err)
	if a.Challenge != "" {
		w.Header().Set("WWW-Authenticate", a.Challenge)
	}
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(a.RetryAfter)))
	}
	writeJSONError(w, a.HTTPStatus, a.Message)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // application/json with nosniff: "<" stays readable
	_ = enc.Encode(v)
}
