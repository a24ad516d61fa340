package directory

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// pending is a sign-in started by /oidc/login and not yet completed.
type pending struct {
	nonce    string
	verifier string   // PKCE code verifier
	binding  [32]byte // SHA-256 of the browser's binding cookie
	returnTo string
	addr     string // addrlimit.Key of the address that started it
	expires  time.Time
}

// Refusals of a new sign-in.
var (
	// errBusy: too many sign-ins in progress altogether.
	errBusy = errors.New("too many sign-ins in progress")
	// errBusyAddr: too many sign-ins in progress from one address (IPv6:
	// one /64).
	errBusyAddr = errors.New("too many sign-ins in progress from this address")
)

// pendingStore keeps started sign-ins by state, each usable once, for at
// most ttl, at most max at a time and at most perAddr from one address
// (so that one address cannot fill the store and block everyone's single
// sign-on). Expired ones are dropped first; when still full, new sign-ins
// are refused rather than evicting others'.
type pendingStore struct {
	mu      sync.Mutex
	m       map[string]*pending
	perAddr map[string]int // sign-ins in m per address key
	max     int
	maxAddr int
	ttl     time.Duration
	now     func() time.Time
	sweep   time.Time
}

func newPendingStore(max, maxAddr int, ttl time.Duration, now func() time.Time) *pendingStore {
	return &pendingStore{m: map[string]*pending{}, perAddr: map[string]int{}, max: max, maxAddr: maxAddr, ttl: ttl, now: now}
}

// put records p under state for the address key p.addr.
func (s *pendingStore) put(state string, p *pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	full := len(s.m) >= s.max || s.perAddr[p.addr] >= s.maxAddr
	// A full sweep costs O(max): at most once a second when a cap is
	// hit (the login handler is rate-limited too), else once per ttl.
	if (full && now.Sub(s.sweep) >= time.Second) || now.Sub(s.sweep) > s.ttl {
		for k, v := range s.m {
			if now.After(v.expires) {
				s.remove(k, v)
			}
		}
		s.sweep = now
	}
	if s.perAddr[p.addr] >= s.maxAddr {
		return errBusyAddr
	}
	if len(s.m) >= s.max {
		return errBusy
	}
	p.expires = now.Add(s.ttl)
	s.m[state] = p
	s.perAddr[p.addr]++
	return nil
}

func (s *pendingStore) remove(state string, p *pending) {
	delete(s.m, state)
	if s.perAddr[p.addr]--; s.perAddr[p.addr] <= 0 {
		delete(s.perAddr, p.addr)
	}
}

// take removes and returns the sign-in of state: a state is used once,
// so a replayed callback finds nothing.
func (s *pendingStore) take(state string) (*pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[state]
	if !ok {
		return nil, false
	}
	s.remove(state, p)
	if s.now().After(p.expires) {
		return nil, false
	}
	return p, true
}

func (s *pendingStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// randomToken returns 32 random bytes, base64url without padding (43
// characters): states, nonces, PKCE verifiers and binding cookies.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func bindingHash(cookie string) [32]byte { return sha256.Sum256([]byte(cookie)) }

func sameBinding(a, b [32]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// pkceChallenge is the S256 code challenge of verifier (RFC 7636).
func pkceChallenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
