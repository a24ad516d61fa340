package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cordon/auth/audit"
)

// PasswordDirectory checks the names and passwords of people who are not
// configured locally: an LDAP directory (the gateway adapts
// auth/directory's LDAP to it). Set Service.DirectoryPasswords to use it
// in Login (POST /api/v1/login) and AuthenticatePassword (RTSP Basic).
type PasswordDirectory interface {
	// Source is the source of the identities it returns (SourceLDAP).
	Source() string
	// AuthenticatePassword returns the identity the directory vouches
	// for (Name in the directory's spelling, its roles). Errors:
	// ErrBadCredentials (unknown name, wrong or empty password, disabled
	// account), an error matching ErrDirectoryUnavailable (unreachable,
	// no answer within its timeout), or the context's error.
	AuthenticatePassword(ctx context.Context, name, password string) (Identity, error)
}

// ErrDirectoryUnavailable: the directory that vouches for non-local names
// cannot be reached. Local users keep working; directory users get 503.
var ErrDirectoryUnavailable = errors.New("the sign-in directory cannot be reached: directory accounts cannot sign in now (local accounts still can); try again later")

// ErrLocalName: a directory identity carries the name of a local user or
// API key (the name-clash rule below); it is refused.
var ErrLocalName = errors.New("this name belongs to a local cordon account, so the directory cannot sign it in; ask your administrator")

// ErrInvalidIdentity: LoginIdentity refused an identity cordon cannot
// use (a name with spaces or ':', too many roles, an unknown source).
var ErrInvalidIdentity = errors.New("directory identity not acceptable")

// DirectoryUnavailableError is ErrDirectoryUnavailable for one source.
type DirectoryUnavailableError struct {
	Source string
}

func (e *DirectoryUnavailableError) Error() string {
	return "the " + e.Source + " directory cannot be reached: directory accounts cannot sign in now (local accounts still can); try again later"
}

// Is makes errors.Is(err, ErrDirectoryUnavailable) true.
func (e *DirectoryUnavailableError) Is(target error) bool { return target == ErrDirectoryUnavailable }

// directoryRetry is the Retry-After of a 503 for an unreachable directory.
const directoryRetry = 10 * time.Second

// The name-clash rule: a name configured under auth.users or
// auth.api_keys (compared ignoring case) is a local account. Its password
// is checked against its hash only and is never sent to the directory,
// and a directory identity that comes back with such a name is refused, so
// a directory-side rename can never pass for a local account in the
// audit trail or the session list.

// directoryName reports whether a password for name goes to the directory.
func (s *Service) directoryName(name string) bool {
	if s.DirectoryPasswords == nil || len(name) > maxNameLen {
		return false
	}
	return !s.Directory.current().localName(name)
}

// localName reports whether name is a configured user or API key,
// ignoring case.
func (snap *snapshot) localName(name string) bool {
	if snap.users[name] != nil || snap.keys[name] != nil {
		return true
	}
	for _, m := range []map[string]*entry{snap.users, snap.keys} {
		for n := range m {
			if strings.EqualFold(n, name) {
				return true
			}
		}
	}
	return false
}

// loginDirectory is Login for a name the directory vouches for: the
// password checked there (lockout as for local users), then a session
// token issued through LoginIdentity (login_ok with the source).
func (s *Service) loginDirectory(ctx context.Context, name, password, remote string) (string, *Principal, error) {
	id, err := s.verifyDirectory(ctx, credentialCheck{name: name, secret: password, remote: remote, protocol: "http", noCache: true})
	if err != nil {
		return "", nil, err
	}
	return s.LoginIdentity(ctx, id, remote, "http")
}

// authenticateDirectory is AuthenticatePassword for a name the directory
// vouches for (RTSP Basic). A success is remembered for VerifyCacheTTL
// (keyed by an HMAC of name and password, never the password), so a client
// that re-sends its credentials on every request binds once a minute, not
// on every request; a cached success is honoured only while the identity
// is still signed in (a re-check that removed it, or narrowed its roles,
// applies to the next request).
func (s *Service) authenticateDirectory(ctx context.Context, c credentialCheck) (*Principal, error) {
	src := s.DirectoryPasswords.Source()
	c.source = src
	now := s.now()
	keys := attemptKeys(c.name, c.remote)
	if err := s.lock.check(now, keys); err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	cacheID := s.cache.id("directory", src, c.name, c.secret)
	if ce, ok := s.cache.get(cacheID, now); ok {
		if p, err := s.identities.principal(src, ce.name, s.Directory.current(), now); err == nil {
			return p, nil
		}
	}
	fl, leader := s.joinFlight(cacheID)
	if !leader {
		return s.follow(ctx, fl, c, keys)
	}
	p, err := s.authenticateDirectoryOnce(ctx, c, cacheID)
	s.endFlight(cacheID, fl, p, err)
	return p, err
}

func (s *Service) authenticateDirectoryOnce(ctx context.Context, c credentialCheck, cacheID [32]byte) (*Principal, error) {
	id, err := s.verifyDirectory(ctx, c)
	if err != nil {
		return nil, err
	}
	s.RefreshIdentity(id)
	p, err := s.identities.principal(id.Source, id.Name, s.Directory.current(), s.now())
	if err != nil {
		return nil, err
	}
	detail := ""
	if len(id.Groups) > 0 {
		detail = "groups: " + strings.Join(id.Groups, ", ")
	}
	if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: id.Name, Remote: c.remote, Protocol: c.protocol, Source: id.Source, Detail: detail}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	s.cache.put(cacheID, cacheEntry{name: id.Name, kind: id.Source}, s.now())
	return p, nil
}

// verifyDirectory checks a name and password with the directory under the
// lockout: the attempt is reserved first; a wrong password (or unknown
// name) is counted and audited as login_failed with the directory's
// source; an unreachable directory is not counted (503). An answer from
// the directory is followed by one argon2id verification against the
// dummy hash, so a directory name costs what a local one does (a name's
// answer time does not tell whether it is a local account).
func (s *Service) verifyDirectory(ctx context.Context, c credentialCheck) (Identity, error) {
	src := s.DirectoryPasswords.Source()
	keys := attemptKeys(c.name, c.remote)
	res, err := s.lock.reserve(s.now(), keys)
	if err != nil {
		s.Metrics.loginFailed("locked_out")
		return Identity{}, err
	}
	id, err := s.DirectoryPasswords.AuthenticatePassword(ctx, c.name, c.secret)
	if err != nil && !errors.Is(err, ErrBadCredentials) {
		res.cancel() // not judged: the directory did not answer, or the client left
		if errors.Is(err, ErrDirectoryUnavailable) {
			s.Metrics.loginFailed("directory_unavailable")
			s.logger().Warn("directory sign-in refused: directory unreachable", "actor", c.name, "remote", c.remote, "protocol", c.protocol, "source", src)
			return Identity{}, err
		}
		if ctx.Err() != nil {
			return Identity{}, ctx.Err()
		}
		s.logger().Error("directory sign-in failed", "actor", c.name, "source", src, "err", err)
		return Identity{}, &DirectoryUnavailableError{Source: src}
	}
	if _, herr := s.verify(ctx, c.remote, s.Directory.current().dummy, []byte(c.secret)); herr != nil {
		res.cancel()
		if errors.Is(herr, ErrBusy) {
			s.Metrics.loginFailed("busy")
		}
		return Identity{}, herr
	}
	detail := "bad credentials"
	if err == nil {
		switch verr := validateIdentity(id); {
		case verr != nil:
			err, detail = ErrBadCredentials, "directory identity refused: "+verr.Error()
		case id.Source != src:
			err, detail = ErrBadCredentials, "directory identity of another source"
		case s.Directory.current().localName(id.Name):
			err, detail = ErrBadCredentials, "directory account name "+id.Name+" is a local account's"
			s.logger().Warn("directory sign-in refused: the directory's name for the account is a local account's name", "actor", c.name, "directory_name", id.Name, "source", src)
		}
	}
	now := s.now()
	if err != nil {
		locked := res.finish(now, false)
		return Identity{}, s.failed(authFailure{name: c.name, remote: c.remote, protocol: c.protocol, source: src, detail: detail, locked: locked})
	}
	res.finish(now, true)
	return id, nil
}
