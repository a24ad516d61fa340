package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// directoryConfig returns a valid config with both directory sections on
// and no local users (the directory is enough to use the gateway).
func directoryConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret-value-for-redaction\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bind := filepath.Join(dir, "bind")
	if err := os.WriteFile(bind, []byte("bind-pw-for-redaction\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Auth.Roles = []Role{{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view"}}}
	cfg.Auth.OIDC.Issuer = "https://idp.force.local/realms/police"
	cfg.Auth.OIDC.ClientID = "cordon"
	cfg.Auth.OIDC.ClientSecretFile = secret
	cfg.Auth.OIDC.RedirectURL = "https://cordon.force.local/api/v1/oidc/callback"
	cfg.Auth.OIDC.RoleMap = []RoleMapping{{Group: "CCTV.Operators", Roles: []string{"operator"}}}
	cfg.Auth.LDAP.URL = "ldaps://dc1.force.local"
	cfg.Auth.LDAP.BindDN = "cn=cordon-svc,ou=services,dc=force,dc=local"
	cfg.Auth.LDAP.BindPasswordFile = bind
	cfg.Auth.LDAP.UserBaseDN = "ou=people,dc=force,dc=local"
	cfg.Auth.LDAP.GroupBaseDN = "ou=groups,dc=force,dc=local"
	cfg.Auth.LDAP.RoleMap = []RoleMapping{{Group: "cn=cctv-operators,ou=groups,dc=force,dc=local", Roles: []string{"operator"}}}
	return cfg
}

func TestDirectoryConfigValid(t *testing.T) {
	cfg := directoryConfig(t)
	if errs := cfg.Validate(); errs != nil {
		t.Fatalf("valid directory config: %v", errs)
	}
	if s, _ := cfg.Auth.OIDC.ClientSecret(); s != "s3cret-value-for-redaction" {
		t.Errorf("client secret %q", s)
	}
	if s, _ := cfg.Auth.LDAP.BindPassword(); s != "bind-pw-for-redaction" {
		t.Errorf("bind password %q", s)
	}
	r := NewRedactor(cfg)
	if out := r.Redact("x s3cret-value-for-redaction bind-pw-for-redaction y"); strings.Contains(out, "s3cret") || strings.Contains(out, "bind-pw") {
		t.Errorf("redactor kept a directory secret: %s", out)
	}
	if cfg.Auth.LDAP.RecheckDuration().Minutes() != 15 || cfg.Auth.LDAP.TimeoutDuration().Seconds() != 5 ||
		cfg.Auth.OIDC.TimeoutDuration().Seconds() != 10 {
		t.Error("durations")
	}
	if m := DirectoryRoleMap(cfg.Auth.OIDC.RoleMap); len(m) != 1 || m[0].Group != "CCTV.Operators" || !slices.Equal(m[0].Roles, []string{"operator"}) {
		t.Errorf("role map %+v", m)
	}
}

func TestDirectoryConfigErrorsNameFields(t *testing.T) {
	cases := map[string]func(c *Config){
		"auth.oidc.issuer: must be an https://":          func(c *Config) { c.Auth.OIDC.Issuer = "http://idp" },
		"auth.oidc.client_id: must not be empty":         func(c *Config) { c.Auth.OIDC.ClientID = "" },
		"auth.oidc.client_secret_file: cannot read":      func(c *Config) { c.Auth.OIDC.ClientSecretFile = "/nonexistent/s" },
		"auth.oidc.redirect_url: must be https://":       func(c *Config) { c.Auth.OIDC.RedirectURL = "http://cordon.example/api/v1/oidc/callback" },
		"auth.oidc.redirect_url: must end in":            func(c *Config) { c.Auth.OIDC.RedirectURL = "https://cordon.example/callback" },
		"auth.oidc.redirect_url: must be set":            func(c *Config) { c.Auth.OIDC.RedirectURL = "" },
		"auth.oidc.ca_file: cannot read":                 func(c *Config) { c.Auth.OIDC.CAFile = "/nonexistent/ca" },
		"auth.oidc.groups_claim: must not be empty":      func(c *Config) { c.Auth.OIDC.GroupsClaim = " " },
		"auth.oidc.timeout: must be a duration":          func(c *Config) { c.Auth.OIDC.Timeout = "forever" },
		"auth.oidc.role_map[0].roles: must name":         func(c *Config) { c.Auth.OIDC.RoleMap[0].Roles = nil },
		"auth.oidc.role_map[0].roles[0]: must match":     func(c *Config) { c.Auth.OIDC.RoleMap[0].Roles = []string{"bad role"} },
		"auth.oidc.role_map[0].group: must not be empty": func(c *Config) { c.Auth.OIDC.RoleMap[0].Group = "" },
		"auth.ldap.url: must be ldaps:// or ldap://":     func(c *Config) { c.Auth.LDAP.URL = "http://dc1" },
		"auth.ldap.url: must be ldaps://host":            func(c *Config) { c.Auth.LDAP.URL = "ldaps://u:p@dc1" },
		"auth.ldap.bind_dn: must not be empty":           func(c *Config) { c.Auth.LDAP.BindDN = "" },
		"auth.ldap.bind_dn: must be a DN":                func(c *Config) { c.Auth.LDAP.BindDN = "cordon-svc" },
		"auth.ldap.bind_password_file: must be set":      func(c *Config) { c.Auth.LDAP.BindPasswordFile = "" },
		"auth.ldap.bind_password_file: is empty": func(c *Config) {
			p := filepath.Join(t.TempDir(), "empty")
			_ = os.WriteFile(p, []byte("\n"), 0o600)
			c.Auth.LDAP.BindPasswordFile = p
		},
		"auth.ldap.user_base_dn: must not be empty":                     func(c *Config) { c.Auth.LDAP.UserBaseDN = "" },
		"auth.ldap.user_filter: must contain %s":                        func(c *Config) { c.Auth.LDAP.UserFilter = "(uid=alice)" },
		"auth.ldap.user_filter: is not a valid LDAP filter":             func(c *Config) { c.Auth.LDAP.UserFilter = "uid=%s)" },
		"auth.ldap.group_filter: must contain %s":                       func(c *Config) { c.Auth.LDAP.GroupFilter = "" },
		"auth.ldap.timeout: must be a duration":                         func(c *Config) { c.Auth.LDAP.Timeout = "2h" },
		"auth.ldap.recheck_interval: must be a duration":                func(c *Config) { c.Auth.LDAP.RecheckInterval = "1s" },
		"auth.ldap.pool_size: must be 1 to 64":                          func(c *Config) { c.Auth.LDAP.PoolSize = 0 },
		"auth.ldap.role_map[0].group: must be a group DN":               func(c *Config) { c.Auth.LDAP.RoleMap[0].Group = "cctv-operators" },
		"auth.ldap.role_map[0].roles[0]: role \"ghost\" is not defined": func(c *Config) { c.Auth.LDAP.RoleMap[0].Roles = []string{"ghost"} },
	}
	for want, edit := range cases {
		cfg := directoryConfig(t)
		edit(cfg)
		errs := cfg.Validate()
		found := false
		for _, e := range errs {
			found = found || strings.HasPrefix(e.Error(), want)
			if strings.Contains(e.Error(), "s3cret") || strings.Contains(e.Error(), "bind-pw") {
				t.Errorf("error carries a secret: %v", e)
			}
		}
		if !found {
			t.Errorf("want an error starting %q, got %v", want, errs)
		}
	}
}

func TestDirectoryOffNeedsLocalPrincipals(t *testing.T) {
	cfg := Default()
	errs := cfg.Validate()
	if len(errs) == 0 || !strings.Contains(FieldErrors(errs).Error(), "auth.users: no users, api_keys, oidc or ldap") {
		t.Errorf("empty config: %v", errs)
	}
}

func TestDirectoryFromYAMLAndEnv(t *testing.T) {
	t.Setenv("CORDON_AUTH_LDAP_TIMEOUT", "2s")
	t.Setenv("CORDON_AUTH_OIDC_SCOPES", "profile,groups")
	path := writeFile(t, t.TempDir(), "c.yaml", `auth:
  ldap:
    url: "ldaps://dc1.force.local"
    role_map:
      - {group: "CN=CCTV Operators,OU=Groups,DC=force,DC=local", roles: ["operator", "viewer"]}
  oidc:
    role_map:
      - {group: "cctv.operators", roles: ["operator"]}
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	l, o := cfg.Auth.LDAP, cfg.Auth.OIDC
	if l.URL != "ldaps://dc1.force.local" || l.Timeout != "2s" || l.UserFilter != "(uid=%s)" || l.PoolSize != 4 ||
		len(l.RoleMap) != 1 || l.RoleMap[0].Group != "CN=CCTV Operators,OU=Groups,DC=force,DC=local" || len(l.RoleMap[0].Roles) != 2 {
		t.Errorf("ldap %+v", l)
	}
	if !slices.Equal(o.Scopes, []string{"profile", "groups"}) || o.GroupsClaim != "groups" || o.RoleMap[0].Group != "cctv.operators" {
		t.Errorf("oidc %+v", o)
	}
	if _, err := Load(writeFile(t, t.TempDir(), "c.yaml", "auth:\n  ldap:\n    urll: x\n")); err == nil ||
		!strings.Contains(err.Error(), "auth.ldap.urll: unknown key") {
		t.Errorf("unknown key: %v", err)
	}
}
