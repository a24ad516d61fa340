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
	expires  time.Time
}

// errBusy: too many sign-ins in progress.
var errBusy = errors.New("too many sign-ins in progress")

// pendingStore keeps started sign-ins by state, each usable once, for at
// most ttl, at most max at a time (expired ones are dropped first; when
// still full, new sign-ins are refused rather than evicting others').
type pendingStore struct {
	mu    sync.Mutex
	m     map[string]*pending
	max   int
	ttl   time.Duration
	now   func() time.Time
	sweep time.Time
}

func newPendingStore(max int, ttl time.Duration, now func() time.Time) *pendingStore {
	return &pendingStore{m: map[string]*pending{}, max: max, ttl: ttl, now: now}
}

func (s *pendingStore) put(state string, p *pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= s.max || now.Sub(s.sweep) > s.ttl {
		for k, v := range s.m {
			if now.After(v.expires) {
				delete(s.m, k)
			}
		}
		s.sweep = now
	}
	if len(s.m) >= s.max {
		return errBusy
	}
	p.expires = now.Add(s.ttl)
	s.m[state] = p
	return nil
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
	delete(s.m, state)
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
