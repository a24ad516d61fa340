// Package clustertest starts a real etcd cluster for tests: Debian's
// etcd-server binary (etcd 3.4 or later on PATH), N members on loopback
// with TLS and client-certificate authentication, each member a separate
// process that can be killed and restarted with its data. The cluster
// package's tests use it, and so can the command line's and the
// end-to-end tests of a cordon cluster. It lives beside cluster because it
// is the etcd side of those tests and belongs to no other package.
package clustertest

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
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary returns the path of the etcd server binary.
func Binary() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", errors.New("etcd is not installed (Debian package etcd-server; run `make deps`)")
	}
	return p, nil
}

// Etcd is a running etcd cluster. Its client URLs are https:// with a
// test CA; clients must present a certificate signed by it (TLSConfig, or
// the files CAFile, ClientCertFile, ClientKeyFile for a config file).
type Etcd struct {
	Members        []*Member
	CAFile         string
	ClientCertFile string
	ClientKeyFile  string

	bin    string
	dir    string
	ca     *x509.CertPool
	client tls.Certificate // signed by the CA, for client auth
}

// Member is one etcd process.
type Member struct {
	name    string
	client  string // host:port
	args    []string
	log     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// Start starts an etcd cluster of n members in dir (certificates, data and
// logs go there), and waits until it answers. Ports are probed free on
// 127.0.0.1 and handed to etcd, which binds them itself: if another
// process takes one first, Start tries again with fresh ports.
func Start(dir string, n int) (*Etcd, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &Etcd{bin: bin, dir: dir}
	if err := c.makeCerts(); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		if err = c.startAll(attempt, n); err == nil {
			return c, nil
		}
		c.Close()
	}
	return nil, err
}

func (c *Etcd) startAll(attempt, n int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[n+i]))
	}
	c.Members = nil
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		data := filepath.Join(c.dir, fmt.Sprintf("a%d-%s", attempt, name))
		clientURL := fmt.Sprintf("https://127.0.0.1:%d", ports[i])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[n+i])
		m := &Member{name: name, client: strings.TrimPrefix(clientURL, "https://"), log: data + ".log",
			args: []string{"--name", name, "--data-dir", data,
				"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
				"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
				"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
				"--initial-cluster-token", fmt.Sprintf("cordon-test-%d", attempt),
				"--cert-file", filepath.Join(c.dir, "server.pem"), "--key-file", filepath.Join(c.dir, "server.key"),
				"--trusted-ca-file", c.CAFile, "--client-cert-auth",
				// Faster elections than the defaults (100/1000 ms) keep the
				// member-loss tests short; leases may then be as short as 1 s.
				"--heartbeat-interval", "50", "--election-timeout", "500"}}
		c.Members = append(c.Members, m)
		if err := m.start(c.bin); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.WaitHealthy(ctx)
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

func (m *Member) start(bin string) error {
	f, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
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

// Kill stops a member as a crash or power loss would (SIGKILL) and waits
// until the process is gone.
func (m *Member) Kill() {
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

// Endpoints are the members' client addresses (host:port, TLS).
func (c *Etcd) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.client)
	}
	return out
}

// TLSConfig is a client TLS configuration for this etcd.
func (c *Etcd) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: c.ca, Certificates: []tls.Certificate{c.client}, MinVersion: tls.VersionTLS12}
}

// Dial opens a client to every member.
func (c *Etcd) Dial() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.TLSConfig(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
}

// WaitHealthy waits until a quorum answers a linearizable read.
func (c *Etcd) WaitHealthy(ctx context.Context) error {
	cli, err := c.Dial()
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

// Leader returns the index of the current leader.
func (c *Etcd) Leader(ctx context.Context) (int, error) {
	cli, err := c.Dial()
	if err != nil {
		return -1, err
	}
	defer func() { _ = cli.Close() }()
	for i, m := range c.Members {
		st, err := cli.Status(ctx, m.client)
		if err == nil && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, errors.New("no leader")
}

// Restart starts killed members again with their data (members that run
// are left alone) and waits until the cluster answers.
func (c *Etcd) Restart(ctx context.Context, which ...int) error {
	for _, i := range which {
		m := c.Members[i]
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
	return c.WaitHealthy(ctx)
}

// logs returns the members' last log lines as an error's text.
func (c *Etcd) logs() error {
	var b strings.Builder
	for _, m := range c.Members {
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

// Close kills every member.
func (c *Etcd) Close() {
	for _, m := range c.Members {
		m.Kill()
	}
}

// makeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as an operator would for etcd's client TLS.
func (c *Etcd) makeCerts() error {
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
	c.CAFile = filepath.Join(c.dir, "ca.pem")
	if err := writePEM(c.CAFile, "CERTIFICATE", caDER); err != nil {
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
	c.ClientCertFile, c.ClientKeyFile = filepath.Join(c.dir, "client.pem"), filepath.Join(c.dir, "client.key")
	if err := writePEM(c.ClientCertFile, "CERTIFICATE", cliDER); err != nil {
		return err
	}
	return writePEM(c.ClientKeyFile, "EC PRIVATE KEY", kb)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// CAPool is the CA that signed the members' certificates.
func (c *Etcd) CAPool() *x509.CertPool { return c.ca }
