package directory

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// LDAP defaults.
const (
	DefaultLDAPTimeout     = 5 * time.Second
	DefaultRecheckInterval = 15 * time.Minute
	DefaultLDAPPoolSize    = 4
	ldapIdleTimeout        = 60 * time.Second
)

// LDAP checks names and passwords against an LDAP directory (Active
// Directory, OpenLDAP): it finds the user with a service account, binds as
// the user to check the password, and reads the user's groups. Set the
// exported fields, then call Initialize. Safe for concurrent use after that.
type LDAP struct {
	// URL is ldaps://host[:636] or ldap://host[:389]; ldap:// always
	// upgrades with StartTLS (there is no plain-text mode).
	URL string
	// CAFile is a PEM bundle the server certificate must chain to
	// ("" = the system's roots).
	CAFile string
	// BindDN and BindPassword are the service account that searches.
	BindDN       string
	BindPassword string
	// UserBaseDN and UserFilter find the user; every %s in UserFilter is
	// replaced by the escaped name ("(uid=%s)", AD "(sAMAccountName=%s)").
	UserBaseDN string
	UserFilter string
	// UsernameAttribute gives the principal name its directory spelling
	// ("uid"; AD "sAMAccountName"). "" = the name as typed.
	UsernameAttribute string
	// GroupBaseDN and GroupFilter search the user's groups; every %s in
	// GroupFilter is replaced by the user's escaped DN. GroupBaseDN "" =
	// no search. The user's memberOf values are always read too.
	GroupBaseDN string
	GroupFilter string
	// RoleMap maps group DNs (compared as DNs, case-insensitively) to roles.
	RoleMap []RoleMapping
	// Timeout bounds a whole sign-in or re-check: dial, TLS, binds and
	// searches (0 = DefaultLDAPTimeout).
	Timeout time.Duration
	// RecheckInterval is how often a Rechecker re-reads signed-in users
	// (0 = DefaultRecheckInterval). LDAP only stores it for the owner.
	RecheckInterval time.Duration
	// PoolSize bounds the open connections of each kind: service-account
	// searches and user binds (0 = DefaultLDAPPoolSize).
	PoolSize int
	// TokenTTL bounds Identity.Expires (0 = Expires stays zero).
	TokenTTL time.Duration
	// Logger (nil = slog.Default()); never receives a password.
	Logger *slog.Logger
	// Metrics (nil = none).
	Metrics *Metrics
	// Now is the clock (nil = time.Now).
	Now func() time.Time

	hostport string
	ldaps    bool
	tlsConf  *tls.Config
	roleDNs  []*goldap.DN // parsed RoleMap groups (nil where unparsable)
	search   *ldapPool    // bound as the service account
	binds    *ldapPool    // users' binds
	bg       background   // abandoned operations and teardowns, waited for by Close
	health   health
}

// Initialize checks the configuration and prepares the connection pools.
// It does not contact the directory, so cordon starts while it is down.
func (l *LDAP) Initialize() error {
	if err := l.configure(); err != nil {
		return fmt.Errorf("ldap: %w", err)
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	l.health.init(SourceLDAP, l.Metrics)
	l.search = newLDAPPool(l.PoolSize, ldapIdleTimeout, l.dialService)
	l.binds = newLDAPPool(l.PoolSize, ldapIdleTimeout, l.dialPlain)
	return nil
}

// configure validates the fields and fills defaults.
func (l *LDAP) configure() error {
	u, err := url.Parse(l.URL)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return errors.New("url: must be ldaps://host[:port] or ldap://host[:port]")
	}
	switch u.Scheme {
	case "ldaps":
		l.ldaps = true
		l.hostport = hostPort(u, "636")
	case "ldap":
		l.hostport = hostPort(u, "389")
	default:
		return errors.New("url: must be ldaps:// or ldap:// (StartTLS)")
	}
	roots, err := rootCAs(l.CAFile)
	if err != nil {
		return err
	}
	l.tlsConf = clientTLS(roots, u.Hostname())
	if l.BindDN == "" || l.BindPassword == "" {
		return errors.New("bind_dn and bind_password_file: a service account is required")
	}
	if l.UserBaseDN == "" {
		return errors.New("user_base_dn: must not be empty")
	}
	if err := CheckLDAPFilter(l.UserFilter); err != nil {
		return fmt.Errorf("user_filter: %w", err)
	}
	if l.GroupBaseDN != "" {
		if err := CheckLDAPFilter(l.GroupFilter); err != nil {
			return fmt.Errorf("group_filter: %w", err)
		}
	}
	l.roleDNs = make([]*goldap.DN, len(l.RoleMap))
	for i, m := range l.RoleMap {
		dn, err := goldap.ParseDN(m.Group)
		if err != nil {
			return fmt.Errorf("role_map[%d].group: not a DN", i)
		}
		l.roleDNs[i] = dn
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultLDAPTimeout
	}
	if l.RecheckInterval <= 0 {
		l.RecheckInterval = DefaultRecheckInterval
	}
	if l.PoolSize <= 0 {
		l.PoolSize = DefaultLDAPPoolSize
	}
	return nil
}

func hostPort(u *url.URL, def string) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), def)
}

// CheckLDAPFilter reports whether filter (user_filter, group_filter) has
// at least one %s, no other % verb, and compiles once filled in.
func CheckLDAPFilter(filter string) error {
	if !strings.Contains(filter, "%s") {
		return errors.New("must contain %s")
	}
	if strings.Contains(strings.ReplaceAll(filter, "%s", ""), "%") {
		return errors.New("may contain % only as %s")
	}
	if _, err := goldap.CompileFilter(fillFilter(filter, "x")); err != nil {
		return errors.New("is not a valid LDAP filter")
	}
	return nil
}

// fillFilter replaces every %s with value, escaped for a filter (RFC 4515).
func fillFilter(filter, value string) string {
	return strings.ReplaceAll(filter, "%s", goldap.EscapeFilter(value))
}

// Close closes the pools' idle connections and waits for the teardown of
// connections given up at a deadline.
func (l *LDAP) Close() {
	if l.search != nil {
		l.search.close()
		l.binds.close()
		l.bg.wait()
	}
}

// Health returns nil while the directory answers, or an
// ErrUnavailable error naming the reason and since when.
func (l *LDAP) Health() error { return l.health.status() }

// Authenticate checks name and password against the directory and returns
// the identity with its groups and roles. An empty password is refused
// before anything is sent (never an anonymous or unauthenticated bind).
// It returns by Timeout (one deadline for every step); when ctx is
// cancelled first, with an error matching context.Canceled that is neither
// ErrUnavailable nor ErrInvalidCredentials.
func (l *LDAP) Authenticate(ctx context.Context, name, password string) (Identity, error) {
	start := l.Now()
	id, err := l.authenticate(ctx, name, password)
	l.health.observe(start, l.Now(), err)
	return id, err
}

func (l *LDAP) authenticate(ctx context.Context, name, password string) (Identity, error) {
	if password == "" || !validName(name) {
		return Identity{}, ErrInvalidCredentials
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	entry, err := l.findUser(ctx, name)
	if errors.Is(err, ErrGone) {
		// bind anyway, to an entry that cannot exist, so an unknown name
		// costs the same round trips as a wrong password
		err = l.userBind(ctx, "cn=cordon-no-such-user-"+randomHex(8)+","+l.UserBaseDN, password)
		if err == nil {
			return Identity{}, errors.New("ldap: bind to a non-existent entry succeeded")
		}
		if notAVerdict(err) {
			return Identity{}, err
		}
		return Identity{}, ErrInvalidCredentials
	}
	if err != nil {
		return Identity{}, err
	}
	if err := l.userBind(ctx, entry.DN, password); err != nil {
		return Identity{}, err
	}
	return l.identity(ctx, name, entry)
}

// Lookup re-reads a signed-in user (the periodic re-check): ErrGone when
// the user_filter no longer finds it (removed, or disabled where the
// filter excludes disabled accounts), else its current groups and roles.
func (l *LDAP) Lookup(ctx context.Context, name string) (Identity, error) {
	start := l.Now()
	id, err := l.lookup(ctx, name)
	l.health.observe(start, l.Now(), err)
	return id, err
}

func (l *LDAP) lookup(ctx context.Context, name string) (Identity, error) {
	if !validName(name) {
		return Identity{}, ErrGone
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	entry, err := l.findUser(ctx, name)
	if err != nil {
		return Identity{}, err
	}
	return l.identity(ctx, name, entry)
}

// identity reads the groups of entry and builds the Identity.
func (l *LDAP) identity(ctx context.Context, typed string, entry *goldap.Entry) (Identity, error) {
	name := typed
	if l.UsernameAttribute != "" {
		if v := entry.GetAttributeValue(l.UsernameAttribute); v != "" {
			name = v
		}
	}
	if !validName(name) {
		l.Logger.Warn("ldap: user name from the directory refused", "dn", entry.DN)
		return Identity{}, ErrInvalidCredentials
	}
	groups, err := l.groups(ctx, entry)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{
		Name:    name,
		Source:  SourceLDAP,
		Subject: entry.DN,
		Groups:  groups,
		Roles:   mapRoles(groups, l.RoleMap, l.sameGroup()),
	}
	if l.TokenTTL > 0 {
		id.Expires = l.Now().Add(l.TokenTTL)
	}
	return id, nil
}

// sameGroup compares a role_map group with a directory group as DNs
// (case-insensitive, spacing ignored).
func (l *LDAP) sameGroup() func(mapped, group string) bool {
	byName := make(map[string]*goldap.DN, len(l.RoleMap))
	for i, m := range l.RoleMap {
		byName[m.Group] = l.roleDNs[i]
	}
	return func(mapped, group string) bool {
		dn, err := goldap.ParseDN(group)
		if err != nil || byName[mapped] == nil {
			return strings.EqualFold(mapped, group)
		}
		return byName[mapped].EqualFold(dn)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CheckDN reports whether s parses as an LDAP distinguished name.
func CheckDN(s string) error {
	_, err := goldap.ParseDN(s)
	return err
}
