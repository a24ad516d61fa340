package directory

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"cordon/internal/testtool"
	"cordon/internal/testtool/oidcop"
	"cordon/internal/testtool/slapd"
)

// The real servers of this package's tests, started once in TestMain.
var (
	ldapSrv    *slapd.Server
	ldapSrvErr error
	idp        *oidcop.Provider
)

// The test provider's client and users.
const (
	testClientID     = "cordon"
	testClientSecret = "client-secret-for-the-cordon-tests-1"
)

var idpUsers = []oidcop.User{
	{Username: "alice", Password: "alice-idp-1", Groups: []string{"cctv-operators", "Staff"}},
	{Username: "bob", Password: "bob-idp-1", Groups: []string{"canteen"}},
	{Username: "carl", Password: "carl-idp-1", Groups: []string{"cctv-operators"}, GroupsInUserinfoOnly: true},
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// fuzz targets need no servers, and each fuzz worker is a process
		return m.Run()
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "dirtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err := slapd.Binary(); err != nil {
		ldapSrvErr = err
	} else if ldapSrv, ldapSrvErr = slapd.Start(dir); ldapSrvErr == nil {
		fmt.Fprintf(os.Stderr, "slapd %s at %s (LDAPS) and %s (StartTLS)\n", ldapSrv.Version, ldapSrv.LDAPSURL, ldapSrv.LDAPURL)
	}
	idp, err = oidcop.Start(dir, testClientID, testClientSecret, idpUsers...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc provider:", err)
		return 1
	}
	code := m.Run()
	idp.Close()
	if ldapSrv != nil {
		ldapSrv.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// needSlapd returns the package's slapd, or skips (fails in CI) when slapd
// is not installed; a slapd that failed to start fails the test.
func needSlapd(t *testing.T) *slapd.Server {
	t.Helper()
	if ldapSrv == nil {
		if _, err := slapd.Binary(); err != nil {
			testtool.Missing(t, err.Error())
		}
		t.Fatalf("slapd did not start: %v", ldapSrvErr)
	}
	return ldapSrv
}
