package directory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// dialPlain opens a connection for users' binds.
func (l *LDAP) dialPlain(ctx context.Context) (*ldapConn, error) {
	return dialLDAP(ctx, l.hostport, l.ldaps, l.tlsConf, &l.bg)
}

// dialService opens a connection bound as the service account.
func (l *LDAP) dialService(ctx context.Context) (*ldapConn, error) {
	c, err := dialLDAP(ctx, l.hostport, l.ldaps, l.tlsConf, &l.bg)
	if err != nil {
		return nil, err
	}
	err = c.do(ctx, func() error { return c.l.Bind(l.BindDN, l.BindPassword) })
	if err != nil {
		c.close()
		if isLDAPResult(err) {
			// the directory answered: the service account is wrong
			l.Logger.Error("ldap: service account bind refused", "bind_dn", l.BindDN, "code", ldapCode(err))
			return nil, unavailable(SourceLDAP, "service account bind refused (check bind_dn and bind_password_file)")
		}
		return nil, err
	}
	return c, nil
}

// withConn runs op on a connection of pool p, under ctx's deadline (the
// whole request's, see authenticate). A connection taken from the pool
// that turns out broken (the server closed it while idle) is replaced by a
// fresh one once, within the same deadline. Network failures and timeouts
// become ErrUnavailable; an answer from the directory (a result code) is
// returned as is.
func withConn[T any](ctx context.Context, l *LDAP, p *ldapPool, op func(*ldapConn) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return zero, l.unreachable(ctx, err)
		}
		v, err := runOp(ctx, c, func() (T, error) { return op(c) })
		if err == nil || isLDAPResult(err) {
			p.put(c, true)
			return v, err
		}
		p.put(c, false)
		if c.fresh || attempt > 0 || expired(ctx) {
			return zero, l.unreachable(ctx, err)
		}
	}
}

// unreachable turns a transport error into an ErrUnavailable that says
// what failed (never a password); a request its caller cancelled is
// errCanceled.
func (l *LDAP) unreachable(ctx context.Context, err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, errCanceled) {
		return err
	}
	if canceled(ctx) {
		return errCanceled
	}
	var reason string
	switch {
	case errors.Is(err, errPoolClosed):
		reason = "closed"
	case errors.Is(err, errStartTLS):
		reason = "StartTLS refused by the directory (cordon never falls back to plain text)"
	default:
		if reason = failureReason(err, expired(ctx), l.Timeout, l.hostport); reason == "" {
			reason = "connection failed"
		}
	}
	l.Logger.Warn("ldap: directory unreachable", "addr", l.hostport, "reason", reason, "err", err.Error())
	return unavailable(SourceLDAP, reason)
}

// notAVerdict reports an error that says nothing about the credentials:
// the directory could not be asked, or the caller gave up.
func notAVerdict(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, errCanceled)
}

// isLDAPResult reports whether err is the directory's answer (a result
// code), as opposed to a transport failure.
func isLDAPResult(err error) bool {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return false
	}
	return le.ResultCode < goldap.ErrorNetwork
}

func ldapCode(err error) int {
	var le *goldap.Error
	if errors.As(err, &le) {
		return int(le.ResultCode)
	}
	return -1
}

// timeLimit is the server-side time limit for a search, in whole seconds.
func timeLimit(ctx context.Context) int {
	dl, _ := ctx.Deadline()
	s := int(time.Until(dl) / time.Second)
	return max(s, 1)
}

// findUser searches the user with the service account: exactly one entry,
// or ErrGone.
func (l *LDAP) findUser(ctx context.Context, name string) (*goldap.Entry, error) {
	attrs := []string{"memberOf"}
	if l.UsernameAttribute != "" {
		attrs = append(attrs, l.UsernameAttribute)
	}
	req := goldap.NewSearchRequest(l.UserBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, timeLimit(ctx), false, fillFilter(l.UserFilter, name), attrs, nil)
	req.EnforceSizeLimit = true
	res, err := withConn(ctx, l, l.search, func(c *ldapConn) (*goldap.SearchResult, error) {
		res, err := c.l.Search(req)
		if errors.Is(err, goldap.ErrSizeLimitExceeded) || ldapCode(err) == goldap.LDAPResultSizeLimitExceeded {
			return res, nil // two entries or more: ambiguous, refused below
		}
		return res, err
	})
	if err != nil {
		if isLDAPResult(err) {
			l.Logger.Warn("ldap: user search failed", "code", ldapCode(err))
			if ldapCode(err) == goldap.LDAPResultNoSuchObject {
				return nil, ErrGone
			}
			return nil, unavailable(SourceLDAP, "user search refused by the directory")
		}
		return nil, err
	}
	switch len(res.Entries) {
	case 0:
		return nil, ErrGone
	case 1:
		return res.Entries[0], nil
	}
	l.Logger.Warn("ldap: user_filter matches more than one entry; sign-in refused")
	return nil, ErrInvalidCredentials
}

// userBind checks password by binding as dn on a bind-pool connection.
func (l *LDAP) userBind(ctx context.Context, dn, password string) error {
	_, err := withConn(ctx, l, l.binds, func(c *ldapConn) (*goldap.SimpleBindResult, error) {
		return c.l.SimpleBind(&goldap.SimpleBindRequest{Username: dn, Password: password})
	})
	if err == nil || notAVerdict(err) {
		return err
	}
	switch ldapCode(err) {
	case goldap.LDAPResultInvalidCredentials:
	case goldap.LDAPResultBusy, goldap.LDAPResultUnavailable:
		return unavailable(SourceLDAP, "the directory is busy or unavailable")
	default:
		// AD answers 49 with a sub-code for locked, expired and disabled
		// accounts; others use 50 or 53. All are refusals.
		l.Logger.Info("ldap: user bind refused", "code", ldapCode(err))
	}
	return ErrInvalidCredentials
}

// groups returns the user's group DNs: memberOf values, plus the
// group_filter search when group_base_dn is set.
func (l *LDAP) groups(ctx context.Context, entry *goldap.Entry) ([]string, error) {
	groups := slices.Clone(entry.GetAttributeValues("memberOf"))
	if l.GroupBaseDN != "" {
		req := goldap.NewSearchRequest(l.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
			MaxGroups+1, timeLimit(ctx), false, fillFilter(l.GroupFilter, entry.DN), []string{"1.1"}, nil)
		req.EnforceSizeLimit = true
		type found struct {
			res     *goldap.SearchResult
			tooMany bool
		}
		f, err := withConn(ctx, l, l.search, func(c *ldapConn) (found, error) {
			res, err := c.l.Search(req)
			if errors.Is(err, goldap.ErrSizeLimitExceeded) || ldapCode(err) == goldap.LDAPResultSizeLimitExceeded {
				return found{tooMany: true}, nil
			}
			return found{res: res}, err
		})
		switch {
		case f.tooMany:
			l.Logger.Warn("ldap: user is in too many groups; sign-in refused", "dn", entry.DN, "max", MaxGroups)
			return nil, ErrInvalidCredentials
		case err != nil && isLDAPResult(err):
			l.Logger.Warn("ldap: group search failed", "code", ldapCode(err))
			return nil, unavailable(SourceLDAP, "group search refused by the directory")
		case err != nil:
			return nil, err
		}
		for _, e := range f.res.Entries {
			groups = append(groups, e.DN)
		}
	}
	groups = uniqueFold(groups)
	if err := checkGroups(groups); err != nil {
		l.Logger.Warn("ldap: groups refused", "dn", entry.DN, "reason", err.Error())
		return nil, ErrInvalidCredentials
	}
	return groups, nil
}

// uniqueFold drops case-insensitive duplicates, keeping the first spelling.
func uniqueFold(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, s := range in {
		k := strings.ToLower(s)
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}
