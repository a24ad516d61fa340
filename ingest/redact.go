package ingest

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// userinfoRE matches the userinfo part of any URL in a message.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'"]*@`)

// redactor removes a camera's credentials from text: userinfo in any URL,
// and the password itself (raw and URL-escaped) wherever it appears.
type redactor struct {
	secrets []string
}

func newRedactor(u *url.URL) redactor {
	var r redactor
	if u == nil || u.User == nil {
		return r
	}
	// Passwords also appear in URLs' userinfo, which is always removed.
	// Shorter ones are not replaced elsewhere: that would mangle every
	// message (and a 3-character password is no secret anyway).
	if p, ok := u.User.Password(); ok && len(p) >= 4 {
		r.secrets = append(r.secrets, p)
		if e := url.QueryEscape(p); e != p {
			r.secrets = append(r.secrets, e)
		}
		if e := url.PathEscape(p); e != p {
			r.secrets = append(r.secrets, e)
		}
	}
	return r
}

func (r redactor) string(s string) string {
	s = userinfoRE.ReplaceAllString(s, "$1")
	for _, p := range r.secrets {
		s = strings.ReplaceAll(s, p, "***")
	}
	return s
}

// safeURL returns u without userinfo, query or fragment, for logs.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// cameraError is an error from a camera connection with a message safe to
// show and log: credentials removed. It unwraps to the original error so
// errors.Is works (e.g. relay.ErrBFrames); never print the unwrapped error.
type cameraError struct {
	msg string
	err error
}

func (e *cameraError) Error() string { return e.msg }
func (e *cameraError) Unwrap() error { return e.err }

// wrap turns err into a cameraError with a redacted, operator-friendly
// message. It returns nil for nil.
func (r redactor) wrap(err error) error {
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
	return &cameraError{msg: r.string(msg), err: err}
}
