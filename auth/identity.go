package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Identity is a person proven by a directory (an LDAP bind, an OIDC ID
// token). Directory packages return it with the role names its groups map
// to; auth turns it into a Principal (Source = the directory) whose rights
// are those roles' current definitions. It never has the cameras
// shorthand or admin: directories grant roles only.
type Identity struct {
	Name    string
	Source  string    // SourceLDAP or SourceOIDC
	Groups  []string  // the groups seen (recorded in login_ok's detail)
	Roles   []string  // the role names the groups map to (may be empty: no rights)
	Expires time.Time // end of the sign-in (e.g. the IdP session); zero = until removed
}

const maxIdentityRoles = 64

type identityState struct {
	roles   []string
	expires time.Time
	removed bool
	tokens  map[string]time.Time // jti -> expiry, revoked when removed
}

// identities is the table of directory identities seen by this process:
// signed in here, or presenting a token issued by a node that signed them
// in. The directory re-check (Service.Identities, RefreshIdentity,
// RemoveIdentity) keeps it current.
type identities struct {
	mu sync.Mutex
	m  map[string]*identityState
}

func newIdentities() *identities { return &identities{m: map[string]*identityState{}} }

func identityKey(source, name string) string { return source + "\x00" + name }

func validateIdentity(id Identity) error {
	if id.Source != SourceLDAP && id.Source != SourceOIDC {
		return fmt.Errorf("identity source %q is not ldap or oidc", id.Source)
	}
	if err := ValidateName(id.Name); err != nil {
		return fmt.Errorf("identity name: %w", err)
	}
	if len(id.Roles) > maxIdentityRoles {
		return fmt.Errorf("identity maps to more than %d roles", maxIdentityRoles)
	}
	for _, r := range id.Roles {
		if err := ValidateName(r); err != nil {
			return fmt.Errorf("identity role: %w", err)
		}
	}
	return nil
}

// LoginIdentity signs in a directory identity: records it, issues a
// session token (expiring at the identity's Expires when that is sooner
// than the token TTL) and audits login_ok with its source. Failed
// directory sign-ins are reported with Service.BeginAttempt /
// Attempt.Failed, so they count towards lockout like any other door.
func (s *Service) LoginIdentity(_ context.Context, id Identity, remote, protocol string) (string, *Principal, error) {
	if err := validateIdentity(id); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrInvalidIdentity, err)
	}
	if s.Directory.current().localName(id.Name) { // the name-clash rule (dirpass.go)
		_ = s.failed(authFailure{name: id.Name, remote: hostOnly(remote), protocol: protocol, source: id.Source,
			detail: "directory identity refused: " + id.Name + " is a local account's name"})
		return "", nil, ErrLocalName
	}
	if !id.Expires.IsZero() && !id.Expires.After(s.now()) {
		return "", nil, ErrPrincipalGone
	}
	s.RefreshIdentity(id)
	p, err := s.identities.principal(id.Source, id.Name, s.Directory.current(), s.now())
	if err != nil {
		return "", nil, err
	}
	p.ExpiresAt = id.Expires
	detail := ""
	if len(id.Groups) > 0 {
		detail = "groups: " + strings.Join(id.Groups, ", ")
	}
	token, p, err := s.issue(p, remote, protocol, detail)
	if err != nil {
		return "", nil, err
	}
	s.identities.track(id.Source, id.Name, p.TokenID, p.ExpiresAt, s.now())
	return token, p, nil
}

// RefreshIdentity records the result of a directory re-check for an
// identity that still exists: its current roles and expiry. When its
// rights changed, subscribers get a RightsChanged (live sessions it may no
// longer hold end).
func (s *Service) RefreshIdentity(id Identity) {
	if validateIdentity(id) != nil {
		return
	}
	roles := slices.Clone(id.Roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	t := s.identities
	t.mu.Lock()
	st := t.m[identityKey(id.Source, id.Name)]
	changed := st != nil && (!slices.Equal(st.roles, roles) || !st.expires.Equal(id.Expires) || st.removed)
	if st == nil {
		st = &identityState{tokens: map[string]time.Time{}}
		t.m[identityKey(id.Source, id.Name)] = st
	}
	st.roles, st.expires, st.removed = roles, id.Expires, false
	t.mu.Unlock()
	if changed {
		s.publish(Change{Kind: RightsChanged, Name: id.Name, PrincipalKind: KindUser, Source: id.Source})
	}
}

// RemoveIdentity records that the directory no longer knows the identity
// (deleted, disabled, or its sign-in was revoked at the IdP): every token
// it holds is revoked (persistently) and subscribers get a
// PrincipalRemoved, so its live sessions end.
func (s *Service) RemoveIdentity(source, name, reason string) {
	t := s.identities
	t.mu.Lock()
	st := t.m[identityKey(source, name)]
	if st == nil {
		st = &identityState{tokens: map[string]time.Time{}}
		t.m[identityKey(source, name)] = st
	}
	st.removed = true
	toks := st.tokens
	st.tokens = map[string]time.Time{}
	t.mu.Unlock()
	now := s.now()
	for jti, exp := range toks {
		if err := s.revoked.revoke(jti, exp, now); err != nil {
			s.logger().Error("persisting token revocation failed", "actor", name, "source", source, "err", err)
		}
		s.share(jti, exp)
	}
	s.logger().Info("directory identity removed", "actor", name, "source", source, "reason", reason, "tokens_revoked", len(toks))
	s.publish(Change{Kind: PrincipalRemoved, Name: name, PrincipalKind: KindUser, Source: source})
}

// Identities lists the directory identities of source that this process
// considers signed in (for the directory's periodic re-check).
func (s *Service) Identities(source string) []Identity {
	t := s.identities
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Identity
	for k, st := range t.m {
		src, name, _ := strings.Cut(k, "\x00")
		if src != source || st.removed {
			continue
		}
		out = append(out, Identity{Name: name, Source: src, Roles: slices.Clone(st.roles), Expires: st.expires})
	}
	slices.SortFunc(out, func(a, b Identity) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// identityFromToken is the principal of a directory identity's session
// token. An identity this process has not seen (another node signed it
// in, or this one restarted) is recorded from the token's claims and is
// then subject to the directory re-check like any other.
func (s *Service) identityFromToken(c *tokenClaims) (*Principal, error) {
	now := s.now()
	t := s.identities
	t.mu.Lock()
	key := identityKey(c.Source, c.Subject)
	if t.m[key] == nil {
		roles := slices.Clone(c.Roles)
		slices.Sort(roles)
		st := &identityState{roles: slices.Compact(roles), tokens: map[string]time.Time{}}
		if c.Source == SourceOIDC {
			// an OIDC sign-in ends with its ID token, which the token's
			// expiry is bounded by
			st.expires = c.ExpiresAt.Time
		}
		t.m[key] = st
	}
	t.mu.Unlock()
	p, err := t.principal(c.Source, c.Subject, s.Directory.current(), now)
	if err != nil {
		return nil, err
	}
	t.track(c.Source, c.Subject, c.ID, c.ExpiresAt.Time, now)
	p.TokenID, p.ExpiresAt = c.ID, c.ExpiresAt.Time
	return p, nil
}

// principal returns the identity's current principal, or ErrPrincipalGone
// when it was removed, has expired, or is unknown.
func (t *identities) principal(source, name string, snap *snapshot, now time.Time) (*Principal, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[identityKey(source, name)]
	switch {
	case st == nil || st.removed:
		return nil, ErrPrincipalGone
	case !st.expires.IsZero() && !now.Before(st.expires):
		return nil, fmt.Errorf("%w: the directory sign-in expired", ErrPrincipalGone)
	}
	return &Principal{
		Name: name, Kind: KindUser, Source: source, Roles: slices.Clone(st.roles),
		grants: resolveGrants(nil, st.roles, snap.roles),
	}, nil
}

// track remembers a token of the identity (revoked if it is removed).
func (t *identities) track(source, name, jti string, exp, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[identityKey(source, name)]
	if st == nil || jti == "" {
		return
	}
	for id, e := range st.tokens {
		if e.Add(tokenLeeway).Before(now) {
			delete(st.tokens, id)
		}
	}
	st.tokens[jti] = exp
}
