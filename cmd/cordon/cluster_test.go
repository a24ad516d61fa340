package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cordon/auth"
	"cordon/cluster"
	"cordon/cluster/clustertest"
	"cordon/internal/testtool"
)

// TestClusterStatus runs `cordon cluster status` against a real etcd
// (one member, TLS with a client certificate) before and after a node
// registered and took the cameras.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestClusterStatus(t *testing.T) {
	if _, err := clustertest.Binary(); err != nil {
		testtool.Missing(t, err.Error())
	}
	dir := t.TempDir()
	e, err := clustertest.Start(filepath.Join(dir, "etcd"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, err := auth.HashSecret([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "peer.key")
	writeFile(t, key, "0123456789abcdef0123456789abcdef\n")
	cfgPath := filepath.Join(dir, "cordon.yaml")
	writeFile(t, cfgPath, `auth:
  users:
    - {name: alice, password_hash: "`+h+`", cameras: ["*"]}
cameras:
  - {id: gate, url: "rtsp://10.20.0.12/stream"}
  - {id: yard, url: "rtsp://10.20.0.13/stream"}
cluster:
  etcd_endpoints: ["https://`+e.Endpoints()[0]+`"]
  etcd_tls: {ca: "`+e.CAFile+`", cert: "`+e.ClientCertFile+`", key: "`+e.ClientKeyFile+`"}
  node_id: node-a
  advertise: 10.0.0.11
  peer_key_file: "`+key+`"
state_dir: `+filepath.Join(dir, "state")+`
`)
	out, errOut, code := run(t, "", "cluster", "status", "--config", cfgPath)
	if code != 1 || !strings.Contains(out, "gate    -      no      no live owner") || !strings.Contains(errOut, "2 configured camera(s) have no live owner") {
		t.Fatalf("before any node: exit %d\n%s%s", code, out, errOut)
	}
	n := &cluster.Node{Endpoints: e.Endpoints(), TLS: e.TLSConfig(), Self: cluster.Member{ID: "node-a", Advertise: "10.0.0.11"},
		LeaseTTL: 2 * time.Second, Cameras: []string{"gate", "yard"}, Handler: cluster.HandlerFunc(func(cluster.Owner) {})}
	if err := n.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// the node claims within milliseconds; nothing to wait on from here
	testtool.WaitFor(t, 10*time.Second, "cluster status to succeed once the node registered", func() bool {
		out, errOut, code = run(t, "", "cluster", "status", "--config", cfgPath)
		return code == 0
	})
	for _, want := range []string{"NODE    ADDRESS    ALIVE  CAMERAS", "node-a  10.0.0.11  yes    2", "gate    node-a"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, _, code = run(t, "", "cluster", "status", "--config", cfgPath, "--json")
	var st cluster.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || len(st.Nodes) != 1 || !st.Nodes[0].Alive || st.Cameras[1].Owner != "node-a" {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}

	// forget: refused while the node lives, done once it left.
	if _, errOut, code := run(t, "", "cluster", "forget", "--config", cfgPath, "node-a"); code != 1 || !strings.Contains(errOut, "alive") {
		t.Fatalf("forget a live node: exit %d %q", code, errOut)
	}
	n.Close()
	if out, errOut, code := run(t, "", "cluster", "forget", "--config", cfgPath, "node-a"); code != 0 || !strings.Contains(out, "forgotten") {
		t.Fatalf("forget a node that left: exit %d %q %q", code, out, errOut)
	}
	if out, _, _ := run(t, "", "cluster", "status", "--config", cfgPath); strings.Contains(out, "node-a ") {
		t.Fatalf("a forgotten node is listed:\n%s", out)
	}

	// etcd not answering: a clear error, exit 1.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	t.Setenv("CORDON_CLUSTER_ETCD_ENDPOINTS", "https://"+dead)
	_, errOut, code = run(t, "", "cluster", "status", "--config", cfgPath, "--timeout", "1s")
	if code != 1 || !strings.Contains(errOut, "cannot be read") {
		t.Fatalf("unreachable etcd: exit %d %q", code, errOut)
	}
	// No cluster configured.
	t.Setenv("CORDON_CLUSTER_ETCD_ENDPOINTS", "")
	_, errOut, code = run(t, "", "cluster", "status", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "single node") {
		t.Fatalf("no cluster: exit %d %q", code, errOut)
	}
}
