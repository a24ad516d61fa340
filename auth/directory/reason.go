package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// failureReason names why a directory (LDAP server or OIDC issuer) could
// not be used, for ErrUnavailable and /healthz. It reads the error itself
// first: an answer that came back (a certificate cordon refuses, a TLS
// alert, a refused connection) is reported as such even when the deadline
// has passed meanwhile, which on a loaded machine it often has. "No answer
// within" only when the error is a timeout, or nothing else explains it
// and the deadline has passed (expired). "" when it can name no cause.
func failureReason(err error, expired bool, timeout time.Duration, target string) string {
	switch {
	case isCertificateError(err):
		return "TLS failed: " + tlsReason(err)
	case isRefusedDial(err):
		return "cannot connect to " + target
	case isTimeout(err) || expired:
		return "no answer within " + timeout.String()
	case strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "TLS"):
		return "TLS failed: " + tlsReason(err)
	}
	return ""
}

// isCertificateError reports a TLS handshake that failed on an answer: the
// peer's certificate refused, or the peer refused ours (an alert), or the
// peer does not speak TLS. Some libraries flatten the error into text
// (go-ldap's StartTLS), hence the text fallbacks.
func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		record   tls.RecordHeaderError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &alert) || errors.As(err, &record) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "x509: ") || strings.Contains(s, "tls: ")
}

// isRefusedDial reports a connection attempt that was answered with a
// refusal (or found no route), as opposed to one that timed out.
func isRefusedDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !op.Timeout() && !errors.Is(err, context.DeadlineExceeded)
}

// isTimeout reports an error that means "no answer in time".
func isTimeout(err error) bool {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return true
	}
	s := err.Error()
	// go-ldap flattens socket timeouts into text, and has its own
	// "connection timed out"; net/http says "Client.Timeout exceeded" and
	// "TLS handshake timeout"
	return strings.Contains(s, "i/o timeout") || strings.Contains(s, "timed out") ||
		strings.Contains(s, "Timeout exceeded") || strings.Contains(s, "handshake timeout")
}

// tlsReason is the TLS library's own sentence from err ("x509: ...",
// "tls: ..."), without the parenthesis go-ldap wraps it in.
func tlsReason(err error) string {
	s := err.Error()
	for _, marker := range []string{"x509: ", "tls: "} {
		if i := strings.Index(s, marker); i >= 0 {
			r := s[i:]
			if strings.Count(r, ")") > strings.Count(r, "(") {
				r = strings.TrimSuffix(r, ")")
			}
			return clip(r, 200)
		}
	}
	return "handshake"
}

// expired reports whether ctx has ended or its deadline has passed (a
// socket deadline can fire a moment before the context's timer).
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// errCanceled: the caller gave up on the request (its context was
// cancelled: the client went away, cordon is stopping). Not a verdict on
// the directory: it neither marks the directory down nor counts as
// invalid credentials.
var errCanceled = fmt.Errorf("directory request cancelled by the caller: %w", context.Canceled)

// canceled reports whether ctx was cancelled (rather than timed out).
func canceled(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }
