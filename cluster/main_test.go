package cluster

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"cordon/cluster/clustertest"
	"cordon/internal/testtool"
)

// The tests run against a real etcd: Debian's etcd-server (3.4), started
// here as a 3-member cluster on loopback with TLS and client-certificate
// authentication, once for the package (clustertest). It is the binary an
// operator runs, as separate processes, so a member can be killed and
// restarted for real; etcd's embed package also builds with our
// dependencies, but it would add the whole etcd server (bbolt, raft,
// OpenTelemetry, about 25 modules) to go.mod for tests alone.
var testEtcd *clustertest.Etcd

// etcdMissing says why no etcd could be started ("" = it runs).
var etcdMissing string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run()) // fuzzing the decoders needs no etcd
	}
	code := func() int {
		if _, err := clustertest.Binary(); err != nil {
			etcdMissing = err.Error()
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "cordon-etcd-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		testEtcd, err = clustertest.Start(dir, 3)
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting etcd:", err)
			return 1
		}
		defer testEtcd.Close()
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needEtcd skips (fails under CI=true) without etcd.
func needEtcd(t testing.TB) *clustertest.Etcd {
	t.Helper()
	if etcdMissing != "" {
		testtool.Missing(t, etcdMissing)
	}
	return testEtcd
}
