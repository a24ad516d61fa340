package auth

import (
	"slices"
)

// ChangeKind says what changed in a Change.
type ChangeKind int

const (
	// TokenRevoked: the session token TokenID of Name was revoked
	// (logout). End live sessions started with that token.
	TokenRevoked ChangeKind = iota + 1
	// DirectoryChanged: the configured directory was replaced (reload).
	// Sent once after the precise changes below, for subscribers that
	// re-check everything.
	DirectoryChanged
	// PrincipalRemoved: the principal no longer exists (removed from the
	// config, or a directory identity removed or disabled).
	PrincipalRemoved
	// CredentialChanged: its password, API key or Digest secret changed:
	// everything authenticated with the old one must end.
	CredentialChanged
	// RightsChanged: its grants (cameras, roles, role definitions, admin)
	// changed; some live sessions may no longer be allowed.
	RightsChanged
)

func (k ChangeKind) String() string {
	switch k {
	case TokenRevoked:
		return "token_revoked"
	case DirectoryChanged:
		return "directory_changed"
	case PrincipalRemoved:
		return "principal_removed"
	case CredentialChanged:
		return "credential_changed"
	case RightsChanged:
		return "rights_changed"
	}
	return "unknown"
}

// Change is delivered to subscribers (see Service.Subscribe).
type Change struct {
	Kind          ChangeKind
	Name          string // the principal's name ("" for DirectoryChanged)
	PrincipalKind string // KindUser or KindAPIKey
	Source        string // SourceLocal, SourceLDAP, SourceOIDC
	TokenID       string // TokenRevoked only
}

// Affects reports whether c may concern a session held by p: a
// DirectoryChanged affects everyone, a TokenRevoked the sessions of that
// token, the others every principal of that name, kind and source.
// Sessions it affects must be re-checked (Service.Recheck), not ended
// blindly: a RightsChanged may widen rights.
func (c Change) Affects(p *Principal) bool {
	switch {
	case p == nil:
		return false
	case c.Kind == DirectoryChanged:
		return true
	case c.Kind == TokenRevoked && c.TokenID != "":
		return p.TokenID == c.TokenID
	}
	return c.Name == p.Name && c.PrincipalKind == p.Kind && c.Source == sourceOrLocal(p.Source)
}

// diffSnapshots lists the precise changes from old to cur.
func diffSnapshots(old, cur *snapshot) []Change {
	var out []Change
	for _, kind := range []string{KindUser, KindAPIKey} {
		olds, curs := old.users, cur.users
		if kind == KindAPIKey {
			olds, curs = old.keys, cur.keys
		}
		names := make([]string, 0, len(olds))
		for n := range olds {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			o, c := olds[n], curs[n]
			ch := Change{Name: n, PrincipalKind: kind, Source: SourceLocal}
			switch {
			case c == nil:
				ch.Kind = PrincipalRemoved
			case o.encoded != c.encoded || !slices.Equal(o.ha1, c.ha1):
				ch.Kind = CredentialChanged
			case o.admin != c.admin || !grantsEqual(o.grants, c.grants):
				ch.Kind = RightsChanged
			default:
				continue
			}
			out = append(out, ch)
		}
	}
	return out
}

// Subscribe registers fn for changes that may end live sessions: token
// revocations, principals removed, credentials and rights changed (config
// reload, directory re-check), so that session registries (WHEP, RTSP,
// PTZ control) can end what is no longer allowed. fn runs synchronously
// on the goroutine that made the change and must not block (Guard does
// the work on its own goroutine). The returned function unregisters it.
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
