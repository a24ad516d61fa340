package auth

import (
	"crypto/md5" //nolint:gosec // RTSP Digest (RFC 2617) is defined over MD5
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"sync/atomic"

	"cordon/auth/audit"
	"cordon/internal/httpdigest"
)

// DigestRealm is the realm of cordon's RTSP Digest challenges (never the
// camera's).
const DigestRealm = "cordon"

// DigestHA1 returns hex MD5(name:cordon:secret), the value configured as
// rtsp_digest_ha1. secret must be an RTSP-only Digest secret
// (NewDigestSecret), never a login password: MD5 is fast to crack.
func DigestHA1(name, secret string) string {
	return md5hex(name + ":" + DigestRealm + ":" + secret)
}

// NewDigestSecret returns a random RTSP-only Digest secret: 160 bits as
// 32 base32 characters (letters and digits an NVR's form accepts).
func NewDigestSecret() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s)) //nolint:gosec
	return hex.EncodeToString(h[:])
}

// DigestResponse is a parsed Digest Authorization header (RFC 2617/7616,
// MD5) and the request it was sent with: httpdigest.Response, the one
// shape of a Digest answer (the RTSP door parses it).
type DigestResponse = httpdigest.Response

// AuthenticateDigest verifies an RTSP Digest response against the
// principal's configured HA1 with lockout per address and per (name,
// address), like every other door: the attempt is reserved before it is
// judged, a failure is counted and audited (login_failed), the first
// success for a nonce is audited (login_ok). The door must first check
// that Nonce is one it issued and still fresh and that URI names the
// requested resource (a stale nonce is not a failure: re-challenge).
func (s *Service) AuthenticateDigest(d DigestResponse, remote, protocol string) (*Principal, error) {
	remote = hostOnly(remote)
	now := s.now()
	keys := attemptKeys(d.Username, remote)
	res, err := s.lock.reserve(now, keys)
	if err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	var e *entry
	if len(d.Username) <= maxNameLen {
		snap := s.Directory.current()
		if e = snap.find(d.Username, KindUser); e == nil {
			e = snap.find(d.Username, KindAPIKey)
		}
	}
	ha1 := "00000000000000000000000000000000" // unknown name: same work, never matches
	if e != nil && e.ha1 != nil {
		ha1 = hex.EncodeToString(e.ha1)
	}
	want := digestExpected(ha1, d)
	ok := want != "" && subtle.ConstantTimeCompare([]byte(strings.ToLower(d.Response)), []byte(want)) == 1 &&
		e != nil && e.ha1 != nil && d.Realm == DigestRealm
	if !ok {
		locked := res.finish(s.now(), false)
		return nil, s.failed(authFailure{name: d.Username, remote: remote, protocol: protocol, detail: "bad digest response", locked: locked})
	}
	res.finish(s.now(), true)
	okID := s.cache.id("digest-ok", e.name, d.Nonce, remote)
	if _, seen := s.cache.get(okID, now); !seen {
		if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: e.name, Remote: remote, Protocol: protocol, Source: SourceLocal, Detail: e.kind + " (digest)"}); err != nil {
			return nil, ErrAuditUnavailable
		}
		s.cache.put(okID, cacheEntry{name: e.name, kind: e.kind, encoded: e.encoded}, now)
	}
	return e.digestPrincipal(), nil
}

// DigestMatches reports, in constant time, whether d answers the challenge
// for a principal whose HA1 is ha1 (hex) in realm DigestRealm. It is for
// principals auth does not hold (a cluster's peer nodes); the caller
// reserves the attempt (BeginAttempt) and checks the nonce itself.
func DigestMatches(ha1 string, d DigestResponse) bool {
	want := digestExpected(strings.ToLower(ha1), d)
	return want != "" && d.Realm == DigestRealm &&
		subtle.ConstantTimeCompare([]byte(strings.ToLower(d.Response)), []byte(want)) == 1
}

// digestExpected computes the expected response ("" for an unsupported
// algorithm or qop).
func digestExpected(ha1 string, d DigestResponse) string {
	if d.Algorithm != "" && !strings.EqualFold(d.Algorithm, "MD5") {
		return ""
	}
	ha2 := md5hex(d.Method + ":" + d.URI)
	switch d.QOP {
	case "":
		return md5hex(ha1 + ":" + d.Nonce + ":" + ha2)
	case "auth":
		return md5hex(ha1 + ":" + d.Nonce + ":" + d.NC + ":" + d.CNonce + ":auth:" + ha2)
	}
	return ""
}

// Attempt is a sign-in attempt on a door whose verification auth does not
// do itself (an LDAP bind, an ONVIF WS-Security digest): reserved against
// the lockout before the work, then judged exactly once.
type Attempt struct {
	s              *Service
	res            *reservation
	name, remote   string
	finished       atomic.Bool
	protocol, from string
}

// BeginAttempt reserves an attempt by name from remote, or refuses it
// with a *LockedOutError (429 / RTSP 503). protocol ("http", "rtsp",
// "onvif") and source (SourceLDAP, ...) are recorded with the outcome.
func (s *Service) BeginAttempt(name, remote, protocol, source string) (*Attempt, error) {
	remote = hostOnly(remote)
	res, err := s.lock.reserve(s.now(), attemptKeys(name, remote))
	if err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	return &Attempt{s: s, res: res, name: name, remote: remote, protocol: protocol, from: source}, nil
}

// Succeeded ends the attempt as a success (the (name, address) failures
// are forgotten). The door audits the success itself (e.g. through
// LoginIdentity).
func (a *Attempt) Succeeded() {
	if a.finished.CompareAndSwap(false, true) {
		a.res.finish(a.s.now(), true)
	}
}

// Failed ends the attempt as a failure: counted, audited (login_failed
// with the source), and ErrBadCredentials returned for the client.
func (a *Attempt) Failed(detail string) error {
	if !a.finished.CompareAndSwap(false, true) {
		return ErrBadCredentials
	}
	locked := a.res.finish(a.s.now(), false)
	return a.s.failed(authFailure{name: a.name, remote: a.remote, protocol: a.protocol, source: a.from, detail: detail, locked: locked})
}

// Cancel ends the attempt without judging it (the work could not be done:
// the directory is unreachable, the client went away).
func (a *Attempt) Cancel() {
	if a.finished.CompareAndSwap(false, true) {
		a.res.cancel()
	}
}

// RecordAuthFailure counts and audits a failed authentication a door
// detected on its own (no attempt was reserved: e.g. a malformed
// Authorization header on RTSP). It returns ErrBadCredentials, or a
// *LockedOutError when the address or (name, address) is now locked.
// While one of them is already locked the failure is refused like any
// attempt during a lock: not counted, not audited, and no lockout entry
// is made for the name it carries.
func (s *Service) RecordAuthFailure(name, remote, protocol, source, detail string) error {
	remote = hostOnly(remote)
	locked, err := s.lock.failUnlessLocked(s.now(), attemptKeys(name, remote))
	if err != nil {
		s.Metrics.loginFailed("locked_out")
		return err
	}
	err = s.failed(authFailure{name: name, remote: remote, protocol: protocol, source: source, detail: detail, locked: locked})
	if locked > 0 {
		return &LockedOutError{RetryAfter: locked}
	}
	return err
}

// CheckLocked returns a *LockedOutError while the address, or name from
// it, is locked; a door may call it before doing any work.
func (s *Service) CheckLocked(name, remote string) error {
	return s.lock.check(s.now(), attemptKeys(name, hostOnly(remote)))
}
