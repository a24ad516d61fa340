package onvifserve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"cordon/internal/httpdigest"
	"cordon/internal/soap"
)

// authenticate signs the request in, or answers the refusal itself and
// returns false. A WS-Security UsernameToken is checked when present;
// otherwise HTTP Digest; with neither, 401 with a Digest challenge (and a
// NotAuthorized fault for clients that read the body).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, env *soap.Envelope, remote string, ctx context.Context) (Principal, bool) {
	v := env.Version
	tok, err := soap.ParseUsernameToken(env.Header)
	switch {
	case err == nil:
		p, err := s.checkToken(ctx, r, tok, remote)
		if err != nil {
			s.refuse(w, v, err)
			return Principal{}, false
		}
		return p, true
	case !errors.Is(err, soap.ErrNoToken):
		// a malformed token: counted when it names someone
		if tok.Username != "" {
			if att, aerr := s.Access.BeginAttempt(tok.Username, remote); aerr == nil {
				att.Failed("malformed WS-Security UsernameToken")
			}
		}
		s.refuse(w, v, errBadCredentials)
		return Principal{}, false
	}
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Digest") {
		return s.checkHTTPDigest(w, r, v, remote)
	}
	s.challenge(w, v, false)
	return Principal{}, false
}

// checkToken verifies a UsernameToken: PasswordDigest against the ONVIF
// secret (created window, nonce used once), PasswordText against the
// password hash and only over TLS.
func (s *Server) checkToken(ctx context.Context, r *http.Request, tok soap.UsernameToken, remote string) (Principal, error) {
	if !tok.Digest {
		if r.TLS == nil {
			// the password crossed the network in clear: refuse it and
			// count the attempt (it may be a guess as well as a mistake)
			if att, err := s.Access.BeginAttempt(tok.Username, remote); err != nil {
				return Principal{}, err
			} else {
				att.Failed("WS-Security PasswordText without TLS refused")
			}
			return Principal{}, errBadCredentials
		}
		if err := s.verifier.CheckCreated(tok); err != nil {
			if att, aerr := s.Access.BeginAttempt(tok.Username, remote); aerr == nil {
				att.Failed("WS-Security Created outside the allowed window")
			}
			return Principal{}, errBadCredentials
		}
		return s.Access.CheckPassword(ctx, tok.Username, tok.Password, remote)
	}
	att, err := s.Access.BeginAttempt(tok.Username, remote)
	if err != nil {
		return Principal{}, err
	}
	secret, ok := att.Secret()
	if !ok {
		secret = unknownSecret() // same work for an unknown name, never matches
	}
	switch err := s.verifier.VerifyDigest(tok, secret); {
	case errors.Is(err, soap.ErrReplayFull):
		att.Cancel()
		return Principal{}, &Unavailable{RetryAfter: s.verifier.Window, Reason: "too many sign-ins in progress; try again shortly"}
	case err != nil || !ok:
		att.Failed(tokenFailure(err, ok))
		return Principal{}, errBadCredentials
	}
	return att.Succeeded()
}

func tokenFailure(err error, known bool) string {
	switch {
	case !known:
		return "WS-Security digest for a name without an ONVIF secret"
	case errors.Is(err, soap.ErrStale):
		return "WS-Security Created outside the allowed window"
	case errors.Is(err, soap.ErrReplay):
		return "WS-Security nonce replayed"
	case errors.Is(err, soap.ErrTokenFields):
		return "WS-Security digest without Nonce or Created"
	}
	return "bad WS-Security digest"
}

// unknownSecret is compared when a name has no ONVIF secret, so unknown
// and known names cost the same.
func unknownSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkHTTPDigest verifies an HTTP Digest Authorization (qop=auth, the
// ONVIF secret, each nonce/cnonce/nc once).
func (s *Server) checkHTTPDigest(w http.ResponseWriter, r *http.Request, v soap.Version, remote string) (Principal, bool) {
	var att Attempt
	var lockErr error
	_, err := s.digest.Verify(r, func(user string) (string, bool) {
		a, err := s.Access.BeginAttempt(user, remote)
		if err != nil {
			lockErr = err
			return "", false
		}
		att = a
		return a.Secret()
	})
	switch {
	case lockErr != nil:
		s.refuse(w, v, lockErr)
		return Principal{}, false
	case att == nil:
		// stale nonce, other realm or URI: nothing was compared; a fresh
		// challenge lets an honest client retry
		s.challenge(w, v, true)
		return Principal{}, false
	case err != nil:
		detail := "bad HTTP digest"
		if errors.Is(err, httpdigest.ErrReplay) {
			detail = "HTTP digest replayed"
		}
		att.Failed(detail)
		s.challenge(w, v, false)
		return Principal{}, false
	}
	p, err := att.Succeeded()
	if err != nil {
		s.refuse(w, v, err)
		return Principal{}, false
	}
	return p, true
}

// challenge answers 401 with a Digest challenge and a NotAuthorized fault.
func (s *Server) challenge(w http.ResponseWriter, v soap.Version, stale bool) {
	c := s.digest.Challenge()
	if stale {
		c += ", stale=true"
	}
	w.Header().Set("WWW-Authenticate", c)
	writeFault(w, v, http.StatusUnauthorized, soap.NotAuthorized())
}

// refuse answers a sign-in that failed: 400 ter:NotAuthorized for wrong
// credentials (ONVIF's answer to a bad WS-Security token), 429 with
// Retry-After while locked out, 503 when sign-ins cannot be taken.
func (s *Server) refuse(w http.ResponseWriter, v soap.Version, err error) {
	var lo *LockedOut
	var un *Unavailable
	switch {
	case errors.As(err, &lo):
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(lo.RetryAfter)))
		f := soap.NotAuthorized()
		f.Reason = lo.Error()
		writeFault(w, v, http.StatusTooManyRequests, f)
	case errors.As(err, &un):
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(un.RetryAfter)))
		writeFault(w, v, http.StatusServiceUnavailable, soap.NewFault(soap.CodeReceiver, un.Error()))
	default:
		soap.WriteFault(w, v, soap.NotAuthorized())
	}
}
