package slapd

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/internal/testtool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServer starts the fixture and checks it with the OpenLDAP tools
// themselves: LDAPS and StartTLS with the test CA, the service account's
// view, memberOf, and the locked user.
func TestServer(t *testing.T) {
	if _, err := Binary(); err != nil {
		testtool.Missing(t, err.Error())
	}
	testtool.Require(t, "ldapwhoami")
	dir, err := os.MkdirTemp("", "slapd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	t.Logf("slapd %s at %s and %s", s.Version, s.LDAPSURL, s.LDAPURL)
	if !strings.Contains(s.Version, "slapd") {
		t.Errorf("version %q", s.Version)
	}
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+s.CA.CertFile, "LDAPTLS_REQCERT=demand")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("ldapwhoami", "-x", "-H", s.LDAPSURL, "-D", UserDN("alice"), "-w", Users["alice"]); err != nil || !strings.Contains(out, "uid=alice") {
		t.Errorf("LDAPS bind as alice: %v %s", err, out)
	}
	if out, err := run("ldapwhoami", "-x", "-ZZ", "-H", s.LDAPURL, "-D", UserDN("bob"), "-w", Users["bob"]); err != nil || !strings.Contains(out, "uid=bob") {
		t.Errorf("StartTLS bind as bob: %v %s", err, out)
	}
	if out, err := run("ldapwhoami", "-x", "-H", s.LDAPSURL, "-D", UserDN("carol"), "-w", Users["carol"]); err == nil {
		t.Errorf("locked carol could bind: %s", out)
	}
	pw := s.ServicePasswordFile + ".raw"
	if err := os.WriteFile(pw, []byte(ServicePassword), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run("ldapsearch", "-x", "-H", s.LDAPSURL, "-D", ServiceDN, "-y", pw, "-b", PeopleDN, "(uid=alice)", "memberOf")
	if err != nil || !strings.Contains(out, "memberOf: "+OperatorsDN) || !strings.Contains(out, "memberOf: "+SupervisorsDN) {
		t.Errorf("service account search: %v %s", err, out)
	}
	if err := s.Modify(RemoveMember(SupervisorsDN, "alice"), false); err != nil {
		t.Fatal(err)
	}
	out, err = run("ldapsearch", "-x", "-H", s.LDAPSURL, "-D", ServiceDN, "-y", pw, "-b", PeopleDN, "(uid=alice)", "memberOf")
	if err != nil || strings.Contains(out, SupervisorsDN) {
		t.Errorf("memberOf not updated: %v %s", err, out)
	}
	// the bind as a user cannot read others' entries (ACL) and anonymous binds are refused
	if out, err := run("ldapsearch", "-x", "-H", s.LDAPSURL, "-b", PeopleDN, "(uid=*)"); err == nil && strings.Contains(out, "dn: uid=") {
		t.Errorf("anonymous search saw entries: %s", out)
	}
}
