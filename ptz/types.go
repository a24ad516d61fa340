package ptz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"cordon/auth/audit"
)

// Controller is the principal steering a camera, already authorized by
// the caller. Remote and Protocol only go into the audit lines.
type Controller struct {
	Name string
	// Priority is the principal's ptz_priority on this camera (1..1000;
	// 0 = no PTZ).
	Priority int
	Remote   string
	Protocol string
}

// Velocity is a continuous-move speed per axis, each in -1..1 (ONVIF's
// generic velocity space). Zoom 0 leaves the zoom alone.
type Velocity struct {
	Pan  float64 `json:"pan"`
	Tilt float64 `json:"tilt"`
	Zoom float64 `json:"zoom"`
}

// Position is a camera position in ONVIF's generic spaces (pan and tilt
// -1..1, zoom 0..1).
type Position struct {
	Pan  float64 `json:"pan"`
	Tilt float64 `json:"tilt"`
	Zoom float64 `json:"zoom"`
}

// Preset is a stored camera position.
type Preset struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

// Capabilities is what the camera's PTZ can do.
type Capabilities struct {
	PanTilt    bool `json:"pan_tilt"`
	Zoom       bool `json:"zoom"`
	Presets    bool `json:"presets"`
	MaxPresets int  `json:"max_presets,omitempty"`
	Home       bool `json:"home"`
	Status     bool `json:"status"`
}

// CameraStatus is the camera's PTZ state.
type CameraStatus struct {
	// Position is nil when the camera does not report one.
	Position *Position `json:"position,omitempty"`
	Moving   bool      `json:"moving"`
}

// Camera is one camera's PTZ, implemented by camnet/onvif. Every call is
// bounded by ctx; errors must not contain secrets.
type Camera interface {
	Capabilities(ctx context.Context) (Capabilities, error)
	Presets(ctx context.Context) ([]Preset, error)
	Status(ctx context.Context) (CameraStatus, error)
	// ContinuousMove moves at v until Stop, another command, or timeout.
	ContinuousMove(ctx context.Context, v Velocity, timeout time.Duration) error
	Stop(ctx context.Context) error
	GotoPreset(ctx context.Context, token string) error
	GotoHome(ctx context.Context) error
}

// Auditor records audit events (auth/audit's *Log, or the aggregator).
type Auditor interface {
	Record(audit.Event) error
}

// Command is one request of `POST /api/v1/cameras/{id}/ptz`: exactly one of
// Move, Stop, Preset, Home.
type Command struct {
	Move *Velocity `json:"move,omitempty"`
	// TimeoutMS bounds a Move (0 = the default; clamped to the Control's
	// limits).
	TimeoutMS int    `json:"timeout_ms,omitempty"`
	Stop      bool   `json:"stop,omitempty"`
	Preset    string `json:"preset,omitempty"`
	Home      bool   `json:"home,omitempty"`
}

// MaxCommandBytes bounds a JSON command body.
const MaxCommandBytes = 4096

// DecodeCommand reads one JSON command (at most MaxCommandBytes, no
// unknown fields) and validates it. Errors are *InvalidError.
func DecodeCommand(r io.Reader) (Command, error) {
	var c Command
	dec := json.NewDecoder(io.LimitReader(r, MaxCommandBytes+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, invalid("malformed PTZ command: %v", err)
	}
	if dec.More() {
		return c, invalid("malformed PTZ command: more than one JSON value")
	}
	return c, c.Validate()
}

// Validate checks the command's shape and values.
func (c Command) Validate() error {
	n := 0
	for _, set := range []bool{c.Move != nil, c.Stop, c.Preset != "", c.Home} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid("a PTZ command has exactly one of move, stop, preset, home")
	}
	if c.TimeoutMS < 0 || (c.TimeoutMS != 0 && c.Move == nil) {
		return invalid("timeout_ms must be positive and goes with move")
	}
	if c.Move != nil {
		for name, v := range map[string]float64{"pan": c.Move.Pan, "tilt": c.Move.Tilt, "zoom": c.Move.Zoom} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < -1 || v > 1 {
				return invalid("move.%s must be a number in -1..1", name)
			}
		}
	}
	if c.Preset != "" {
		return ValidPresetToken(c.Preset)
	}
	return nil
}

// MaxPresetTokenLen is ONVIF's ReferenceToken length limit.
const MaxPresetTokenLen = 64

// ValidPresetToken checks a preset token: 1..64 characters from
// [A-Za-z0-9_.:-].
func ValidPresetToken(t string) error {
	if t == "" || len(t) > MaxPresetTokenLen {
		return invalid("preset token must be 1..%d characters", MaxPresetTokenLen)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' {
			continue
		}
		return invalid("preset token may only hold letters, digits and _ - . :")
	}
	return nil
}

// ConflictError is the answer while someone of equal or higher priority
// holds control (409 {"error","holder","until"}).
type ConflictError struct {
	Holder string
	Until  time.Time
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("PTZ control is held by %s until %s", e.Holder, e.Until.UTC().Format(time.RFC3339))
}

// InvalidError is a malformed or out-of-range command (400).
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &InvalidError{msg: fmt.Sprintf(format, args...)}
}

// CameraError is a failed camera command (502); the camera's last PTZ
// error keeps it too.
type CameraError struct {
	Op  string
	Err error
}

func (e *CameraError) Error() string { return "camera PTZ " + e.Op + " failed: " + e.Err.Error() }
func (e *CameraError) Unwrap() error { return e.Err }

// Errors without details.
var (
	// ErrNoPriority: the controller has no PTZ priority (403).
	ErrNoPriority = errors.New("no PTZ right on this camera")
	// ErrRateLimited: too many commands from this principal (429).
	ErrRateLimited = errors.New("too many PTZ commands; slow down")
	// ErrClosed: the camera's PTZ is shut down (503).
	ErrClosed = errors.New("PTZ is not available for this camera")
	// ErrAudit: control could not be recorded in the audit log, so it was
	// not granted (503).
	ErrAudit = errors.New("PTZ control refused: the audit log cannot be written")
	// ErrControlLost: control ended (released, expired) before the
	// command reached the camera (409).
	ErrControlLost = errors.New("PTZ control ended before the command reached the camera")
)

// StatusCode maps an error of this package to the HTTP status a door
// answers with (500 for anything else).
func StatusCode(err error) int {
	var ce *ConflictError
	var ie *InvalidError
	var cam *CameraError
	switch {
	case err == nil:
		return http.StatusNoContent
	case errors.As(err, &ce), errors.Is(err, ErrControlLost):
		return http.StatusConflict
	case errors.As(err, &ie):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoPriority):
		return http.StatusForbidden
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrClosed), errors.Is(err, ErrAudit):
		return http.StatusServiceUnavailable
	case errors.As(err, &cam):
		return http.StatusBadGateway
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// ErrorBody is the JSON body a door answers an error of Do with:
// {"error": sentence}, and for a conflict also "holder" and "until"
// (RFC 3339, UTC).
func ErrorBody(err error) map[string]any {
	body := map[string]any{"error": err.Error()}
	var ce *ConflictError
	if errors.As(err, &ce) {
		body["holder"] = ce.Holder
		body["until"] = ce.Until.UTC().Format(time.RFC3339Nano)
	}
	return body
}
