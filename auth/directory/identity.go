package directory

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sources of an Identity (the principal's Source in package auth).
const (
	SourceLDAP = "ldap"
	SourceOIDC = "oidc"
)

// Identity is a person or machine the directory vouched for.
type Identity struct {
	// Name is the principal name: the directory's spelling of the user
	// name (LDAP username_attribute; OIDC username_claim).
	Name string
	// Source is SourceLDAP or SourceOIDC.
	Source string
	// Subject is the directory's stable id: the LDAP entry's DN, or the
	// OIDC "sub" claim.
	Subject string
	// Groups as the directory names them: DNs (LDAP) or claim values
	// (OIDC). Bounded by MaxGroups.
	Groups []string
	// Roles are the cordon role names the groups map to (role_map),
	// sorted and unique. Empty: the user may sign in but has no rights.
	Roles []string
	// Expires is the latest end of a session issued for this identity:
	// the ID token's expiry (OIDC) bounded by the token TTL, or now plus
	// the token TTL (LDAP). Zero when no TTL was configured (LDAP only).
	Expires time.Time
}

// Errors. Match them with errors.Is; the error text never carries a
// password or a token.
var (
	// ErrInvalidCredentials: unknown user, wrong or empty password,
	// disabled account, or a token that failed verification. The doors
	// answer 401 and count it towards lockout.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrUnavailable: the directory could not be reached or did not
	// answer in time (or its TLS certificate or service account failed).
	// The doors answer 503; local users keep working.
	ErrUnavailable = errors.New("directory unavailable")
	// ErrGone: a re-check found the user removed or disabled.
	ErrGone = errors.New("directory user removed or disabled")
)

// Bounds on what a directory may hand back.
const (
	// MaxGroups is the most groups an identity may carry; a user in more
	// is refused (never silently truncated).
	MaxGroups = 1024
	// MaxGroupLen bounds one group name or DN, in bytes.
	MaxGroupLen = 1024
	// MaxNameLen bounds a user name, in bytes.
	MaxNameLen = 256
)

// UnavailableError says which directory is unreachable and why (no
// secrets). errors.Is(err, ErrUnavailable) is true.
type UnavailableError struct {
	Source string
	Reason string
}

func (e *UnavailableError) Error() string {
	return e.Source + " directory unavailable: " + e.Reason
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func unavailable(source, reason string) error {
	return &UnavailableError{Source: source, Reason: reason}
}

// RoleMapping maps one directory group to cordon roles (role_map).
type RoleMapping struct {
	Group string
	Roles []string
}

// mapRoles returns the sorted, unique roles of every mapping whose group
// matches one of groups.
func mapRoles(groups []string, mappings []RoleMapping, match func(mapped, group string) bool) []string {
	roles := []string{}
	for _, m := range mappings {
		for _, g := range groups {
			if match(m.Group, g) {
				roles = append(roles, m.Roles...)
				break
			}
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// validName reports whether a user name (typed or from the directory) is
// acceptable: non-empty, bounded, valid UTF-8, no control characters.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// checkGroups refuses group lists beyond the bounds.
func checkGroups(groups []string) error {
	if len(groups) > MaxGroups {
		return errors.New("too many groups")
	}
	for _, g := range groups {
		if len(g) > MaxGroupLen || !utf8.ValidString(g) {
			return errors.New("group name too long or not UTF-8")
		}
	}
	return nil
}
