package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// verifyCache remembers successful argon2id verifications for a short
// time so that clients presenting a secret on every request (API keys,
// RTSP clients re-sending Basic auth) do not pay argon2id each time. It
// is keyed by HMAC-SHA-256 (per-process random key) of kind, name and
// secret: it never holds a secret. An entry is valid only while the
// principal's hash in the directory is the one it was verified against.
type verifyCache struct {
	key [32]byte
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[[32]byte]cacheEntry
}

type cacheEntry struct {
	name    string
	kind    string
	encoded string
	expires time.Time
}

func newVerifyCache(ttl time.Duration, maxEntries int) (*verifyCache, error) {
	c := &verifyCache{ttl: ttl, max: maxEntries, m: map[[32]byte]cacheEntry{}}
	if _, err := rand.Read(c.key[:]); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *verifyCache) id(parts ...string) [32]byte {
	mac := hmac.New(sha256.New, c.key[:])
	for _, p := range parts {
		mac.Write([]byte(p))
		mac.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], mac.Sum(nil))
	return out
}

func (c *verifyCache) get(id [32]byte, now time.Time) (cacheEntry, bool) {
	if c.ttl <= 0 {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || !now.Before(e.expires) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *verifyCache) put(id [32]byte, e cacheEntry, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	e.expires = now.Add(c.ttl)
	c.m[id] = e
}

func (c *verifyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
