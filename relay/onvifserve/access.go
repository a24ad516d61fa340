package onvifserve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cordon/ptz"
)

// Principal is a signed-in principal as the owner's auth knows it. The
// face reads only Name (audit, PTZ controller); Ref is the owner's own
// handle (e.g. *auth.Principal), handed back in every later call.
type Principal struct {
	Name string
	Ref  any
}

// Access is everything the face needs from its owner: sign-in with
// lockout, the rights decisions of the one authorizer, and each camera's
// PTZ control. The gateway implements it with *auth.Service, the camera
// units and their *ptz.Control. The face never decides a right itself.
type Access interface {
	// BeginAttempt reserves one sign-in attempt by name from remote (an IP
	// address, no port) against the lockout, per address and per (name,
	// address), before any secret is compared. It returns *LockedOut while
	// locked, *Unavailable when sign-ins cannot be taken now. The face
	// ends every attempt exactly once (Succeeded, Failed or Cancel).
	BeginAttempt(name, remote string) (Attempt, error)
	// CheckPassword checks a clear password (WS-Security PasswordText,
	// accepted over TLS only) against name's password_hash or key_hash
	// (argon2id, bounded hashing), counting a failure towards lockout and
	// auditing it. Errors: *LockedOut, *Unavailable, or any other error for
	// wrong credentials.
	CheckPassword(ctx context.Context, name, password, remote string) (Principal, error)
	// Cameras lists the cameras p may view now (deny by default; a
	// principal without rights gets none), in the order a VMS shows them.
	Cameras(ctx context.Context, p Principal) []Camera
	// AuthorizePTZ decides whether p may steer camera now (the ptz right)
	// and returns p's ptz_priority on it (1..1000). The error is returned
	// to the VMS as ter:NotAuthorized; it is also how a denial is audited.
	AuthorizePTZ(ctx context.Context, p Principal, camera, remote string) (priority int, err error)
	// PTZ returns the camera's PTZ control, nil when the camera has none.
	PTZ(camera string) PTZControl
	// PTZGranted is told after every PTZ command the control carried out
	// or refused on the camera (not one refused before the lock): the
	// owner learns who may now hold control (to end it when that
	// principal's right goes), as from every other door.
	PTZGranted(camera string, p Principal)
}

// Attempt is one reserved sign-in attempt (auth.Attempt in the gateway).
type Attempt interface {
	// Secret returns the ONVIF-only secret of the attempt's name (users'
	// and API keys' onvif_password_file); ok is false for an unknown name
	// or one without an ONVIF secret (the face then does the same work
	// and fails the attempt).
	Secret() (secret string, ok bool)
	// Succeeded ends the attempt as a success and returns the principal.
	// An error (e.g. the audit log cannot record) refuses the request
	// with 503.
	Succeeded() (Principal, error)
	// Failed ends the attempt as a failure: counted towards lockout and
	// audited (login_failed, protocol "onvif") with the detail.
	Failed(detail string)
	// Cancel ends the attempt unjudged (nothing was compared).
	Cancel()
}

// PTZControl is one camera's PTZ lock and command path (*ptz.Control).
type PTZControl interface {
	Do(ctx context.Context, ctl ptz.Controller, cmd ptz.Command) error
	Status(ctx context.Context) ptz.Status
}

// Camera is one camera as the face shows it to a principal.
type Camera struct {
	// ID is the camera id (the RTSP path and the ONVIF tokens).
	ID string
	// Name is the display name ("" = the id).
	Name string
	// Main is the main stream; Sub the sub stream, nil when the camera has
	// no sub_url.
	Main Stream
	Sub  *Stream
	// PTZ is true when the camera can be steered (cameras[].onvif) and the
	// principal holds the ptz right on it.
	PTZ bool
}

// Stream describes one stream as the relay last saw it.
type Stream struct {
	// Codec is "H264" or "H265" ("" while the camera has not connected).
	Codec string
	// Width and Height in pixels (0 while unknown).
	Width, Height int
	// FPS is the frame rate (0 while unknown).
	FPS float64
}

// LockedOut is the Access error while the address, or the name from it,
// is locked out after failed sign-ins.
type LockedOut struct{ RetryAfter time.Duration }

func (e *LockedOut) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again in %d seconds", retrySeconds(e.RetryAfter))
}

// Unavailable is the Access error when sign-ins cannot be taken now
// (password hashing capacity exhausted, audit log unwritable).
type Unavailable struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *Unavailable) Error() string {
	if e.Reason == "" {
		return "service unavailable"
	}
	return e.Reason
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// errBadCredentials is the face's own verdict on credentials that do not
// verify; the client gets ter:NotAuthorized whatever the reason.
var errBadCredentials = errors.New("onvif: credentials refused")
