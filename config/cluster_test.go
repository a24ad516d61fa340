package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testPeerKey = "0123456789abcdef0123456789abcdef" // 32 bytes

func clusterConfig(t *testing.T) *Config {
	t.Helper()
	c := validConfig(t)
	c.Cluster = Cluster{
		EtcdEndpoints: []string{"https://10.0.0.5:2379", "https://etcd-1.example:2379"},
		NodeID:        "node-a",
		Advertise:     "10.0.0.11",
		PeerKeyFile:   writeFile(t, t.TempDir(), "peer.key", testPeerKey+"\n"),
		LeaseTTL:      "5s",
	}
	return c
}

func TestClusterValid(t *testing.T) {
	c := clusterConfig(t)
	tf := makeTLS(t)
	c.Cluster.EtcdTLS = EtcdTLS{CA: tf.cert, Cert: tf.cert, Key: tf.key}
	if errs := c.Validate(); errs != nil {
		t.Fatalf("valid cluster config rejected: %v", FieldErrors(errs))
	}
	k, err := c.Cluster.PeerKey()
	if err != nil || string(k) != testPeerKey {
		t.Fatalf("PeerKey = %q, %v (one trailing newline must be trimmed)", k, err)
	}
	if c.Cluster.TTL() != 5*time.Second || !c.Cluster.Enabled() {
		t.Fatalf("TTL %v, enabled %v", c.Cluster.TTL(), c.Cluster.Enabled())
	}
	if got := c.Cluster.Endpoints(); !slices.Equal(got, []string{"10.0.0.5:2379", "etcd-1.example:2379"}) {
		t.Fatalf("Endpoints = %q", got)
	}
	tc, err := c.Cluster.TLSConfig()
	if err != nil || tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Fatalf("TLSConfig = %+v, %v", tc, err)
	}
	// The peer key is a secret: the redactor masks it.
	r := NewRedactor(c)
	if got := r.Redact("key=" + testPeerKey); strings.Contains(got, testPeerKey) {
		t.Fatalf("redactor leaves the peer key: %q", got)
	}
}

func TestClusterDisabledByDefault(t *testing.T) {
	c := validConfig(t)
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	if c.Cluster.Enabled() || c.Cluster.LeaseTTL != "5s" {
		t.Fatalf("default cluster = %+v", c.Cluster)
	}
	if tc, err := c.Cluster.TLSConfig(); tc != nil || err != nil {
		t.Fatalf("TLSConfig without cluster = %v, %v", tc, err)
	}
}

func TestClusterValidateTable(t *testing.T) {
	tf := makeTLS(t)
	dir := t.TempDir()
	short := writeFile(t, dir, "short.key", "only-31-bytes-of-secret-xxxxxxx")
	big := writeFile(t, dir, "big.key", strings.Repeat("k", 5000))
	missing := filepath.Join(dir, "missing.key")
	cases := []struct {
		name  string
		mut   func(c *Cluster)
		field string
		msg   string
	}{
		{"endpoint scheme", func(c *Cluster) { c.EtcdEndpoints[0] = "ftp://10.0.0.5:2379" }, "cluster.etcd_endpoints[0]", "https://host:port"},
		{"endpoint no port", func(c *Cluster) { c.EtcdEndpoints[1] = "https://etcd-1.example" }, "cluster.etcd_endpoints[1]", "https://host:port"},
		{"endpoint bad port", func(c *Cluster) { c.EtcdEndpoints[0] = "10.0.0.5:99999" }, "cluster.etcd_endpoints[0]", "port must be"},
		{"endpoint path", func(c *Cluster) { c.EtcdEndpoints[0] = "https://10.0.0.5:2379/v3" }, "cluster.etcd_endpoints[0]", "https://host:port"},
		{"mixed schemes", func(c *Cluster) { c.EtcdEndpoints[0] = "http://10.0.0.5:2379" }, "cluster.etcd_endpoints", "mixes"},
		{"tls on plain", func(c *Cluster) {
			c.EtcdEndpoints = []string{"10.0.0.5:2379"}
			c.EtcdTLS.CA = tf.cert
		}, "cluster.etcd_tls", "not https"},
		{"ca missing", func(c *Cluster) { c.EtcdTLS.CA = missing }, "cluster.etcd_tls.ca", "cannot read"},
		{"ca not pem", func(c *Cluster) { c.EtcdTLS.CA = short }, "cluster.etcd_tls.ca", "no PEM certificate"},
		{"cert without key", func(c *Cluster) { c.EtcdTLS.Cert = tf.cert }, "cluster.etcd_tls.key", "must be set"},
		{"key without cert", func(c *Cluster) { c.EtcdTLS.Key = tf.key }, "cluster.etcd_tls.cert", "must be set"},
		{"cert/key mismatch", func(c *Cluster) { c.EtcdTLS.Cert, c.EtcdTLS.Key = tf.cert, tf.otherKey }, "cluster.etcd_tls.cert", "matching"},
		{"node id slash", func(c *Cluster) { c.NodeID = "a/b" }, "cluster.node_id", "must match"},
		{"node id too long", func(c *Cluster) { c.NodeID = strings.Repeat("n", 64) }, "cluster.node_id", "must match"},
		{"advertise missing", func(c *Cluster) { c.Advertise = "" }, "cluster.advertise", "must be set"},
		{"advertise port", func(c *Cluster) { c.Advertise = "10.0.0.11:8554" }, "cluster.advertise", "without scheme or port"},
		{"advertise url", func(c *Cluster) { c.Advertise = "http://node-a" }, "cluster.advertise", "without scheme or port"},
		{"advertise any", func(c *Cluster) { c.Advertise = "0.0.0.0" }, "cluster.advertise", "not 0.0.0.0"},
		{"advertise junk", func(c *Cluster) { c.Advertise = "node a" }, "cluster.advertise", "host name or IP"},
		{"peer key missing", func(c *Cluster) { c.PeerKeyFile = "" }, "cluster.peer_key_file", "at least 32 bytes"},
		{"peer key unreadable", func(c *Cluster) { c.PeerKeyFile = missing }, "cluster.peer_key_file", "cannot read"},
		{"peer key short", func(c *Cluster) { c.PeerKeyFile = short }, "cluster.peer_key_file", "holds 31 bytes"},
		{"peer key huge", func(c *Cluster) { c.PeerKeyFile = big }, "cluster.peer_key_file", "larger than"},
		{"ttl junk", func(c *Cluster) { c.LeaseTTL = "soon" }, "cluster.lease_ttl", "duration"},
		{"ttl short", func(c *Cluster) { c.LeaseTTL = "1s" }, "cluster.lease_ttl", "between 2s and 60s"},
		{"ttl long", func(c *Cluster) { c.LeaseTTL = "2m" }, "cluster.lease_ttl", "between 2s and 60s"},
		{"rtsp off", func(c *Cluster) {}, "rtsp.listen", "relay cameras"},
		{"ttl fraction", func(c *Cluster) { c.LeaseTTL = "2500ms" }, "cluster.lease_ttl", "whole seconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clusterConfig(t)
			tc.mut(&c.Cluster)
			if tc.name == "rtsp off" {
				c.RTSP.Listen = ""
			}
			errs := c.Validate()
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Fatalf("got %v, want one error %s: ...%s...", FieldErrors(errs), tc.field, tc.msg)
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), "0123456789abcdef") || strings.Contains(e.Error(), "kkkkkkkk") {
					t.Fatalf("error leaks the key: %v", e)
				}
			}
		})
	}
}

// TestClusterEnvOverrides: the per-node values of a shared config file come
// from the environment.
func TestClusterEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "peer.key", testPeerKey)
	path := writeFile(t, dir, "c.yaml", `
auth:
  users:
    - {name: alice, password_hash: "`+testHash+`", cameras: ["*"]}
cluster:
  etcd_endpoints: ["http://127.0.0.1:2379"]
  peer_key_file: "`+key+`"
  advertise: "shared-would-be-wrong"
`)
	t.Setenv("CORDON_CLUSTER_NODE_ID", "node-b")
	t.Setenv("CORDON_CLUSTER_ADVERTISE", "10.0.0.12")
	t.Setenv("CORDON_CLUSTER_LEASE_TTL", "7s")
	t.Setenv("CORDON_CLUSTER_ETCD_ENDPOINTS", "http://10.0.0.5:2379, http://10.0.0.6:2379")
	cfg, err := LoadAndValidate(path)
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Cluster
	if cl.NodeID != "node-b" || cl.Advertise != "10.0.0.12" || cl.TTL() != 7*time.Second ||
		!slices.Equal(cl.EtcdEndpoints, []string{"http://10.0.0.5:2379", "http://10.0.0.6:2379"}) {
		t.Fatalf("env overrides not applied: %+v", cl)
	}
	for _, k := range []string{"cluster.etcd_tls.ca", "cluster.etcd_tls.cert", "cluster.etcd_tls.key", "cluster.peer_key_file"} {
		if !slices.Contains(Keys(), k) {
			t.Errorf("%s has no env override", k)
		}
	}
}

// TestClusterNodeIDDefaultsToHostname: node_id "" becomes the host name
// when the cluster is on, and stays "" when it is off.
func TestClusterNodeIDDefaultsToHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name here")
	}
	t.Setenv("CORDON_CLUSTER_ETCD_ENDPOINTS", "127.0.0.1:2379")
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.NodeID != host {
		t.Fatalf("node_id = %q, want the host name %q", cfg.Cluster.NodeID, host)
	}
	t.Setenv("CORDON_CLUSTER_ETCD_ENDPOINTS", "")
	if cfg, err = Load(""); err != nil || cfg.Cluster.NodeID != "" {
		t.Fatalf("single node: node_id = %q, %v", cfg.Cluster.NodeID, err)
	}
}

// TestClusterWarnings: a plain RTSP listener carries the peer link without
// encryption.
func TestClusterWarnings(t *testing.T) {
	c := clusterConfig(t)
	c.RTSP.Listen = ":8554"
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	var buf bytes.Buffer
	for _, w := range c.Warnings() {
		buf.WriteString(w.Error() + "\n")
	}
	if !strings.Contains(buf.String(), "cluster.advertise: ") {
		t.Fatalf("no peer-link warning:\n%s", buf.String())
	}
	c.Cluster.Advertise = "127.0.0.1"
	for _, w := range c.Warnings() {
		if w.Field == "cluster.advertise" {
			t.Fatalf("loopback advertise warned: %v", w)
		}
	}
}
