package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cordon/auth/audit"
)

// AuditLog is what Service needs from the audit log (*audit.Log).
type AuditLog interface {
	Append(audit.Event) error
	Healthy() error
}

// CameraCatalog tells Authorize whether a camera (and stream: "" or
// "main" for the main stream, "sub" for the sub stream) exists. It is
// asked only after the permission check.
type CameraCatalog interface {
	CameraExists(id, stream string) bool
}

// Defaults.
const (
	DefaultTokenTTL       = 8 * time.Hour
	DefaultVerifyCacheTTL = 60 * time.Second
	maxCacheEntries       = 4096
)

// Service authenticates requests and passwords, issues and revokes
// session tokens, enforces lockout and bounded hashing, and authorizes
// every action (Authorize). Set the exported fields, then call
// Initialize. Safe for concurrent use after that.
type Service struct {
	// StateDir holds the signing key and the revocations (created 0700).
	StateDir string
	// TokenTTL is the session token lifetime (0 = DefaultTokenTTL).
	TokenTTL time.Duration
	// Directory holds the roles, users and API keys. Required.
	Directory *Directory
	// Audit receives login_ok, login_failed, logout and denied. Required.
	Audit AuditLog
	// Hostile, when set, receives instead of Audit what a client can
	// repeat at will: login_failed (per address, lockouts as their own
	// kind) and denied (per principal) — an *audit.Aggregator: the first
	// line per source, kind and interval, then a count.
	Hostile HostileAuditor
	// Cameras, when set, makes Authorize answer ErrNoSuchCamera for a
	// permitted camera that does not exist (nil: the door checks).
	Cameras CameraCatalog
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
	// MaxConcurrentHashes bounds simultaneous argon2id verifications
	// (0 = DefaultMaxConcurrentHashes()). Each address has at most one.
	MaxConcurrentHashes int
	// MaxHashQueue bounds verifications waiting for a slot, in each of the
	// two admission lanes (addresses without a recent failure, which go
	// first, and the others); beyond it the answer is 503 + Retry-After
	// (0 = DefaultHashQueue).
	MaxHashQueue int
	// TrustedProxies: peers whose X-Forwarded-For is believed. Empty =
	// the remote address is always the TCP peer.
	TrustedProxies []netip.Prefix
	// DirectoryPasswords, when set, checks the passwords of names that
	// are not local users or API keys (LDAP): POST /api/v1/login and
	// RTSP Basic accept directory credentials (dirpass.go).
	DirectoryPasswords PasswordDirectory

	// Cluster (shared.go). TokenKey signs and verifies session tokens
	// instead of the state dir's key (nil = that key): every node of a
	// cluster derives the same one. Revocations shares this node's
	// logouts; the cluster hands everyone's back through Revoked.
	// SharedLockouts adds the other nodes' failures to this node's.
	TokenKey       ed25519.PrivateKey
	Revocations    RevocationPublisher
	SharedLockouts SharedLockouts

	tokens     *tokenCodec
	revoked    *revocations
	lock       *lockout
	cache      *verifyCache
	hashes     *hashLimiter
	identities *identities
	unsubDir   func()

	flightMu  sync.Mutex
	flights   map[[32]byte]*flight
	followers atomic.Int32 // attempts waiting on another's verification

	subMu  sync.Mutex
	subs   map[int]func(Change)
	nextID int

	// hashCount counts argon2id verifications (tests assert timing parity).
	hashesMu   sync.Mutex
	hashesDone int
	// hashHook, in tests, runs inside each verification's slot.
	hashHook func(remote string)
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
	case s.MaxConcurrentHashes < 0 || s.MaxHashQueue < 0:
		return errors.New("auth: hashing bounds must not be negative")
	}
	if err := s.defaults(); err != nil {
		return err
	}
	warn, err := ensureStateDir(s.StateDir)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if warn != "" {
		s.logger().Warn(warn, "state_dir", s.StateDir)
	}
	key, created := s.TokenKey, false
	if key == nil {
		if key, created, err = loadOrCreateKey(s.StateDir); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
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
		if err := s.Directory.Apply(DirectoryConfig{}); err != nil {
			rev.close()
			return fmt.Errorf("auth: %w", err)
		}
	}
	s.tokens = newTokenCodec(key, s.now)
	s.revoked = rev
	s.lock = newLockout(s.Lockout)
	s.lock.shared = s.SharedLockouts
	s.cache = cache
	s.hashes = newHashLimiter(s.MaxConcurrentHashes, s.MaxHashQueue, s.Metrics)
	s.identities = newIdentities()
	s.flights = map[[32]byte]*flight{}
	s.subMu.Lock()
	if s.subs == nil {
		s.subs = map[int]func(Change){}
	}
	s.subMu.Unlock()
	s.unsubDir = s.Directory.subscribe(func(old, cur *snapshot) {
		s.cache.clear()
		for _, c := range diffSnapshots(old, cur) {
			s.publish(c)
		}
		s.publish(Change{Kind: DirectoryChanged})
	})
	s.logger().Info("auth ready", "token_ttl", s.TokenTTL, "revocations_pruned", pruned,
		"hash_concurrency", s.MaxConcurrentHashes, "hash_queue", s.MaxHashQueue)
	return nil
}

// defaults fills the zero fields and checks the lockout policy.
func (s *Service) defaults() error {
	if s.TokenTTL == 0 {
		s.TokenTTL = DefaultTokenTTL
	}
	if s.Lockout == (LockoutPolicy{}) {
		s.Lockout = DefaultLockoutPolicy()
	}
	if !s.Lockout.valid() {
		return errors.New("auth: invalid lockout policy")
	}
	if s.VerifyCacheTTL == 0 {
		s.VerifyCacheTTL = DefaultVerifyCacheTTL
	}
	if s.MaxConcurrentHashes == 0 {
		s.MaxConcurrentHashes = DefaultMaxConcurrentHashes()
	}
	if s.MaxHashQueue == 0 {
		s.MaxHashQueue = DefaultHashQueue
	}
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

// Lookup returns the CURRENT rights of a configured principal (false if
// it no longer exists).
func (s *Service) Lookup(name, kind string) (*Principal, bool) {
	return s.Directory.Lookup(name, kind)
}

// AuditHealthy reports whether the audit log can record; doors must refuse
// new sessions (fail closed) when it returns an error.
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

// verify runs one argon2id verification under the hashing bounds: one
// per address, a bounded global queue (BusyError beyond it) in which
// addresses without a recent failure go first (hashLimiter).
func (s *Service) verify(ctx context.Context, remote string, h phc, secret []byte) (bool, error) {
	release, err := s.hashes.acquire(ctx, addrID(remote), func() bool { return s.lock.clean(remote, s.now()) })
	if err != nil {
		return false, err
	}
	defer release()
	s.hashesMu.Lock()
	s.hashesDone++
	hook := s.hashHook
	s.hashesMu.Unlock()
	if hook != nil {
		hook(remote)
	}
	return h.verify(secret), nil
}

func (s *Service) hashCount() int {
	s.hashesMu.Lock()
	defer s.hashesMu.Unlock()
	return s.hashesDone
}

func (s *Service) audit(e audit.Event) error {
	err := s.Audit.Append(e)
	if err != nil {
		s.logger().Error("audit append failed", "event", e.Event, "err", err)
	}
	return err
}

// authFailure describes one failed authentication, on any door.
type authFailure struct {
	name, remote, protocol, source, detail string
	locked                                 time.Duration // lock this failure caused (0 = none)
}

// failed records a failed authentication (metrics, log, audit) and
// returns the error for the caller: ErrBadCredentials. Every door's
// failures end here: this is the one place login_failed is written.
func (s *Service) failed(f authFailure) error {
	s.Metrics.loginFailed("bad_credentials")
	detail := f.detail
	if f.locked > 0 {
		detail = fmt.Sprintf("%s; locked out for %s", detail, f.locked)
		s.logger().Warn("sign-in lockout", "actor", f.name, "remote", f.remote, "protocol", f.protocol, "for", f.locked)
	}
	s.auditHostile(f.locked > 0, audit.Event{Event: audit.LoginFailed, Actor: f.name, Remote: f.remote, Protocol: f.protocol, Source: sourceOrLocal(f.source), Detail: detail})
	return ErrBadCredentials
}

func sourceOrLocal(src string) string {
	if src == "" {
		return SourceLocal
	}
	return src
}
