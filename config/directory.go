package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"cordon/auth/directory"
)

// OIDC is auth.oidc: single sign-on for people through an OpenID Provider.
// Issuer "" = off.
type OIDC struct {
	Issuer           string        `mapstructure:"issuer"`
	ClientID         string        `mapstructure:"client_id"`
	ClientSecretFile string        `mapstructure:"client_secret_file"`
	RedirectURL      string        `mapstructure:"redirect_url"`
	CAFile           string        `mapstructure:"ca_file"`
	GroupsClaim      string        `mapstructure:"groups_claim"`
	UsernameClaim    string        `mapstructure:"username_claim"`
	Scopes           []string      `mapstructure:"scopes"`
	DisplayName      string        `mapstructure:"display_name"`
	Timeout          string        `mapstructure:"timeout"`
	RoleMap          []RoleMapping `mapstructure:"role_map"`

	clientSecret string // ClientSecretFile's content, read by Validate
}

// LDAP is auth.ldap: directory passwords for login and RTSP Basic.
// URL "" = off.
type LDAP struct {
	URL               string        `mapstructure:"url"`
	CAFile            string        `mapstructure:"ca_file"`
	BindDN            string        `mapstructure:"bind_dn"`
	BindPasswordFile  string        `mapstructure:"bind_password_file"`
	UserBaseDN        string        `mapstructure:"user_base_dn"`
	UserFilter        string        `mapstructure:"user_filter"`
	UsernameAttribute string        `mapstructure:"username_attribute"`
	GroupBaseDN       string        `mapstructure:"group_base_dn"`
	GroupFilter       string        `mapstructure:"group_filter"`
	Timeout           string        `mapstructure:"timeout"`
	RecheckInterval   string        `mapstructure:"recheck_interval"`
	PoolSize          int           `mapstructure:"pool_size"`
	RoleMap           []RoleMapping `mapstructure:"role_map"`

	bindPassword string // BindPasswordFile's content, read by Validate
}

// RoleMapping maps a directory group to cordon roles.
type RoleMapping struct {
	Group string   `mapstructure:"group"`
	Roles []string `mapstructure:"roles"`
}

// Bounds of the directory durations.
const (
	MinDirectoryTimeout = 100 * time.Millisecond
	MaxDirectoryTimeout = time.Minute
	MinRecheckInterval  = time.Minute
	MaxRecheckInterval  = 24 * time.Hour
	MaxLDAPPoolSize     = 64
)

func defaultOIDC() OIDC {
	return OIDC{GroupsClaim: "groups", UsernameClaim: "preferred_username", Scopes: []string{"profile", "email"},
		Timeout: "10s", RoleMap: []RoleMapping{}}
}

func defaultLDAP() LDAP {
	return LDAP{UserFilter: "(uid=%s)", UsernameAttribute: "uid", GroupFilter: "(member=%s)",
		Timeout: "5s", RecheckInterval: "15m", PoolSize: directory.DefaultLDAPPoolSize, RoleMap: []RoleMapping{}}
}

// ClientSecret returns the content of ClientSecretFile (read by Validate,
// or read now). "" = a public client.
func (o *OIDC) ClientSecret() (string, error) {
	if o.clientSecret != "" || o.ClientSecretFile == "" {
		return o.clientSecret, nil
	}
	return readSecretFile(o.ClientSecretFile)
}

// BindPassword returns the content of BindPasswordFile (read by Validate,
// or read now).
func (l *LDAP) BindPassword() (string, error) {
	if l.bindPassword != "" || l.BindPasswordFile == "" {
		return l.bindPassword, nil
	}
	return readSecretFile(l.BindPasswordFile)
}

// TimeoutDuration, RecheckDuration: the parsed durations (defaults when
// unparsable; Validate reports those).
func (o *OIDC) TimeoutDuration() time.Duration { return durationOr(o.Timeout, 10*time.Second) }

// TimeoutDuration is the parsed auth.ldap.timeout.
func (l *LDAP) TimeoutDuration() time.Duration { return durationOr(l.Timeout, 5*time.Second) }

// RecheckDuration is the parsed auth.ldap.recheck_interval.
func (l *LDAP) RecheckDuration() time.Duration { return durationOr(l.RecheckInterval, 15*time.Minute) }

// DirectoryRoleMap converts a role_map for package directory.
func DirectoryRoleMap(m []RoleMapping) []directory.RoleMapping {
	out := make([]directory.RoleMapping, len(m))
	for i, r := range m {
		out[i] = directory.RoleMapping{Group: r.Group, Roles: append([]string(nil), r.Roles...)}
	}
	return out
}

func durationOr(s string, def time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return def
	}
	return d
}

var roleNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// oidc validates auth.oidc (only when issuer is set) and reads the client
// secret file.
func (v *validator) oidc(o *OIDC) {
	const f = "auth.oidc"
	o.clientSecret = ""
	if o.Issuer == "" {
		return
	}
	if u, err := url.Parse(o.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" {
		v.add(f+".issuer", "must be an https:// URL without credentials or query")
	}
	if o.ClientID == "" {
		v.add(f+".client_id", "must not be empty")
	}
	if o.ClientSecretFile != "" && v.readable(f+".client_secret_file", o.ClientSecretFile) {
		o.clientSecret, _ = readSecretFile(o.ClientSecretFile)
	}
	v.redirectURL(f+".redirect_url", o.RedirectURL)
	if o.CAFile != "" {
		v.readable(f+".ca_file", o.CAFile)
	}
	if strings.TrimSpace(o.GroupsClaim) == "" {
		v.add(f+".groups_claim", "must not be empty")
	}
	if strings.TrimSpace(o.UsernameClaim) == "" {
		v.add(f+".username_claim", "must not be empty")
	}
	v.duration(f+".timeout", o.Timeout, MinDirectoryTimeout, MaxDirectoryTimeout)
	v.roleMap(f+".role_map", o.RoleMap, false)
}

func (v *validator) redirectURL(field, raw string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.add(field, "must be set (e.g. https://cordon.example/api/v1/oidc/callback)")
	case err != nil || u.Host == "" || u.User != nil || u.Fragment != "":
		v.add(field, "must be an absolute URL")
	case u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())):
		v.add(field, "must be https:// (http:// only on loopback)")
	case !strings.HasSuffix(u.Path, "/api/v1/oidc/callback"):
		v.add(field, "must end in /api/v1/oidc/callback (cordon's callback)")
	}
}

func loopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

// ldap validates auth.ldap (only when url is set) and reads the bind
// password file.
func (v *validator) ldap(l *LDAP) {
	const f = "auth.ldap"
	l.bindPassword = ""
	if l.URL == "" {
		return
	}
	if u, err := url.Parse(l.URL); err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		v.add(f+".url", "must be ldaps://host[:port] or ldap://host[:port]")
	} else if u.Scheme != "ldaps" && u.Scheme != "ldap" {
		v.add(f+".url", "must be ldaps:// or ldap:// (upgraded with StartTLS; never plain text)")
	}
	if l.CAFile != "" {
		v.readable(f+".ca_file", l.CAFile)
	}
	v.dn(f+".bind_dn", l.BindDN, true)
	switch {
	case l.BindPasswordFile == "":
		v.add(f+".bind_password_file", "must be set: the service account's password file")
	case v.readable(f+".bind_password_file", l.BindPasswordFile):
		l.bindPassword, _ = readSecretFile(l.BindPasswordFile)
		if l.bindPassword == "" {
			v.add(f+".bind_password_file", "is empty (an empty password would be an unauthenticated bind)")
		}
	}
	v.dn(f+".user_base_dn", l.UserBaseDN, true)
	if err := directory.CheckLDAPFilter(l.UserFilter); err != nil {
		v.add(f+".user_filter", err.Error())
	}
	if l.GroupBaseDN != "" {
		v.dn(f+".group_base_dn", l.GroupBaseDN, false)
		if err := directory.CheckLDAPFilter(l.GroupFilter); err != nil {
			v.add(f+".group_filter", err.Error())
		}
	}
	v.duration(f+".timeout", l.Timeout, MinDirectoryTimeout, MaxDirectoryTimeout)
	v.duration(f+".recheck_interval", l.RecheckInterval, MinRecheckInterval, MaxRecheckInterval)
	if l.PoolSize < 1 || l.PoolSize > MaxLDAPPoolSize {
		v.add(f+".pool_size", fmt.Sprintf("must be 1 to %d", MaxLDAPPoolSize))
	}
	v.roleMap(f+".role_map", l.RoleMap, true)
}

func (v *validator) dn(field, s string, required bool) {
	switch {
	case s == "" && required:
		v.add(field, "must not be empty")
	case s != "" && directory.CheckDN(s) != nil:
		v.add(field, "must be a DN (e.g. ou=people,dc=force,dc=local)")
	}
}

func (v *validator) duration(field, s string, lo, hi time.Duration) {
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		v.add(field, fmt.Sprintf("must be a duration from %v to %v (e.g. \"5s\")", lo, hi))
	}
}

func (v *validator) roleMap(field string, m []RoleMapping, dn bool) {
	for i, r := range m {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case r.Group == "":
			v.add(f+".group", "must not be empty")
		case dn && directory.CheckDN(r.Group) != nil:
			v.add(f+".group", "must be a group DN (e.g. cn=cctv-operators,ou=groups,dc=force,dc=local)")
		}
		if len(r.Roles) == 0 {
			v.add(f+".roles", "must name at least one role")
		}
		for j, role := range r.Roles {
			if !roleNameRe.MatchString(role) {
				v.add(fmt.Sprintf("%s.roles[%d]", f, j), "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}")
			}
		}
	}
}

// directoryWarnings: directory settings that are valid but probably not
// intended (Warnings).
func (c *Config) directoryWarnings() []FieldError {
	var w []FieldError
	roles := map[string]bool{}
	for _, r := range c.Auth.Roles {
		roles[r.Name] = true
	}
	for _, m := range []struct {
		field string
		on    bool
		rm    []RoleMapping
	}{{"auth.oidc.role_map", c.Auth.OIDC.Issuer != "", c.Auth.OIDC.RoleMap}, {"auth.ldap.role_map", c.Auth.LDAP.URL != "", c.Auth.LDAP.RoleMap}} {
		if m.on && len(m.rm) == 0 {
			w = append(w, FieldError{Field: m.field, Msg: "empty: every directory user signs in with no rights"})
		}
		for i, r := range m.rm {
			for j, role := range r.Roles {
				if !roles[role] {
					w = append(w, FieldError{Field: fmt.Sprintf("%s[%d].roles[%d]", m.field, i, j), Msg: "names no role in auth.roles: it grants nothing"})
				}
			}
		}
	}
	if c.Auth.LDAP.URL != "" && c.RTSP.Listen != "" {
		switch {
		case c.RTSP.AllowBasicWithoutTLS:
			w = append(w, FieldError{Field: "rtsp.allow_basic_without_tls", Msg: "directory (LDAP) passwords cross the network in clear text over RTSP Basic"})
		case c.HTTP.TLSCert == "" && !IsLoopback(c.RTSP.Listen):
			w = append(w, FieldError{Field: "auth.ldap.url", Msg: "directory users can use RTSP only over TLS (http.tls_cert or serve --self-signed): Basic, the only way to send a directory password, is offered only over TLS or loopback"})
		}
	}
	return w
}
