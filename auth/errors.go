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

// Errors returned by authentication. Messages are safe to show to clients
// (they never contain a credential). Match with errors.Is.
var (
	ErrNoCredentials        = errors.New("authentication required")
	ErrTokenInQuery         = errors.New("credentials are not accepted in the URL query string; use the Authorization header")
	ErrMalformedCredentials = errors.New("malformed Authorization header")
	ErrInvalidToken         = errors.New("invalid token")
	ErrTokenExpired         = errors.New("token expired")
	ErrTokenRevoked         = errors.New("token revoked")
	ErrBadCredentials       = errors.New("invalid username or password")
	ErrPrincipalGone        = errors.New("account removed or its credentials changed")
	ErrLockedOut            = errors.New("too many failed attempts")
	ErrForbidden            = errors.New("not permitted")
	ErrAuditUnavailable     = errors.New("audit log unavailable")
)

// LockedOutError is returned while a remote address or user name is locked
// out. errors.Is(err, ErrLockedOut) is true.
type LockedOutError struct {
	RetryAfter time.Duration
}

func (e *LockedOutError) Error() string {
	return fmt.Sprintf("too many failed attempts; try again in %d seconds", retrySeconds(e.RetryAfter))
}

// Is makes errors.Is(err, ErrLockedOut) true.
func (e *LockedOutError) Is(target error) bool { return target == ErrLockedOut }

func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// HTTPStatus maps an authentication error to its HTTP status.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrLockedOut):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrAuditUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrTokenInQuery),
		errors.Is(err, ErrMalformedCredentials), errors.Is(err, ErrInvalidToken),
		errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenRevoked),
		errors.Is(err, ErrBadCredentials), errors.Is(err, ErrPrincipalGone):
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// publicMessage is the sentence shown to the client for err.
func publicMessage(err error) string {
	var lo *LockedOutError
	switch {
	case errors.As(err, &lo):
		return lo.Error()
	case errors.Is(err, ErrLockedOut):
		return ErrLockedOut.Error()
	}
	for _, e := range []error{
		ErrForbidden, ErrAuditUnavailable, ErrNoCredentials, ErrTokenInQuery,
		ErrMalformedCredentials, ErrTokenExpired, ErrTokenRevoked,
		ErrInvalidToken, ErrBadCredentials, ErrPrincipalGone,
	} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "internal error"
}

// WriteError writes err as a JSON error {"error": "..."} with its status:
// 401 with WWW-Authenticate: Bearer realm="cordon" (RFC 6750 error code
// when a credential was presented), 403, 429 with Retry-After, 503.
func WriteError(w http.ResponseWriter, err error) {
	status := HTTPStatus(err)
	switch status {
	case http.StatusUnauthorized:
		challenge := `Bearer realm="cordon"`
		switch {
		case errors.Is(err, ErrNoCredentials):
		case errors.Is(err, ErrTokenInQuery), errors.Is(err, ErrMalformedCredentials):
			challenge += `, error="invalid_request"`
		default:
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case http.StatusTooManyRequests:
		var lo *LockedOutError
		if errors.As(err, &lo) {
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(lo.RetryAfter)))
		}
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	writeJSONError(w, status, publicMessage(err))
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
