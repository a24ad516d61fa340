package testtool

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InNetns runs the calling top-level test in a private network namespace,
// where it may add interfaces and change their settings. Outside one (env
// unset), it re-executes the test binary under `unshare --net` with env=1,
// running only this test, fails t unless that run passed, and returns
// false: the caller returns. Inside (env set), it returns true: the caller
// goes on with the test. A host that cannot create a namespace skips the
// test (fails it under CI=true).
func InNetns(t *testing.T, env string) bool {
	t.Helper()
	if os.Getenv(env) != "" {
		return true
	}
	unshare := Require(t, "unshare")
	Require(t, "ip")
	cmd := exec.Command(unshare, "--net", "--", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		Missing(t, "cannot create a network namespace: "+strings.TrimSpace(string(out)))
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
	return false
}

// IP runs `ip` with each argument list in turn (link, addr ... commands
// inside a namespace of InNetns), failing the test at the first error.
func IP(t testing.TB, commands ...[]string) {
	t.Helper()
	for _, c := range commands {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", c, err, out)
		}
	}
}
