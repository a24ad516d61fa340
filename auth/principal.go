// Package auth guards every door of cordon: users and API keys
// (argon2id-hashed secrets), short-lived Ed25519-signed session tokens with
// persistent revocation, login lockout, the HTTP login/logout handlers and
// middleware, and the rights check Principal.CanView. It records what it
// decides in the audit log (package auth/audit).
//
// Credentials accepted:
//
//   - Session token (from POST /api/v1/login): "Authorization: Bearer <jwt>".
//   - API key over HTTP: "Authorization: Bearer key:<name>:<secret>"
//     (preferred: one argon2id verification), or the bare secret
//     "Authorization: Bearer <secret>" (tried against every API key, at
//     most MaxBareKeys of them; slower when it fails).
//   - RTSP Basic: username = user or API key name, password = its secret
//     (see Service.AuthenticatePassword). Digest cannot be offered: it
//     needs the plaintext secret, and cordon stores only argon2id hashes.
//
// Tokens and keys are never accepted in a URL query string.
package auth

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Principal kinds.
const (
	KindUser   = "user"
	KindAPIKey = "api_key"
)

// User is a human operator, as configured.
type User struct {
	Name         string
	PasswordHash string   // argon2id PHC string
	Cameras      []string // glob patterns (path.Match) over camera ids
	Admin        bool
}

// APIKey is a machine client (VMS, NVR, video wall), as configured.
// API keys are never admins.
type APIKey struct {
	Name    string
	KeyHash string   // argon2id PHC string
	Cameras []string // glob patterns (path.Match) over camera ids
}

// Principal is an authenticated caller. Cameras and Admin are the rights at
// the time of authentication; use Service.Lookup or Service.Recheck for the
// current ones.
type Principal struct {
	Name      string
	Kind      string // KindUser or KindAPIKey
	Admin     bool
	Cameras   []string
	TokenID   string    // session token id (jti); "" for API keys and RTSP
	ExpiresAt time.Time // session token expiry; zero for API keys and RTSP

	credential string // fingerprint of the secret's hash when authenticated
}

// CanView reports whether p may view camera. Deny by default: only a
// matching glob grants access.
func (p *Principal) CanView(camera string) bool {
	if p == nil || camera == "" {
		return false
	}
	for _, g := range p.Cameras {
		if ok, err := path.Match(g, camera); err == nil && ok {
			return true
		}
	}
	return false
}

// Directory holds the configured users and API keys. Update replaces them
// atomically (config reload). Safe for concurrent use; the zero value is an
// empty directory.
type Directory struct {
	snap atomic.Pointer[snapshot]

	mu     sync.Mutex
	subs   map[int]func()
	nextID int
}

type entry struct {
	name    string
	kind    string
	admin   bool
	cameras []string
	encoded string // the PHC string
	hash    phc
}

func (e *entry) principal() *Principal {
	return &Principal{
		Name: e.name, Kind: e.kind, Admin: e.admin,
		Cameras:    slices.Clone(e.cameras),
		credential: fingerprint(e.encoded),
	}
}

type snapshot struct {
	users map[string]*entry
	keys  map[string]*entry
	// keyList is the API keys in config order (bare-key Bearer lookup).
	keyList []*entry
	// dummy is verified against for unknown names: same cost as a real one.
	dummy phc
}

// NewDirectory returns a Directory holding users and keys.
func NewDirectory(users []User, keys []APIKey) (*Directory, error) {
	d := &Directory{}
	if err := d.Update(users, keys); err != nil {
		return nil, err
	}
	return d, nil
}

// maxNameLen bounds user and API key names.
const maxNameLen = 128

// ValidateName reports whether name is acceptable for a user or API key:
// 1..128 bytes, no ':' (it separates name and secret in Basic auth and in
// "key:<name>:<secret>"), no whitespace or control characters.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name is longer than %d bytes", maxNameLen)
	}
	for _, r := range name {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.New("name must not contain ':', spaces or control characters")
		}
	}
	return nil
}

// ValidatePattern reports whether glob is a valid camera pattern.
func ValidatePattern(glob string) error {
	if glob == "" {
		return errors.New("pattern is empty")
	}
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("bad glob %q", glob)
	}
	return nil
}

// Update validates users and keys and, if all are valid, replaces the
// directory's content atomically and notifies subscribers. On error
// nothing changes. Errors name the offending entry by index and field
// (never the hash).
func (d *Directory) Update(users []User, keys []APIKey) error {
	s := &snapshot{users: make(map[string]*entry, len(users)), keys: make(map[string]*entry, len(keys))}
	taken := make(map[string]string, len(users)+len(keys))
	counts := map[Argon2Params]int{}
	add := func(field, name, kind, encoded string, cams []string, admin bool) (*entry, error) {
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("%s.name: %w", field, err)
		}
		if prev, dup := taken[name]; dup {
			return nil, fmt.Errorf("%s.name: %q is already used by %s", field, name, prev)
		}
		taken[name] = field
		h, err := parsePHC(encoded)
		if err != nil {
			hashField := "password_hash"
			if kind == KindAPIKey {
				hashField = "key_hash"
			}
			return nil, fmt.Errorf("%s.%s: %w", field, hashField, err)
		}
		for j, g := range cams {
			if err := ValidatePattern(g); err != nil {
				return nil, fmt.Errorf("%s.cameras[%d]: %w", field, j, err)
			}
		}
		counts[h.params]++
		return &entry{name: name, kind: kind, admin: admin, cameras: slices.Clone(cams), encoded: encoded, hash: h}, nil
	}
	for i, u := range users {
		e, err := add(fmt.Sprintf("auth.users[%d]", i), u.Name, KindUser, u.PasswordHash, u.Cameras, u.Admin)
		if err != nil {
			return err
		}
		s.users[u.Name] = e
	}
	for i, k := range keys {
		e, err := add(fmt.Sprintf("auth.api_keys[%d]", i), k.Name, KindAPIKey, k.KeyHash, k.Cameras, false)
		if err != nil {
			return err
		}
		s.keys[k.Name] = e
		s.keyList = append(s.keyList, e)
	}
	// The dummy costs what the most common configured hash costs.
	params, best := DefaultArgon2Params(), 0
	for p, n := range counts {
		if n > best || (n == best && p.MemoryKiB > params.MemoryKiB) {
			params, best = p, n
		}
	}
	dummy, err := dummyHash(params)
	if err != nil {
		return err
	}
	s.dummy = dummy
	d.snap.Store(s)
	d.notify()
	return nil
}

func (d *Directory) current() *snapshot {
	if s := d.snap.Load(); s != nil {
		return s
	}
	return &snapshot{}
}

// Lookup returns the current rights of the principal name of kind
// (KindUser or KindAPIKey), or false if it no longer exists.
func (d *Directory) Lookup(name, kind string) (*Principal, bool) {
	e := d.current().find(name, kind)
	if e == nil {
		return nil, false
	}
	return e.principal(), true
}

func (s *snapshot) find(name, kind string) *entry {
	switch kind {
	case KindUser:
		return s.users[name]
	case KindAPIKey:
		return s.keys[name]
	}
	return nil
}

// Subscribe registers fn to be called after every successful Update. fn
// runs synchronously on the updating goroutine and must not block.
// The returned function unregisters it.
func (d *Directory) Subscribe(fn func()) (cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.subs == nil {
		d.subs = map[int]func(){}
	}
	id := d.nextID
	d.nextID++
	d.subs[id] = fn
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.subs, id)
	}
}

func (d *Directory) notify() {
	d.mu.Lock()
	fns := make([]func(), 0, len(d.subs))
	for _, fn := range d.subs {
		fns = append(fns, fn)
	}
	d.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Names returns the configured user and API key names (sorted), e.g. for
// the admin API. No hashes.
func (d *Directory) Names() (users, keys []string) {
	s := d.current()
	for n := range s.users {
		users = append(users, n)
	}
	for n := range s.keys {
		keys = append(keys, n)
	}
	slices.Sort(users)
	slices.Sort(keys)
	return users, keys
}

// fingerprint identifies a credential's hash without revealing it: a
// changed password or key changes the fingerprint, which invalidates
// tokens and live sessions authenticated with the old one.
func fingerprint(encoded string) string {
	return shortHash(strings.TrimSpace(encoded))
}
