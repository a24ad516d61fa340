package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"cordon/auth/audit"
)

// AuditLog is what Service needs from the audit log (*audit.Log).
type AuditLog interface {
	Append(audit.Event) error
	Healthy() error
}

// ChangeKind says what changed in a Change.
type ChangeKind int

const (
	// TokenRevoked: the session token TokenID of Name was revoked (logout).
	// End live sessions started with that token.
	TokenRevoked ChangeKind = iota + 1
	// DirectoryChanged: users or API keys were replaced (config reload).
	// Re-check every live session with Service.Recheck.
	DirectoryChanged
)

// Change is delivered to subscribers (see Service.Subscribe).
type Change struct {
	Kind    ChangeKind
	Name    string // principal name (TokenRevoked)
	TokenID string // revoked token id (TokenRevoked)
}

// Defaults.
const (
	DefaultTokenTTL       = 8 * time.Hour
	DefaultVerifyCacheTTL = 60 * time.Second
	DefaultMaxBareKeys    = 16
	maxCacheEntries       = 4096
)

// Service authenticates requests and passwords, issues and revokes
// session tokens, and enforces lockout. Set the exported fields, then
// call Initialize. Safe for concurrent use after that.
type Service struct {
	// StateDir holds the signing key and the revocations (created 0700).
	StateDir string
	// TokenTTL is the session token lifetime (0 = DefaultTokenTTL).
	TokenTTL time.Duration
	// Directory holds the users and API keys. Required.
	Directory *Directory
	// Audit receives login_ok, login_failed, logout and denied. Required.
	Audit AuditLog
	// Hostile, when set, receives login_failed instead of Audit (an
	// *audit.Aggregator: one line per address and interval, then a count).
	Hostile HostileAuditor
	// Logger (nil = slog.Default()). Never receives a secret.
	Logger *slog.Logger
	// Metrics (nil = none).
	Metrics *Metrics
	// Now is the clock (nil = time.Now).
	Now func() time.Time

	// Lockout policy (zero = DefaultLockoutPolicy()).
	Lockout LockoutPolicy
	// VerifyCacheTTL: how long a successful API key / RTSP password
	// verification is remembered (0 = DefaultVerifyCacheTTL, <0 = never).
	VerifyCacheTTL time.Duration
	// MaxConcurrentHashes bounds simultaneous argon2id computations
	// (each uses the hash's m KiB of memory). 0 = 4.
	MaxConcurrentHashes int
	// MaxBareKeys: a Bearer credential that is neither a token nor
	// "key:<name>:<secret>" is tried against the API keys only when there
	// are at most this many (0 = DefaultMaxBareKeys, <0 = never).
	MaxBareKeys int
	// TrustedProxies: peers whose X-Forwarded-For is believed. Empty =
	// the remote address is always the TCP peer.
	TrustedProxies []netip.Prefix

	tokens   *tokenCodec
	revoked  *revocations
	lock     *lockout
	cache    *verifyCache
	hashSem  chan struct{}
	unsubDir func()

	subMu  sync.Mutex
	subs   map[int]func(Change)
	nextID int

	// hashes counts argon2id verifications (tests assert timing parity).
	hashesMu sync.Mutex
	hashes   int
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Initialize validates the configuration, creates the state dir and the
// signing key if needed, and loads the revocations.
func (s *Service) Initialize() error {
	switch {
	case s.StateDir == "":
		return errors.New("auth: state dir is empty")
	case s.Directory == nil:
		return errors.New("auth: no directory")
	case s.Audit == nil:
		return errors.New("auth: no audit log")
	case s.TokenTTL < 0:
		return errors.New("auth: token TTL must be positive")
	}
	if s.TokenTTL == 0 {
		s.TokenTTL = DefaultTokenTTL
	}
	if s.Lockout == (LockoutPolicy{}) {
		s.Lockout = DefaultLockoutPolicy()
	}
	if s.Lockout.Threshold < 1 || s.Lockout.Base <= 0 || s.Lockout.Max < s.Lockout.Base || s.Lockout.Decay <= 0 {
		return errors.New("auth: invalid lockout policy")
	}
	if s.VerifyCacheTTL == 0 {
		s.VerifyCacheTTL = DefaultVerifyCacheTTL
	}
	if s.MaxConcurrentHashes <= 0 {
		s.MaxConcurrentHashes = 4
	}
	if s.MaxBareKeys == 0 {
		s.MaxBareKeys = DefaultMaxBareKeys
	}
	warn, err := ensureStateDir(s.StateDir)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if warn != "" {
		s.logger().Warn(warn, "state_dir", s.StateDir)
	}
	key, created, err := loadOrCreateKey(s.StateDir)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if created {
		s.logger().Info("created token signing key", "state_dir", s.StateDir)
	}
	rev, pruned, err := openRevocations(s.StateDir, s.now())
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	cache, err := newVerifyCache(s.VerifyCacheTTL, maxCacheEntries)
	if err != nil {
		rev.close()
		return fmt.Errorf("auth: %w", err)
	}
	if s.Directory.snap.Load() == nil { // zero Directory: make it a valid empty one
		if err := s.Directory.Update(nil, nil); err != nil {
			rev.close()
			return fmt.Errorf("auth: %w", err)
		}
	}
	s.tokens = newTokenCodec(key, s.now)
	s.revoked = rev
	s.lock = newLockout(s.Lockout)
	s.cache = cache
	s.hashSem = make(chan struct{}, s.MaxConcurrentHashes)
	s.subs = map[int]func(Change){}
	s.unsubDir = s.Directory.Subscribe(func() {
		s.cache.clear()
		s.publish(Change{Kind: DirectoryChanged})
	})
	s.logger().Info("auth ready", "token_ttl", s.TokenTTL, "revocations_pruned", pruned)
	return nil
}

// Close releases files. Subscribers are dropped.
func (s *Service) Close() {
	if s.unsubDir != nil {
		s.unsubDir()
		s.unsubDir = nil
	}
	if s.revoked != nil {
		s.revoked.close()
	}
	s.subMu.Lock()
	s.subs = nil
	s.subMu.Unlock()
}

// Subscribe registers fn for token revocations and directory changes, so
// that session registries (WHEP, RTSP) can end sessions that are no longer
// allowed. fn runs synchronously on the goroutine that made the change
// and must not block. The returned function unregisters it.
func (s *Service) Subscribe(fn func(Change)) (cancel func()) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subs == nil {
		s.subs = map[int]func(Change){}
	}
	id := s.nextID
	s.nextID++
	s.subs[id] = fn
	return func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		delete(s.subs, id)
	}
}

func (s *Service) publish(c Change) {
	s.subMu.Lock()
	fns := make([]func(Change), 0, len(s.subs))
	for _, fn := range s.subs {
		fns = append(fns, fn)
	}
	s.subMu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// Lookup returns the CURRENT rights of a principal (false if it no longer
// exists).
func (s *Service) Lookup(name, kind string) (*Principal, bool) {
	return s.Directory.Lookup(name, kind)
}

// Recheck tells whether a live session of p on camera may continue: the
// token is not revoked, the principal still exists with the same
// credential, and its current globs still allow camera. It does not end
// sessions when the token merely expires (a session outlives the token
// that started it; logout or a config change ends it). Errors:
// ErrTokenRevoked, ErrPrincipalGone, ErrForbidden.
func (s *Service) Recheck(p *Principal, camera string) error {
	if p.TokenID != "" && s.revoked.revoked(p.TokenID) {
		return ErrTokenRevoked
	}
	cur, ok := s.Directory.Lookup(p.Name, p.Kind)
	if !ok || cur.credential != p.credential {
		return ErrPrincipalGone
	}
	if camera != "" && !cur.CanView(camera) {
		return ErrForbidden
	}
	return nil
}

// AuditHealthy reports whether the audit log can record; doors must refuse
// new viewing sessions (fail closed) when it returns an error.
func (s *Service) AuditHealthy() error {
	if err := s.Audit.Healthy(); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// RemoteAddr returns the client address of r: the TCP peer's IP, or, when
// the peer is a trusted proxy, the right-most untrusted X-Forwarded-For
// entry.
func (s *Service) RemoteAddr(r *http.Request) string {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer.String()
		}
		if !s.trusted(a.Unmap()) {
			return a.Unmap().String()
		}
	}
	return peer.String()
}

func (s *Service) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// verify runs one argon2id verification under the concurrency limit.
func (s *Service) verify(ctx context.Context, h phc, secret []byte) (bool, error) {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashSem }()
	s.hashesMu.Lock()
	s.hashes++
	s.hashesMu.Unlock()
	return h.verify(secret), nil
}

func (s *Service) hashCount() int {
	s.hashesMu.Lock()
	defer s.hashesMu.Unlock()
	return s.hashes
}

// checkLocked returns a *LockedOutError if any of keys is locked.
func (s *Service) checkLocked(now time.Time, keys ...string) error {
	var worst time.Duration
	for _, k := range keys {
		worst = max(worst, s.lock.remaining(k, now))
	}
	if worst > 0 {
		return &LockedOutError{RetryAfter: worst}
	}
	return nil
}

func (s *Service) audit(e audit.Event) error {
	err := s.Audit.Append(e)
	if err != nil {
		s.logger().Error("audit append failed", "event", e.Event, "err", err)
	}
	return err
}

// credentialCheck is one attempt to prove knowledge of a secret.
type credentialCheck struct {
	name, secret     string
	kinds            []string // which kinds the name may be
	remote, protocol string
	lockUser         bool // count failures against the name too
	auditSuccess     bool // audit login_ok on a verified (uncached) success
	noCache          bool // always run argon2id (interactive login)
}

// checkSecret verifies name/secret against the directory with lockout,
// caching and auditing. The unknown-name path costs one argon2id
// verification, like a wrong secret.
func (s *Service) checkSecret(ctx context.Context, c credentialCheck) (*Principal, error) {
	now := s.now()
	keys := []string{addrKey(c.remote)}
	if c.lockUser {
		keys = append(keys, userKey(c.name))
	}
	if err := s.checkLocked(now, keys...); err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	snap := s.Directory.current()
	var e *entry
	for _, k := range c.kinds {
		if len(c.name) > maxNameLen {
			break // never a configured name; costs the dummy verification
		}
		if e = snap.find(c.name, k); e != nil {
			break
		}
	}
	kind := KindUser
	if e != nil {
		kind = e.kind
	}
	cacheID := s.cache.id(kind, c.name, c.secret)
	if e != nil && !c.noCache {
		if ce, ok := s.cache.get(cacheID, now); ok && ce.encoded == e.encoded {
			return e.principal(), nil
		}
	}
	h := snap.dummy
	if e != nil {
		h = e.hash
	}
	ok, err := s.verify(ctx, h, []byte(c.secret))
	if err != nil {
		return nil, err
	}
	if !ok || e == nil {
		return nil, s.failed(s.now(), keys, c, "bad credentials") // lock from the end of the attempt, after the hash
	}
	if c.lockUser {
		s.lock.reset(userKey(c.name))
	}
	if c.auditSuccess {
		if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: e.name, Remote: c.remote, Protocol: c.protocol, Detail: e.kind}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
		}
	}
	if !c.noCache {
		s.cache.put(cacheID, cacheEntry{name: e.name, kind: e.kind, encoded: e.encoded}, now)
	}
	return e.principal(), nil
}

// failed records a failed attempt (lockout, metrics, audit) and returns
// the error for the caller: ErrBadCredentials, or a LockedOutError when
// this failure triggered a lockout.
func (s *Service) failed(now time.Time, keys []string, c credentialCheck, detail string) error {
	var locked time.Duration
	for _, k := range keys {
		locked = max(locked, s.lock.fail(k, now))
	}
	s.Metrics.loginFailed("bad_credentials")
	if locked > 0 {
		detail = fmt.Sprintf("%s; locked out for %s", detail, locked)
		s.logger().Warn("sign-in lockout", "actor", c.name, "remote", c.remote, "protocol", c.protocol, "for", locked)
	}
	s.auditHostile(locked > 0, audit.Event{Event: audit.LoginFailed, Actor: c.name, Remote: c.remote, Protocol: c.protocol, Detail: detail})
	return ErrBadCredentials
}

// AuthenticatePassword checks a name and secret presented over RTSP Basic
// auth (or any other password door): a user's password or an API key's
// secret. Lockout applies per remote address and per name; failures are
// audited (login_failed); successful verifications are cached for
// VerifyCacheTTL so clients re-sending credentials on every request stay
// cheap. remote may be "ip" or "ip:port".
func (s *Service) AuthenticatePassword(name, secret, remote, protocol string) (*Principal, error) {
	return s.authenticatePassword(context.Background(), name, secret, hostOnly(remote), protocol)
}

func (s *Service) authenticatePassword(ctx context.Context, name, secret, remote, protocol string) (*Principal, error) {
	return s.checkSecret(ctx, credentialCheck{
		name: name, secret: secret, kinds: []string{KindUser, KindAPIKey},
		remote: remote, protocol: protocol, lockUser: true, auditSuccess: true,
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
// a session token, "key:<name>:<secret>", or a bare API key secret.
// Credentials in the query string are refused (ErrTokenInQuery) even when
// a header is present. Errors map to statuses with HTTPStatus and are
// written with WriteError (401, or 429 for a locked-out address).
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
			remote: remote, protocol: "http", lockUser: true, auditSuccess: true,
		})
	}
	if strings.Count(tok, ".") == 2 {
		return s.authenticateToken(tok)
	}
	return s.authenticateBareKey(r.Context(), tok, remote)
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
// revocation, and that its user still exists with the same password.
// No argon2id: this is the per-request path.
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
	p, ok := s.Directory.Lookup(c.Subject, c.Kind)
	if !ok || p.credential != c.Credential {
		return nil, ErrPrincipalGone
	}
	p.TokenID = c.ID
	p.ExpiresAt = c.ExpiresAt.Time
	return p, nil
}

// authenticateBareKey tries a Bearer secret against every API key (cached
// on success; lockout per address on failure).
func (s *Service) authenticateBareKey(ctx context.Context, secret, remote string) (*Principal, error) {
	now := s.now()
	akey := addrKey(remote)
	if err := s.checkLocked(now, akey); err != nil {
		s.Metrics.loginFailed("locked_out")
		return nil, err
	}
	snap := s.Directory.current()
	cacheID := s.cache.id("bare", secret)
	if ce, ok := s.cache.get(cacheID, now); ok {
		if e := snap.keys[ce.name]; e != nil && e.encoded == ce.encoded {
			return e.principal(), nil
		}
	}
	c := credentialCheck{name: "", remote: remote, protocol: "http"}
	if len(snap.keyList) == 0 || s.MaxBareKeys < 0 || len(snap.keyList) > s.MaxBareKeys {
		// Same cost as one wrong key.
		if _, err := s.verify(ctx, snap.dummy, []byte(secret)); err != nil {
			return nil, err
		}
		return nil, s.failed(now, []string{akey}, c, "unrecognized bearer credential")
	}
	for _, e := range snap.keyList {
		ok, err := s.verify(ctx, e.hash, []byte(secret))
		if err != nil {
			return nil, err
		}
		if ok {
			if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: e.name, Remote: remote, Protocol: "http", Detail: e.kind}); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
			}
			s.cache.put(cacheID, cacheEntry{name: e.name, kind: e.kind, encoded: e.encoded}, now)
			return e.principal(), nil
		}
	}
	return nil, s.failed(now, []string{akey}, c, "unrecognized bearer credential")
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
	case errors.Is(err, ErrBadCredentials):
		return "bad_api_key"
	case errors.Is(err, ErrPrincipalGone):
		return "principal_gone"
	case errors.Is(err, ErrMalformedCredentials):
		return "malformed"
	}
	return "invalid_token"
}

// Login checks a user's name and password (lockout per address and per
// name) and issues a session token. It is what LoginHandler calls.
func (s *Service) Login(ctx context.Context, name, password, remote string) (token string, p *Principal, err error) {
	p, err = s.checkSecret(ctx, credentialCheck{
		name: name, secret: password, kinds: []string{KindUser},
		remote: remote, protocol: "http", lockUser: true, noCache: true,
	})
	if err != nil {
		return "", nil, err
	}
	jti, err := newTokenID()
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	exp := now.Add(s.TokenTTL)
	token, err = s.tokens.issue(p.Name, p.Kind, p.credential, jti, now, exp)
	if err != nil {
		return "", nil, fmt.Errorf("signing token: %w", err)
	}
	if err := s.audit(audit.Event{Event: audit.LoginOK, Actor: p.Name, Remote: remote, Protocol: "http"}); err != nil {
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
	_ = s.audit(audit.Event{Event: audit.Logout, Actor: p.Name, Remote: remote, Protocol: "http"})
	s.publish(Change{Kind: TokenRevoked, Name: p.Name, TokenID: p.TokenID})
	return err
}

// AuthorizeView is the check a door (WHEP, RTSP) makes before starting a
// viewing session: the audit log must be writable (fail closed:
// ErrAuditUnavailable, 503), the principal must still exist with the same
// credential and its token not be revoked (ErrPrincipalGone /
// ErrTokenRevoked, 401), and its current globs must allow camera
// (ErrForbidden, 403, audited as denied). Whether camera exists (404) is
// the door's business and should be checked after this, so that callers
// without rights cannot probe camera ids.
func (s *Service) AuthorizeView(p *Principal, camera, remote, protocol string) error {
	if err := s.AuditHealthy(); err != nil {
		return err
	}
	err := s.Recheck(p, camera)
	if errors.Is(err, ErrForbidden) {
		if aerr := s.audit(audit.Event{Event: audit.Denied, Actor: p.Name, Camera: camera, Remote: remote, Protocol: protocol, Detail: "camera not permitted"}); aerr != nil {
			return fmt.Errorf("%w: %v", ErrAuditUnavailable, aerr)
		}
	}
	return err
}

// RecordViewStart durably records a view_start; refuse the session if it
// returns an error (ErrAuditUnavailable).
func (s *Service) RecordViewStart(p *Principal, camera, remote, protocol string) error {
	if err := s.audit(audit.Event{Event: audit.ViewStart, Actor: p.Name, Camera: camera, Remote: remote, Protocol: protocol, Detail: p.Kind}); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// RecordViewEnd records a view_end with the session's duration and bytes
// sent, and why it ended (a short caller-provided reason, never a secret).
func (s *Service) RecordViewEnd(p *Principal, camera, remote, protocol string, d time.Duration, bytes int64, reason string) error {
	if err := s.audit(audit.Event{Event: audit.ViewEnd, Actor: p.Name, Camera: camera, Remote: remote, Protocol: protocol,
		Detail: reason, DurationS: d.Seconds(), Bytes: bytes}); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}
