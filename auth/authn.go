package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"cordon/auth/audit"
)

// credentialCheck is one attempt to prove knowledge of a secret.
type credentialCheck struct {
	name, secret     string
	kinds            []string // which kinds the name may be
	remote, protocol string
	source           string // "" = local; the directory's source (dirpass.go)
	auditSuccess     bool   // audit login_ok on a verified (uncached) success
	noCache          bool   // always run argon2id, no sharing (interactive login)
}

// flight is one verification that concurrent identical attempts share.
type flight struct {
	done chan struct{}
	p    *Principal
	err  error
}

// checkSecret verifies name/secret against the directory: refused while
// the address or (name, address) is locked; a cached success is answered
// at once; otherwise the attempt is reserved BEFORE hashing (so a parallel
// burst is counted like a serial one) and verified under the hashing
// bounds. Identical
// concurrent attempts (same name and secret, cacheable paths) share one
// verification. An unknown name costs one argon2id verification, like a
// wrong secret.
func (s *Service) checkSecret(ctx context.Context, c credentialCheck) (*Principal, error) {
	now := s.now()
	snap := s.Directory.current()
	var e *entry
	if len(c.name) <= maxNameLen { // a longer name is never configured
		for _, k := range c.kinds {
			if e = snap.find(c.name, k); e != nil {
				break
			}
		}
	}
	kind := c.kinds[0]
	if e != nil {
		kind = e.kind
	}
	// The lock comes first, even before the cache: a locked-out guesser
	// must not learn that a guess matches a recently proven secret.
	keys := attemptKeys(c.name, c.remote)
	if err := s.lock.check(now, keys); err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	cacheID := s.cache.id(kind, c.name, c.secret)
	if e != nil && !c.noCache {
		if ce, ok := s.cache.get(cacheID, now); ok && ce.encoded == e.encoded {
			return e.principal(), nil // proven recently: no hashing
		}
	}
	if !c.noCache {
		fl, leader := s.joinFlight(cacheID)
		if !leader {
			return s.follow(ctx, fl, c, keys)
		}
		p, err := s.verifyReserved(ctx, snap, e, c, keys, cacheID)
		s.endFlight(cacheID, fl, p, err)
		return p, err
	}
	return s.verifyReserved(ctx, snap, e, c, keys, cacheID)
}

// verifyReserved reserves the attempt, runs argon2id and judges it.
func (s *Service) verifyReserved(ctx context.Context, snap *snapshot, e *entry, c credentialCheck, keys []lockKey, cacheID [32]byte) (*Principal, error) {
	res, err := s.lock.reserve(s.now(), keys)
	if err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	h := snap.dummy
	if e != nil {
		h = e.hash
	}
	ok, err := s.verify(ctx, c.remote, h, []byte(c.secret))
	if err != nil {
		res.cancel() // not judged: overload or the client went away
		if errors.Is(err, ErrBusy) {
			s.Metrics.loginFailed("busy")
		}
		return nil, err
	}
	now := s.now()
	if !ok || e == nil {
		locked := res.finish(now, false) // counted from the end of the attempt
		return nil, s.failed(authFailure{name: c.name, remote: c.remote, protocol: c.protocol, detail: "bad credentials", locked: locked})
	}
	res.finish(now, true)
	if c.auditSuccess {
		if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: e.name, Remote: c.remote, Protocol: c.protocol, Source: SourceLocal, Detail: e.kind}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
		}
	}
	if !c.noCache {
		s.cache.put(cacheID, cacheEntry{name: e.name, kind: e.kind, encoded: e.encoded}, now)
	}
	return e.principal(), nil
}

func (s *Service) joinFlight(id [32]byte) (*flight, bool) {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	if fl := s.flights[id]; fl != nil {
		return fl, false
	}
	fl := &flight{done: make(chan struct{})}
	s.flights[id] = fl
	return fl, true
}

func (s *Service) endFlight(id [32]byte, fl *flight, p *Principal, err error) {
	s.flightMu.Lock()
	delete(s.flights, id)
	s.flightMu.Unlock()
	fl.p, fl.err = p, err
	close(fl.done)
}

// follow waits for the verification an identical attempt is running and
// takes its answer; a failure counts against the follower too.
func (s *Service) follow(ctx context.Context, fl *flight, c credentialCheck, keys []lockKey) (*Principal, error) {
	s.followers.Add(1)
	defer s.followers.Add(-1)
	select {
	case <-fl.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	switch {
	case fl.err == nil:
		p := *fl.p
		return &p, nil
	case errors.Is(fl.err, ErrBadCredentials):
		locked := s.lock.fail(s.now(), keys)
		return nil, s.failed(authFailure{name: c.name, remote: c.remote, protocol: c.protocol, source: c.source, detail: "bad credentials", locked: locked})
	}
	return nil, fl.err
}

// AuthenticatePassword checks a name and secret presented over RTSP Basic
// auth (or any other password door): a user's password or an API key's
// secret. Lockout applies per remote address and per (name, address);
// failures are audited (login_failed); successful verifications are cached
// for VerifyCacheTTL so clients re-sending credentials on every request
// stay cheap. remote may be "ip" or "ip:port".
func (s *Service) AuthenticatePassword(name, secret, remote, protocol string) (*Principal, error) {
	return s.AuthenticatePasswordContext(context.Background(), name, secret, remote, protocol)
}

// AuthenticatePasswordContext is AuthenticatePassword with a context that
// bounds the wait for a hashing slot.
func (s *Service) AuthenticatePasswordContext(ctx context.Context, name, secret, remote, protocol string) (*Principal, error) {
	if s.directoryName(name) { // not a local name: the directory's (dirpass.go)
		return s.authenticateDirectory(ctx, credentialCheck{name: name, secret: secret, remote: hostOnly(remote), protocol: protocol})
	}
	return s.checkSecret(ctx, credentialCheck{
		name: name, secret: secret, kinds: []string{KindUser, KindAPIKey},
		remote: hostOnly(remote), protocol: protocol, auditSuccess: true,
	})
}

func hostOnly(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// queryCredentialParams are refused outright when present in a URL.
var queryCredentialParams = [...]string{"access_token", "token", "api_key", "apikey", "key", "auth", "authorization"}

// AuthenticateRequest authenticates r by its Authorization: Bearer header:
// a session token or "key:<name>:<secret>". A bare secret is refused
// (ErrBareAPIKey). Credentials in the query string are refused
// (ErrTokenInQuery) even when a header is present. Forged or malformed
// tokens and bare secrets count towards the address's lockout; expired or
// revoked tokens do not (browsers present them routinely). Answer errors
// with WriteError (Explain).
func (s *Service) AuthenticateRequest(r *http.Request) (*Principal, error) {
	p, err := s.authenticateRequest(r)
	if err != nil {
		s.Metrics.requestFailed(requestFailureReason(err))
	}
	return p, err
}

func (s *Service) authenticateRequest(r *http.Request) (*Principal, error) {
	if r.URL != nil && r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, k := range queryCredentialParams {
			if q.Has(k) {
				return nil, ErrTokenInQuery
			}
		}
	}
	tok, err := bearer(r)
	if err != nil {
		return nil, err
	}
	remote := s.RemoteAddr(r)
	if rest, ok := strings.CutPrefix(tok, "key:"); ok {
		name, secret, ok := strings.Cut(rest, ":")
		if !ok || name == "" || secret == "" {
			return nil, ErrMalformedCredentials
		}
		return s.checkSecret(r.Context(), credentialCheck{
			name: name, secret: secret, kinds: []string{KindAPIKey},
			remote: remote, protocol: "http", auditSuccess: true,
		})
	}
	if strings.Count(tok, ".") == 2 {
		p, err := s.authenticateToken(tok)
		if errors.Is(err, ErrInvalidToken) {
			s.failedUnreserved("", remote, "http", "invalid bearer token")
		}
		return p, err
	}
	s.failedUnreserved("", remote, "http", "bare API key refused (use key:<name>:<secret>)")
	return nil, ErrBareAPIKey
}

// failedUnreserved counts and records a failure that needed no hashing.
func (s *Service) failedUnreserved(name, remote, protocol, detail string) {
	locked := s.lock.fail(s.now(), attemptKeys(name, remote))
	_ = s.failed(authFailure{name: name, remote: remote, protocol: protocol, detail: detail, locked: locked})
}

func bearer(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", ErrNoCredentials
	case 1:
	default:
		return "", ErrMalformedCredentials
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMalformedCredentials
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", ErrMalformedCredentials
	}
	if len(tok) > MaxTokenLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	return tok, nil
}

// authenticateToken checks a session token: signature, algorithm, times,
// revocation, and that its principal still exists with the same
// credential. No argon2id: this is the per-request path.
func (s *Service) authenticateToken(tok string) (*Principal, error) {
	start := time.Now()
	defer func() { s.Metrics.tokenChecked(time.Since(start).Seconds()) }()
	c, err := s.tokens.parse(tok)
	if err != nil {
		return nil, err
	}
	if s.revoked.revoked(c.ID) {
		return nil, ErrTokenRevoked
	}
	if c.Source != "" && c.Source != SourceLocal {
		return s.identityFromToken(c)
	}
	p, ok := s.Directory.Lookup(c.Subject, c.Kind)
	if !ok || p.credential != c.Credential {
		return nil, ErrPrincipalGone
	}
	p.TokenID = c.ID
	p.ExpiresAt = c.ExpiresAt.Time
	return p, nil
}

func requestFailureReason(err error) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return "no_credentials"
	case errors.Is(err, ErrTokenInQuery):
		return "token_in_query"
	case errors.Is(err, ErrTokenExpired):
		return "expired"
	case errors.Is(err, ErrTokenRevoked):
		return "revoked"
	case errors.Is(err, ErrLockedOut):
		return "locked_out"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrBadCredentials):
		return "bad_api_key"
	case errors.Is(err, ErrBareAPIKey):
		return "bare_api_key"
	case errors.Is(err, ErrPrincipalGone):
		return "principal_gone"
	case errors.Is(err, ErrMalformedCredentials):
		return "malformed"
	}
	return "invalid_token"
}

// Login checks a user's name and password (lockout per address and per
// (name, address), one argon2id verification every time) and issues a
// session token. It is what LoginHandler calls.
func (s *Service) Login(ctx context.Context, name, password, remote string) (token string, p *Principal, err error) {
	if s.directoryName(name) { // not a local name: the directory's (dirpass.go)
		return s.loginDirectory(ctx, name, password, remote)
	}
	p, err = s.checkSecret(ctx, credentialCheck{
		name: name, secret: password, kinds: []string{KindUser},
		remote: remote, protocol: "http", noCache: true,
	})
	if err != nil {
		return "", nil, err
	}
	return s.issue(p, remote, "http", "")
}

// issue signs a session token for p and audits login_ok.
func (s *Service) issue(p *Principal, remote, protocol, detail string) (string, *Principal, error) {
	jti, err := newTokenID()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	exp := now.Add(s.TokenTTL)
	if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(exp) {
		exp = p.ExpiresAt // a directory identity's sign-in expires earlier
	}
	token, err := s.tokens.issue(tokenSubject{name: p.Name, kind: p.Kind, credential: p.credential, source: p.Source, roles: p.Roles}, jti, now, exp)
	if err != nil {
		return "", nil, fmt.Errorf("signing token: %w", err)
	}
	if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: p.Name, Remote: remote, Protocol: protocol, Source: sourceOrLocal(p.Source), Detail: detail}); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	s.Metrics.loginOK()
	p.TokenID, p.ExpiresAt = jti, exp.Truncate(time.Second)
	return token, p, nil
}

// Logout revokes p's session token everywhere (persistently) and notifies
// subscribers (TokenRevoked). The revocation is effective in memory even
// when persisting it fails (the error is returned).
func (s *Service) Logout(p *Principal, remote string) error {
	if p.TokenID == "" {
		return errors.New("not a session token")
	}
	err := s.revoked.revoke(p.TokenID, p.ExpiresAt, s.now())
	if err != nil {
		s.logger().Error("persisting token revocation failed", "actor", p.Name, "err", err)
	}
	s.share(p.TokenID, p.ExpiresAt)
	_ = s.audit(audit.Event{Event: audit.Logout, Actor: p.Name, Remote: remote, Protocol: "http"})
	s.publish(Change{Kind: TokenRevoked, Name: p.Name, PrincipalKind: p.Kind, Source: sourceOrLocal(p.Source), TokenID: p.TokenID})
	return err
}
