package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"cordon/internal/testtool"
)

// The tests run against a real etcd: Debian's etcd-server (3.4), started
// here as a 3-member cluster on loopback with TLS and client-certificate
// authentication, once for the package. It is the same binary an operator
// runs, as separate processes, so a member can be killed and restarted
// for real; etcd's embed package would also build, but it adds the whole
// etcd server (bbolt, raft, OpenTelemetry...) to go.mod for tests alone.
var testEtcd *etcdCluster

// etcdMissing says why no etcd could be started ("" = it runs).
var etcdMissing string

func TestMain(m *testing.M) {
	code := func() int {
		bin, err := exec.LookPath("etcd")
		if err != nil {
			etcdMissing = "etcd is not installed (Debian package etcd-server; run `make deps`)"
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "cordon-etcd-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		testEtcd, err = startEtcd(bin, dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting etcd:", err)
			return 1
		}
		defer testEtcd.close()
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
func needEtcd(t testing.TB) *etcdCluster {
	t.Helper()
	if etcdMissing != "" {
		testtool.Missing(t, etcdMissing)
	}
	return testEtcd
}

type etcdCluster struct {
	bin     string
	dir     string
	members []*etcdMember
	ca      *x509.CertPool
	client  tls.Certificate // signed by the CA, for client auth
	caPEM   string          // path
}

type etcdMember struct {
	name    string
	client  string // host:port
	args    []string
	log     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// startEtcd starts three members, retrying with fresh ports if another
// process took one of the probed ports first.
func startEtcd(bin, dir string) (*etcdCluster, error) {
	c := &etcdCluster{bin: bin, dir: dir}
	if err := c.makeCerts(); err != nil {
		return nil, err
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = c.startAll(attempt); err == nil {
			return c, nil
		}
		c.close()
	}
	return nil, err
}

func (c *etcdCluster) startAll(attempt int) error {
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	var initial []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[3+i]))
	}
	c.members = nil
	for i := range 3 {
		name := fmt.Sprintf("m%d", i)
		data := filepath.Join(c.dir, fmt.Sprintf("a%d-%s", attempt, name))
		clientURL := fmt.Sprintf("https://127.0.0.1:%d", ports[i])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[3+i])
		m := &etcdMember{name: name, client: strings.TrimPrefix(clientURL, "https://"), log: data + ".log",
			args: []string{"--name", name, "--data-dir", data,
				"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
				"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
				"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
				"--initial-cluster-token", fmt.Sprintf("cordon-test-%d", attempt),
				"--cert-file", filepath.Join(c.dir, "server.pem"), "--key-file", filepath.Join(c.dir, "server.key"),
				"--trusted-ca-file", c.caPEM, "--client-cert-auth",
				// Faster elections than the defaults (100/1000 ms) keep the
				// member-loss tests short; leases may then be as short as 1 s.
				"--heartbeat-interval", "50", "--election-timeout", "500"}}
		c.members = append(c.members, m)
		if err := m.start(c.bin); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.waitHealthy(ctx, c.endpoints())
}

func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func (m *etcdMember) start(bin string) error {
	f, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited, m.stopped = cmd, exited, false
	m.mu.Unlock()
	return nil
}

// kill stops a member as a crash or power loss would (SIGKILL).
func (m *etcdMember) kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.stopped = true
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.client)
	}
	return out
}

// tlsConfig is a node's client TLS configuration for the test etcd.
func (c *etcdCluster) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: c.ca, Certificates: []tls.Certificate{c.client}, MinVersion: tls.VersionTLS12}
}

func (c *etcdCluster) dial(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: c.tlsConfig(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
}

// waitHealthy waits until a quorum answers a linearizable read through
// endpoints.
func (c *etcdCluster) waitHealthy(ctx context.Context, endpoints []string) error {
	cli, err := c.dial(endpoints)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(gctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, c.logs())
		case <-tick.C:
		}
	}
}

// leader returns the index of the current leader.
func (c *etcdCluster) leader(ctx context.Context) (int, error) {
	cli, err := c.dial(c.endpoints())
	if err != nil {
		return -1, err
	}
	defer func() { _ = cli.Close() }()
	for i, m := range c.members {
		st, err := cli.Status(ctx, m.client)
		if err == nil && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, errors.New("no leader")
}

// restart starts stopped members again with their data (members that
// run are left alone).
func (c *etcdCluster) restart(ctx context.Context, which ...int) error {
	for _, i := range which {
		m := c.members[i]
		m.mu.Lock()
		stopped := m.stopped
		m.mu.Unlock()
		if !stopped {
			continue
		}
		if err := m.start(c.bin); err != nil {
			return err
		}
	}
	return c.waitHealthy(ctx, c.endpoints())
}

func (c *etcdCluster) logs() error {
	var b strings.Builder
	for _, m := range c.members {
		f, err := os.Open(m.log)
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
		_ = f.Close()
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "--- %s (last lines)\n%s\n", m.name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	return errors.New(b.String())
}

func (c *etcdCluster) close() {
	for _, m := range c.members {
		m.kill()
	}
}

// makeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as an operator would for etcd's client TLS.
func (c *etcdCluster) makeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cordon test etcd CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	c.ca = x509.NewCertPool()
	c.ca.AddCert(caCert)
	c.caPEM = filepath.Join(c.dir, "ca.pem")
	if err := writePEM(c.caPEM, "CERTIFICATE", caDER); err != nil {
		return err
	}
	issue := func(serial int64, cn string, usage []x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: usage, IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		return der, key, err
	}
	srvDER, srvKey, err := issue(2, "etcd", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(c.dir, "server.pem"), "CERTIFICATE", srvDER); err != nil {
		return err
	}
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	if err := writePEM(filepath.Join(c.dir, "server.key"), "EC PRIVATE KEY", kb); err != nil {
		return err
	}
	cliDER, cliKey, err := issue(3, "cordon-node", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
	if err != nil {
		return err
	}
	c.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	kb, _ = x509.MarshalECPrivateKey(cliKey)
	if err := writePEM(filepath.Join(c.dir, "client.pem"), "CERTIFICATE", cliDER); err != nil {
		return err
	}
	return writePEM(filepath.Join(c.dir, "client.key"), "EC PRIVATE KEY", kb)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
