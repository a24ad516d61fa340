package directory

import (
	"context"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// Reread re-reads a signed-in LDAP identity for the periodic re-check, by
// its entry rather than by name: a base-scope search at prev.Subject (the
// entry's DN, found at sign-in) with recheckFilter(user_filter). Re-reading
// by name would not work when user_filter matches another attribute than
// username_attribute (sign-in with mail or userPrincipalName, names from
// uid or sAMAccountName): the principal's name would never match the
// filter and every user would look gone. It returns ErrGone when the entry
// was removed, moved, renamed (another username_attribute value) or no
// longer matches user_filter (e.g. disabled, where the filter excludes
// disabled accounts); else the current groups and roles.
func (l *LDAP) Reread(ctx context.Context, prev Identity) (Identity, error) {
	start := l.Now()
	id, err := l.reread(ctx, prev)
	l.health.observe(start, l.Now(), err)
	return id, err
}

func (l *LDAP) reread(ctx context.Context, prev Identity) (Identity, error) {
	if prev.Subject == "" {
		return l.lookup(ctx, prev.Name)
	}
	dn, err := goldap.ParseDN(prev.Subject)
	base, berr := goldap.ParseDN(l.UserBaseDN)
	if err != nil || berr != nil || !base.AncestorOfFold(dn) {
		return Identity{}, ErrGone // not an entry this configuration signs in
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	entry, err := l.readEntry(ctx, prev.Subject)
	if err != nil {
		return Identity{}, err
	}
	id, err := l.identity(ctx, prev.Name, entry)
	if err != nil {
		return Identity{}, err
	}
	if id.Name != prev.Name {
		return Identity{}, ErrGone // the principal of that name is no more
	}
	return id, nil
}

// readEntry reads the user entry at dn if it still matches user_filter:
// exactly one entry, or ErrGone.
func (l *LDAP) readEntry(ctx context.Context, dn string) (*goldap.Entry, error) {
	attrs := []string{"memberOf"}
	if l.UsernameAttribute != "" {
		attrs = append(attrs, l.UsernameAttribute)
	}
	filter, ok := recheckFilter(l.UserFilter)
	if !ok {
		l.Logger.Warn("ldap: user_filter cannot be turned into a re-check filter; re-checking the entry's existence and groups only")
	}
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		1, timeLimit(ctx), false, filter, attrs, nil)
	res, err := withConn(ctx, l, l.search, func(c *ldapConn) (*goldap.SearchResult, error) {
		return c.l.Search(req)
	})
	if err != nil {
		if isLDAPResult(err) {
			if ldapCode(err) == goldap.LDAPResultNoSuchObject {
				return nil, ErrGone
			}
			l.Logger.Warn("ldap: user re-read failed", "code", ldapCode(err))
			return nil, unavailable(SourceLDAP, "user re-read refused by the directory")
		}
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, ErrGone
	}
	return res.Entries[0], nil
}

// recheckFilter turns user_filter into a filter that any user it could
// find matches, whatever name was typed: each item whose value is exactly
// %s becomes a presence test of its attribute ((mail=%s) -> (mail=*),
// also for approximate, ordering and extensible matches), and %s inside a
// value becomes a wildcard ((userPrincipalName=%s@force.local) ->
// (userPrincipalName=*@force.local)). The rest of the filter (disabled
// accounts, object classes) still applies. ok is false when the result
// does not compile; the filter is then (objectClass=*).
func recheckFilter(userFilter string) (filter string, ok bool) {
	var b strings.Builder
	rest := userFilter
	for {
		i := strings.Index(rest, "%s")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		open := strings.LastIndexByte(rest[:i], '(')
		closing := strings.IndexByte(rest[i:], ')')
		if open < 0 || closing < 0 {
			return "(objectClass=*)", false
		}
		closing += i
		item, ok := presenceItem(rest[open+1 : closing])
		if !ok {
			return "(objectClass=*)", false
		}
		b.WriteString(rest[:open])
		b.WriteString(item)
		rest = rest[closing+1:]
	}
	filter = b.String()
	if _, err := goldap.CompileFilter(filter); err != nil {
		return "(objectClass=*)", false
	}
	return filter, true
}

// presenceItem rewrites one filter item ("attr=value" without its
// parentheses) whose value holds %s; ok is false when %s is elsewhere.
func presenceItem(item string) (string, bool) {
	left, value, found := strings.Cut(item, "=")
	attr := left
	if j := strings.IndexAny(left, ":~<>"); j >= 0 {
		attr = left[:j]
	}
	if !found || attr == "" || strings.Contains(left, "%s") {
		return "", false
	}
	if value == "%s" || attr != left {
		return "(" + attr + "=*)", true
	}
	v := strings.ReplaceAll(value, "%s", "*")
	for strings.Contains(v, "**") {
		v = strings.ReplaceAll(v, "**", "*")
	}
	return "(" + attr + "=" + v + ")", true
}
