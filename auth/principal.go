// Package auth guards every door of cordon: users and API keys
// (argon2id-hashed secrets), short-lived Ed25519-signed session tokens with
// persistent revocation, lockout that protects without excluding, bounded
// hashing work, the rights model (roles over camera globs) and the one
// authorizer every door asks (Service.Authorize). It records what it
// decides in the audit log (package auth/audit).
//
// Credentials accepted:
//
//   - Session token (from POST /api/v1/login): "Authorization: Bearer <jwt>".
//   - API key over HTTP: "Authorization: Bearer key:<name>:<secret>". The
//     key is looked up by name: one argon2id verification, never a search.
//     A bare "Bearer <secret>" is refused (ErrBareAPIKey): finding its key
//     would cost one argon2id verification per configured key per request.
//   - RTSP Basic: username = user or API key name, password = its secret
//     (Service.AuthenticatePassword).
//   - RTSP Digest: username = user or API key name, password = the
//     principal's RTSP-only Digest secret, of which the configuration holds
//     only the HA1 (Service.AuthenticateDigest; `cordon hash-password
//     --rtsp-digest NAME` generates both). Never the login password.
//   - Directory identities (LDAP, OIDC) become principals through
//     Service.LoginIdentity (see identity.go).
//
// Tokens and keys are never accepted in a URL query string.
package auth

import (
	"encoding/hex"
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

// Principal sources: where the identity was proven.
const (
	SourceLocal = "local" // configured users and API keys
	SourceLDAP  = "ldap"
	SourceOIDC  = "oidc"
)

// User is a human operator, as configured.
type User struct {
	Name         string
	PasswordHash string   // argon2id PHC string
	Cameras      []string // view right on these globs (path.Match)
	Roles        []string // role names (auth.roles[].name)
	Admin        bool     // the admin API only; no camera rights
	DigestHA1    string   // optional hex MD5(name:cordon:rtsp-secret)
}

// APIKey is a machine client (VMS, NVR, video wall), as configured.
// API keys are never admins.
type APIKey struct {
	Name      string
	KeyHash   string   // argon2id PHC string
	Cameras   []string // view right on these globs
	Roles     []string
	DigestHA1 string // optional, as User.DigestHA1
}

// Principal is an authenticated caller. Its rights are those at the time
// of authentication; Service.Authorize and Service.Recheck always decide on
// the current ones (Service.Current returns them).
type Principal struct {
	Name      string
	Kind      string // KindUser or KindAPIKey
	Source    string // SourceLocal, SourceLDAP or SourceOIDC
	Admin     bool
	Cameras   []string  // the view shorthand globs
	Roles     []string  // role names
	TokenID   string    // session token id (jti); "" for API keys and RTSP
	ExpiresAt time.Time // session token expiry; zero for API keys and RTSP

	credential string // fingerprint of the credential it proved
	grants     []grant
}

// Has reports whether p holds right on camera. Deny by default: only a
// matching glob of a grant holding the right allows it.
func (p *Principal) Has(right Right, camera string) bool {
	if p == nil || camera == "" {
		return false
	}
	for _, g := range p.grants {
		if g.rights.has(right) && g.matches(camera) {
			return true
		}
	}
	return false
}

// CanView is Has(RightView, camera).
func (p *Principal) CanView(camera string) bool { return p.Has(RightView, camera) }

// Rights lists p's rights on camera in canonical order (nil = none).
func (p *Principal) Rights(camera string) []Right {
	if p == nil || camera == "" {
		return nil
	}
	var s rightSet
	for _, g := range p.grants {
		if g.matches(camera) {
			s |= g.rights
		}
	}
	return s.list()
}

// PTZPriority is p's PTZ priority on camera: the highest ptz_priority of
// the roles granting it ptz there (1..1000), or 0 without the ptz right.
func (p *Principal) PTZPriority(camera string) int {
	if p == nil || camera == "" {
		return 0
	}
	best := 0
	for _, g := range p.grants {
		if g.rights.has(RightPTZ) && g.matches(camera) {
			best = max(best, g.priority)
		}
	}
	return best
}

// Directory holds the configured roles, users and API keys. Apply
// replaces them atomically (config reload). Safe for concurrent use; the
// zero value is an empty directory.
type Directory struct {
	snap    atomic.Pointer[snapshot]
	applyMu sync.Mutex // serializes Apply so changes are diffed in order

	mu       sync.Mutex
	diffSubs map[int]func(old, cur *snapshot)
	nextID   int
}

type entry struct {
	name    string
	kind    string
	admin   bool
	cameras []string
	roles   []string
	grants  []grant
	encoded string // the PHC string
	hash    phc
	ha1     []byte // Digest HA1 (16 bytes) or nil
}

func (e *entry) principal() *Principal {
	return &Principal{
		Name: e.name, Kind: e.kind, Source: SourceLocal, Admin: e.admin,
		Cameras: slices.Clone(e.cameras), Roles: slices.Clone(e.roles),
		credential: fingerprint(e.encoded), grants: e.grants,
	}
}

// digestPrincipal is the principal as proven by RTSP Digest: its
// credential is the HA1, so rotating the Digest secret ends its sessions.
func (e *entry) digestPrincipal() *Principal {
	p := e.principal()
	p.credential = digestFingerprint(e.ha1)
	return p
}

// credentialValid reports whether a principal authenticated with
// credential fingerprint c may still act as e.
func (e *entry) credentialValid(c string) bool {
	if strings.HasPrefix(c, digestPrefix) {
		return e.ha1 != nil && c == digestFingerprint(e.ha1)
	}
	return c == fingerprint(e.encoded)
}

type snapshot struct {
	roles map[string]*Role
	users map[string]*entry
	keys  map[string]*entry
	// dummy is verified against for unknown names: same cost as a real one.
	dummy phc
}

// DirectoryConfig is everything a Directory holds.
type DirectoryConfig struct {
	Roles   []Role
	Users   []User
	APIKeys []APIKey
}

// NewDirectory returns a Directory holding users and keys (no roles).
func NewDirectory(users []User, keys []APIKey) (*Directory, error) {
	return NewDirectoryConfig(DirectoryConfig{Users: users, APIKeys: keys})
}

// NewDirectoryConfig returns a Directory holding cfg.
func NewDirectoryConfig(cfg DirectoryConfig) (*Directory, error) {
	d := &Directory{}
	if err := d.Apply(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// maxNameLen bounds user, API key and role names.
const maxNameLen = 128

// ValidateName reports whether name is acceptable for a user, API key or
// role: 1..128 bytes, no ':' (it separates name and secret in Basic auth
// and in "key:<name>:<secret>"), no whitespace or control characters.
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

// Update replaces users and keys, keeping the current roles. See Apply.
func (d *Directory) Update(users []User, keys []APIKey) error {
	var roles []Role
	for _, r := range d.current().roles {
		roles = append(roles, *r)
	}
	slices.SortFunc(roles, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return d.Apply(DirectoryConfig{Roles: roles, Users: users, APIKeys: keys})
}

// Apply validates cfg and, if all is valid, replaces the directory's
// content atomically and notifies subscribers. On error nothing changes.
// Errors name the offending entry by config path and field (never a hash).
func (d *Directory) Apply(cfg DirectoryConfig) error {
	s, err := buildSnapshot(cfg)
	if err != nil {
		return err
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	old := d.current()
	d.snap.Store(s)
	d.notify(old, s)
	return nil
}

// buildSnapshot validates cfg and resolves every principal's grants.
func buildSnapshot(cfg DirectoryConfig) (*snapshot, error) {
	s := &snapshot{roles: map[string]*Role{}, users: make(map[string]*entry, len(cfg.Users)), keys: make(map[string]*entry, len(cfg.APIKeys))}
	for i := range cfg.Roles {
		r := cfg.Roles[i]
		f := fmt.Sprintf("auth.roles[%d]", i)
		if err := validateRole(f, &r); err != nil {
			return nil, err
		}
		if _, dup := s.roles[r.Name]; dup {
			return nil, fmt.Errorf("%s.name: role %q is defined twice", f, r.Name)
		}
		r.Cameras, r.Rights = slices.Clone(r.Cameras), slices.Clone(r.Rights)
		s.roles[r.Name] = &r
	}
	taken := make(map[string]string, len(cfg.Users)+len(cfg.APIKeys))
	counts := map[Argon2Params]int{}
	add := func(field, hashField string, e *entry, cams, roles []string, ha1 string) error {
		if err := ValidateName(e.name); err != nil {
			return fmt.Errorf("%s.name: %w", field, err)
		}
		if prev, dup := taken[e.name]; dup {
			return fmt.Errorf("%s.name: %q is already used by %s", field, e.name, prev)
		}
		taken[e.name] = field
		h, err := parsePHC(e.encoded)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", field, hashField, err)
		}
		for j, g := range cams {
			if err := ValidatePattern(g); err != nil {
				return fmt.Errorf("%s.cameras[%d]: %w", field, j, err)
			}
		}
		for j, rn := range roles {
			if s.roles[rn] == nil {
				return fmt.Errorf("%s.roles[%d]: role %q is not defined in auth.roles", field, j, rn)
			}
		}
		if ha1 != "" {
			b, err := hex.DecodeString(ha1)
			if err != nil || len(b) != 16 {
				return fmt.Errorf("%s.rtsp_digest_ha1: must be 32 hex digits", field)
			}
			e.ha1 = b
		}
		counts[h.params]++
		e.hash, e.cameras, e.roles = h, slices.Clone(cams), slices.Clone(roles)
		e.grants = resolveGrants(cams, roles, s.roles)
		return nil
	}
	for i, u := range cfg.Users {
		e := &entry{name: u.Name, kind: KindUser, admin: u.Admin, encoded: u.PasswordHash}
		if err := add(fmt.Sprintf("auth.users[%d]", i), "password_hash", e, u.Cameras, u.Roles, u.DigestHA1); err != nil {
			return nil, err
		}
		s.users[u.Name] = e
	}
	for i, k := range cfg.APIKeys {
		e := &entry{name: k.Name, kind: KindAPIKey, encoded: k.KeyHash}
		if err := add(fmt.Sprintf("auth.api_keys[%d]", i), "key_hash", e, k.Cameras, k.Roles, k.DigestHA1); err != nil {
			return nil, err
		}
		s.keys[k.Name] = e
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
		return nil, err
	}
	s.dummy = dummy
	return s, nil
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

// Subscribe registers fn to be called after every successful Apply. fn
// runs synchronously on the updating goroutine and must not block.
// The returned function unregisters it.
func (d *Directory) Subscribe(fn func()) (cancel func()) {
	return d.subscribe(func(_, _ *snapshot) { fn() })
}

func (d *Directory) subscribe(fn func(old, cur *snapshot)) (cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.diffSubs == nil {
		d.diffSubs = map[int]func(old, cur *snapshot){}
	}
	id := d.nextID
	d.nextID++
	d.diffSubs[id] = fn
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.diffSubs, id)
	}
}

func (d *Directory) notify(old, cur *snapshot) {
	d.mu.Lock()
	fns := make([]func(old, cur *snapshot), 0, len(d.diffSubs))
	for _, fn := range d.diffSubs {
		fns = append(fns, fn)
	}
	d.mu.Unlock()
	for _, fn := range fns {
		fn(old, cur)
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

// RoleNames returns the configured role names (sorted).
func (d *Directory) RoleNames() []string {
	var out []string
	for n := range d.current().roles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// DigestEnabled reports whether any principal has a Digest HA1, i.e.
// whether an RTSP door should offer Digest at all.
func (d *Directory) DigestEnabled() bool {
	s := d.current()
	for _, m := range []map[string]*entry{s.users, s.keys} {
		for _, e := range m {
			if e.ha1 != nil {
				return true
			}
		}
	}
	return false
}

const digestPrefix = "d:"

// fingerprint identifies a credential's hash without revealing it: a
// changed password or key changes the fingerprint, which invalidates
// tokens and live sessions authenticated with the old one.
func fingerprint(encoded string) string {
	return shortHash(strings.TrimSpace(encoded))
}

func digestFingerprint(ha1 []byte) string {
	return digestPrefix + shortHash(hex.EncodeToString(ha1))
}
