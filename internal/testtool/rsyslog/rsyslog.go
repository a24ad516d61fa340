// Package rsyslog runs Debian's rsyslogd on loopback for tests: a real
// syslog collector with a plain TCP input, a TLS input (RFC 5425, client
// certificate required) and a UDP input, that can be stopped and
// restarted on the same ports. It lives in internal/testtool because the
// audit forwarder's tests and the end-to-end tests both use it.
package rsyslog

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Collector is a real rsyslogd on loopback: a plain TCP input, a TLS
// input (RFC 5425, client certificate required) and a UDP input, all
// writing the raw messages to one file, and each gateway's lines to a file
// of its own as the README's collector recipe does. Tests tell their
// messages apart by node (the syslog HOSTNAME).
type Collector struct {
	// Dir holds the configuration, certificates and received files.
	Dir string
	// TCP, TLS and UDP are the loopback ports of the three inputs.
	TCP, TLS, UDP int
	// CA verifies the TLS input; Cert and Key are a client certificate
	// it accepts.
	CA, Cert, Key string

	conf      string
	out       string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	stderrLog string
}

// Start runs rsyslogd (Debian's package) on loopback ports and waits
// until it listens.
func Start() (*Collector, error) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		return nil, errors.New("rsyslogd is not installed (run `make deps`)")
	}
	dir, err := os.MkdirTemp("", "cordon-rsyslog-")
	if err != nil {
		return nil, err
	}
	c := &Collector{Dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), out: filepath.Join(dir, "received.log")}
	certs, err := WriteCertificates(dir)
	if err == nil {
		c.CA, c.Cert, c.Key = certs.CA, certs.ClientCert, certs.ClientKey
		c.UDP, err = freeUDPPort()
	}
	// First start: TCP ports chosen by rsyslogd (port 0), read back; the
	// config is then rewritten with them so a restart keeps them.
	if err == nil {
		err = c.writeConf(0, 0)
	}
	if err == nil {
		err = c.start(bin)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if c.TCP, err = waitPortFile(filepath.Join(dir, "tcp.port"), c.exited); err == nil {
		c.TLS, err = waitPortFile(filepath.Join(dir, "tls.port"), c.exited)
	}
	if err == nil {
		err = c.writeConf(c.TCP, c.TLS)
	}
	if err != nil {
		msg := c.stderr()
		c.Close()
		return nil, fmt.Errorf("%w: %s", err, msg)
	}
	return c, nil
}

func (c *Collector) writeConf(tcp, tls int) error {
	d := c.Dir
	conf := fmt.Sprintf(`global(workDirectory=%[1]q
  DefaultNetstreamDriverCAFile=%[2]q DefaultNetstreamDriverCertFile=%[3]q DefaultNetstreamDriverKeyFile=%[4]q)
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="%[5]d" listenPortFileName=%[6]q ruleset="audit")
input(type="imtcp" address="127.0.0.1" port="%[7]d" listenPortFileName=%[8]q ruleset="audit"
  StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imudp" address="127.0.0.1" port="%[9]d" ruleset="audit")
template(name="raw" type="string" string="%%rawmsg%%\n")
template(name="cordonLine" type="string" string="%%msg%%\n")
template(name="cordonFile" type="string" string="%[11]s/%%hostname%%.audit.log")
ruleset(name="audit") {
  action(type="omfile" file=%[10]q template="raw")
  action(type="omfile" dynaFile="cordonFile" template="cordonLine")
}
`, d, filepath.Join(d, "ca.pem"), filepath.Join(d, "server.pem"), filepath.Join(d, "server.key"),
		tcp, filepath.Join(d, "tcp.port"), tls, filepath.Join(d, "tls.port"), c.UDP, c.out, d)
	return os.WriteFile(c.conf, []byte(conf), 0o600)
}

func (c *Collector) start(bin string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range []string{"tcp.port", "tls.port"} {
		_ = os.Remove(filepath.Join(c.Dir, f))
	}
	c.stderrLog = filepath.Join(c.Dir, "rsyslogd.out")
	logf, err := os.OpenFile(c.stderrLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-n", "-f", c.conf, "-i", filepath.Join(c.Dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}(c.exited)
	return nil
}

// Stop ends rsyslogd (SIGTERM) and waits for it.
func (c *Collector) Stop() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart starts rsyslogd again on the same ports and waits until it
// listens.
func (c *Collector) Restart() error {
	bin, _ := exec.LookPath("rsyslogd")
	if err := c.start(bin); err != nil {
		return err
	}
	for _, port := range []int{c.TCP, c.TLS} {
		if err := waitListening(port, c.exited); err != nil {
			return fmt.Errorf("%w: %s", err, c.stderr())
		}
	}
	return nil
}

// waitListening waits until a loopback TCP port accepts connections (with
// a fixed port rsyslogd writes no port file), or rsyslogd exits.
func waitListening(port int, exited <-chan struct{}) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for {
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("rsyslogd exited")
		case <-deadline:
			return errors.New("rsyslogd does not listen")
		case <-tick.C:
		}
	}
}

// EnsureRunning restarts rsyslogd if a test left it stopped.
func (c *Collector) EnsureRunning() error {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	select {
	case <-exited:
		return c.Restart()
	default:
		return nil
	}
}

func (c *Collector) stderr() string {
	b, _ := os.ReadFile(c.stderrLog)
	return string(b)
}

// NodeFile is the per-gateway file the README's collector recipe writes
// (the MSG of each message: the audit line).
func (c *Collector) NodeFile(node string) string {
	return filepath.Join(c.Dir, node+".audit.log")
}

// Received returns the raw messages from node, in arrival order.
func (c *Collector) Received(node string) []string {
	f, err := os.Open(c.out)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if parts := strings.SplitN(sc.Text(), " ", 4); len(parts) == 4 && parts[2] == node {
			out = append(out, sc.Text())
		}
	}
	return out
}

// WaitFor polls the collector's file until cond holds (rsyslogd gives no
// other signal that a message was written), failing after limit.
func (c *Collector) WaitFor(t testing.TB, node string, limit time.Duration, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := c.Received(node)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector: condition not met after %v; %d messages from %s", limit, len(got), node)
		}
		<-tick.C
	}
}

func (c *Collector) Close() {
	c.Stop()
	_ = os.RemoveAll(c.Dir)
}

// waitPortFile waits for rsyslogd's listenPortFileName file (polling: it
// is the only signal rsyslogd gives), or for rsyslogd to exit.
func waitPortFile(path string, exited <-chan struct{}) (int, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strconv.Atoi(strings.TrimSpace(string(b)))
		}
		select {
		case <-exited:
			return 0, errors.New("rsyslogd exited")
		case <-deadline:
			return 0, errors.New("rsyslogd did not open its port")
		case <-tick.C:
		}
	}
}

// freeUDPPort finds a free loopback UDP port for imudp (which cannot
// report a port it chose). Another process could take it before
// rsyslogd binds it; rsyslogd would then log a bind error and the UDP
// test would fail visibly.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// Certs are the files WriteCertificates made.
type Certs struct {
	CA                    string // the CA certificate (PEM)
	ServerCert, ServerKey string // for 127.0.0.1 and "server"
	ClientCert, ClientKey string // a client certificate ("client")
}

// WriteCertificates writes a CA, a server certificate for 127.0.0.1 and a
// client certificate, all from the CA, into dir.
func WriteCertificates(dir string) (Certs, error) {
	var out Certs
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return out, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cordon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return out, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	out.CA = filepath.Join(dir, "ca.pem")
	if err := writePEM(out.CA, "CERTIFICATE", caDER); err != nil {
		return out, err
	}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ip bool) (string, string, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: []string{name}}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		kd, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return "", "", err
		}
		cp, kp := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		return cp, kp, errors.Join(writePEM(cp, "CERTIFICATE", der), writePEM(kp, "PRIVATE KEY", kd))
	}
	if out.ServerCert, out.ServerKey, err = issue("server", 2, x509.ExtKeyUsageServerAuth, true); err != nil {
		return out, err
	}
	out.ClientCert, out.ClientKey, err = issue("client", 3, x509.ExtKeyUsageClientAuth, false)
	return out, err
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
