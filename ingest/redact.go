package ingest

import (
	"errors"
	"net/url"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"cordon/config"
)

// redactorFor returns r, or when nil a redactor for the camera's own
// password (raw and URL-escaped) and any URL userinfo.
func redactorFor(r *config.Redactor, u *url.URL) *config.Redactor {
	if r != nil {
		return r
	}
	r = &config.Redactor{}
	var secrets []string
	if u != nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	r.Update(nil, secrets...)
	return r
}

// redactor is a camera's config.Redactor as ingest uses it.
type redactor struct{ r *config.Redactor }

func (r redactor) string(s string) string { return r.r.Redact(s) }

func (r redactor) wrap(err error) error { return wrapCameraError(r.r, err) }

// cameraError is an error from a camera connection with a message safe to
// show and log: credentials removed. It unwraps to the original error so
// errors.Is works (e.g. relay.ErrBFrames); never print the unwrapped error.
type cameraError struct {
	msg string
	err error
}

func (e *cameraError) Error() string { return e.msg }
func (e *cameraError) Unwrap() error { return e.err }

// wrapCameraError turns err into a cameraError with a redacted,
// operator-friendly message. It returns nil for nil.
func wrapCameraError(r *config.Redactor, err error) error {
	if err == nil {
		return nil
	}
	var ce *cameraError
	if errors.As(err, &ce) {
		return err
	}
	msg := err.Error()
	var bad liberrors.ErrClientBadStatusCode
	switch {
	case errors.As(err, &liberrors.ErrClientRequestTimedOut{}):
		msg = "the camera did not answer an RTSP request within the read timeout (it accepts connections but stays silent)"
	case errors.As(err, &liberrors.ErrClientTCPTimeout{}), errors.As(err, &liberrors.ErrClientUDPTimeout{}):
		msg = "the camera sent nothing for the read timeout"
	}
	if errors.As(err, &liberrors.ErrClientH264PacketizationMode0{}) {
		msg = "the camera sends H.264 with packetization-mode=0, which can only be read over TCP: set the camera's transport to tcp or auto"
	}
	if errors.As(err, &bad) {
		switch bad.Code {
		case base.StatusUnauthorized:
			msg = "authentication failed: the camera answered 401 Unauthorized (check the camera's username and password)"
		case base.StatusForbidden:
			msg = "the camera answered 403 Forbidden (the camera user may not view this stream)"
		case base.StatusNotFound:
			msg = "the camera answered 404 Not Found (check the stream path in the camera URL)"
		default:
			msg = "the camera answered " + bad.Error()
		}
	}
	return &cameraError{msg: r.Redact(msg), err: err}
}
