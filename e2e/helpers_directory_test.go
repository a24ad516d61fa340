package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
	"cordon/internal/testtool/oidcop"
	"cordon/internal/testtool/slapd"
	"cordon/internal/testtool/testca"
)

// Directory sign-in fixtures (issue 17): one real slapd (LDAPS and
// StartTLS, internal/testtool/slapd's directory) and one real OpenID
// Provider (internal/testtool/oidcop) for the whole package, each started
// by the first test that needs it and stopped after the last test
// (TestMain runs the tests through withDirectoryServers).

var dirServers struct {
	mu        sync.Mutex
	dir       string
	ldap      *slapd.Server
	ldapErr   error
	ldapTried bool
	idp       *oidcop.Provider
	idpErr    error
	idpTried  bool
}

// The test provider's client and people: olga is in cctv-operators (mapped
// to the operator role), nils only in canteen (no mapped group).
const (
	dwClientID     = "cordon-e2e"
	dwClientSecret = "e2e-client-secret-0123456789abcdef"
	dwIdPName      = "Force IdP"
	dwOperators    = "cctv-operators"
)

var dwIdPUsers = []oidcop.User{
	{Username: "olga", Password: "olga-idp-pw-1", Groups: []string{dwOperators, "staff"}},
	{Username: "nils", Password: "nils-idp-pw-1", Groups: []string{"canteen"}},
}

func dwTempDir() (string, error) {
	if dirServers.dir == "" {
		// short: slapd's ldapi socket path must fit a unix socket name
		d, err := os.MkdirTemp("", "e2edir")
		if err != nil {
			return "", err
		}
		dirServers.dir = d
	}
	return dirServers.dir, nil
}

// dwSlapd returns the package's slapd, started on first use; skipped
// (failed in CI) when slapd is not installed.
func dwSlapd(t *testing.T) *slapd.Server {
	t.Helper()
	if _, err := slapd.Binary(); err != nil {
		testtool.Missing(t, err.Error())
	}
	dirServers.mu.Lock()
	defer dirServers.mu.Unlock()
	if !dirServers.ldapTried {
		dirServers.ldapTried = true
		dir, err := dwTempDir()
		if err == nil {
			dir = filepath.Join(dir, "ldap")
			err = os.Mkdir(dir, 0o700)
		}
		if err == nil {
			dirServers.ldap, err = slapd.Start(dir)
		}
		dirServers.ldapErr = err
		if err == nil {
			t.Logf("slapd %s at %s (LDAPS) and %s (StartTLS)", dirServers.ldap.Version, dirServers.ldap.LDAPSURL, dirServers.ldap.LDAPURL)
		}
	}
	if dirServers.ldapErr != nil {
		t.Fatalf("slapd: %v", dirServers.ldapErr)
	}
	return dirServers.ldap
}

// dwIdP returns the package's OpenID Provider, started on first use.
func dwIdP(t *testing.T) *oidcop.Provider {
	t.Helper()
	dirServers.mu.Lock()
	defer dirServers.mu.Unlock()
	if !dirServers.idpTried {
		dirServers.idpTried = true
		dir, err := dwTempDir()
		if err == nil {
			dir = filepath.Join(dir, "idp")
			err = os.Mkdir(dir, 0o700)
		}
		if err == nil {
			dirServers.idp, err = oidcop.Start(dir, dwClientID, dwClientSecret, dwIdPUsers...)
		}
		dirServers.idpErr = err
	}
	if dirServers.idpErr != nil {
		t.Fatalf("OpenID Provider: %v", dirServers.idpErr)
	}
	return dirServers.idp
}

// withDirectoryServers runs the package's tests, then stops the directory
// servers they started (before goleak looks for leftovers).
type withDirectoryServers struct{ m *testing.M }

func (w withDirectoryServers) Run() int {
	code := w.m.Run()
	dirServers.mu.Lock()
	defer dirServers.mu.Unlock()
	if dirServers.ldap != nil {
		dirServers.ldap.Close()
	}
	if dirServers.idp != nil {
		dirServers.idp.Close()
	}
	if dirServers.dir != "" {
		_ = os.RemoveAll(dirServers.dir)
	}
	return code
}

// dwSetup describes a gateway with directory sign-in.
type dwSetup struct {
	LDAP    *slapd.Server
	LDAPURL string // default LDAP.LDAPSURL
	Timeout string // auth.ldap.timeout (default 2s)
	IdP     *oidcop.Provider
	Local   []e2eutil.Account
	Cams    []config.Camera
	TTL     string        // auth.token_ttl (default 1h)
	Roles   []config.Role // auth.roles (default: operator = view on every camera)
	TLS     *testca.Leaf  // http.tls_cert/tls_key: HTTPS and RTSPS
}

// dwStart runs a gateway with auth.ldap and/or auth.oidc: role operator
// (view on every camera) for the LDAP group cctv-operators and the OIDC
// group cctv-operators. With OIDC, redirect_url must name the HTTP port
// before the gateway starts, so a free port is picked and the start
// retried if another process took it meanwhile.
func dwStart(t *testing.T, s dwSetup) *e2eutil.Gateway {
	t.Helper()
	cfg := e2eutil.Config(t, s.Local, s.Cams)
	cfg.Auth.TokenTTL = "1h"
	if s.TTL != "" {
		cfg.Auth.TokenTTL = s.TTL
	}
	cfg.Auth.Roles = []config.Role{{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view"}}}
	if s.Roles != nil {
		cfg.Auth.Roles = s.Roles
	}
	if s.TLS != nil {
		cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = s.TLS.CertFile, s.TLS.KeyFile
	}
	if s.LDAP != nil {
		l := &cfg.Auth.LDAP
		l.URL = s.LDAP.LDAPSURL
		if s.LDAPURL != "" {
			l.URL = s.LDAPURL
		}
		l.CAFile = s.LDAP.CA.CertFile
		l.BindDN = slapd.ServiceDN
		l.BindPasswordFile = s.LDAP.ServicePasswordFile
		l.UserBaseDN = slapd.PeopleDN
		l.UserFilter = "(uid=%s)"
		l.UsernameAttribute = "uid"
		l.GroupBaseDN = slapd.GroupsDN
		l.GroupFilter = "(member=%s)"
		l.Timeout = "2s"
		if s.Timeout != "" {
			l.Timeout = s.Timeout
		}
		l.RoleMap = []config.RoleMapping{{Group: slapd.OperatorsDN, Roles: []string{"operator"}}}
	}
	if s.IdP == nil {
		return e2eutil.Start(t, cfg)
	}
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte(dwClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &cfg.Auth.OIDC
	o.Issuer, o.ClientID, o.ClientSecretFile, o.CAFile = s.IdP.Issuer, dwClientID, secret, s.IdP.CA.CertFile
	o.DisplayName = dwIdPName
	o.RoleMap = []config.RoleMapping{{Group: dwOperators, Roles: []string{"operator"}}}
	var lastErr error
	for range 5 {
		port := dwFreePort(t)
		cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", port)
		o.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/api/v1/oidc/callback", port)
		s.IdP.AllowRedirect(o.RedirectURL)
		g, err := e2eutil.TryStart(t, cfg)
		if err == nil {
			return g
		}
		lastErr = err
		if !strings.Contains(err.Error(), "http.listen") {
			break
		}
	}
	t.Fatalf("gateway: %v", lastErr)
	return nil
}

// dwFreePort returns a TCP port free on 127.0.0.1 a moment ago.
func dwFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// dwDo sends a request from src (drDo), with a bearer token when tok is
// set and a JSON body when body is set.
func dwDo(t *testing.T, src, method, url, tok, body string) drResp {
	t.Helper()
	hdr := map[string]string{}
	if tok != "" {
		hdr["Authorization"] = "Bearer " + tok
	}
	if body != "" {
		hdr["Content-Type"] = "application/json"
	}
	return drDo(t, src, method, url, hdr, body)
}

// dwToken signs in from src and returns the token and its expiry.
func dwToken(t *testing.T, src, base, user, password string) (string, time.Time) {
	t.Helper()
	r := drLogin(t, src, base, user, password)
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %s", user, r)
	}
	var out struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil || out.Token == "" {
		t.Fatalf("login answer %s: %v", r.Body, err)
	}
	exp, err := time.Parse(time.RFC3339, out.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q: %v", out.ExpiresAt, err)
	}
	return out.Token, exp
}

// dwMe is GET /api/v1/me.
type dwMe struct {
	Name   string   `json:"name"`
	Source string   `json:"source"`
	Roles  []string `json:"roles"`
	Admin  bool     `json:"admin"`
}

func dwWhoAmI(t *testing.T, base, tok string) dwMe {
	t.Helper()
	r := dwDo(t, "127.0.0.1", http.MethodGet, base+"/api/v1/me", tok, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/me: %s", r)
	}
	var me dwMe
	if err := json.Unmarshal([]byte(r.Body), &me); err != nil {
		t.Fatal(err)
	}
	return me
}

// dwAuditHas reports whether the audit log has a line with every field.
func dwAuditHas(t *testing.T, path string, fields map[string]string) bool {
	t.Helper()
	return dwAuditCount(t, path, fields) > 0
}

// dwAuditCount counts the audit lines with every field.
func dwAuditCount(t *testing.T, path string, fields map[string]string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	lines := bytes.Split(b, []byte("\n"))
	for _, line := range lines[:len(lines)-1] { // the last is "" or a line still being written
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		ok := true
		for k, v := range fields {
			if s, _ := m[k].(string); s != v {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// dwHealth is GET /healthz.
func dwHealth(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	r := dwDo(t, "127.0.0.1", http.MethodGet, base+"/healthz", "", "")
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("healthz %s: %v", r, err)
	}
	return r.Status, m
}

// dwAddUser adds a person to the test directory, in the given groups;
// the entry is deleted when the test ends.
func dwAddUser(t *testing.T, srv *slapd.Server, name, password string, groups ...string) {
	t.Helper()
	ldif := "dn: " + slapd.UserDN(name) + "\nobjectClass: inetOrgPerson\nuid: " + name + "\ncn: " + name + "\nsn: " + name +
		"\nuserPassword: " + password + "\n\n"
	if err := srv.Modify(ldif, true); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if err := srv.Modify(slapd.AddMember(g, name), false); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, g := range groups {
			_ = srv.Modify(slapd.RemoveMember(g, name), false)
		}
		_ = srv.Modify("dn: "+slapd.UserDN(name)+"\nchangetype: delete\n\n", false)
	})
}

// dwSessionsOf counts the live sessions of user in the gateway's registry.
func dwSessionsOf(g *e2eutil.Gateway, user string) int {
	n := 0
	for _, s := range g.Sessions().List() {
		if s.User == user {
			n++
		}
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

// dwGrep returns the lines of text that contain sub (the last 40).
func dwGrep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return strings.Join(out, "\n")
}

// dwDescribeRTSPS sends DESCRIBE over RTSPS (trusting ca) with Basic
// credentials and returns the number of tracks served.
func dwDescribeRTSPS(addr, camera, user, pass string, ca *testca.CA) (int, error) {
	u, err := base.ParseURL("rtsps://" + url.UserPassword(user, pass).String() + "@" + addr + "/" + camera)
	if err != nil {
		return 0, err
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, TLSConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"},
		ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second}
	if err := c.Start(); err != nil {
		return 0, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, err
	}
	return len(desc.Medias), nil
}
