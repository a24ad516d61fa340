package audit

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

	"cordon/internal/testtool"
)

// collector is a real rsyslogd on loopback, started once for the test
// package (TestMain): a plain TCP input, a TLS input (RFC 5425, client
// certificate required) and a UDP input, all writing the raw messages to
// one file, and each gateway's lines to a file of its own as the README's
// collector recipe does. Tests tell their messages apart by node.
type collector struct {
	dir           string
	conf          string
	out           string
	tcp, tls, udp int
	ca, cert, key string // client certificate for the TLS input
	mu            sync.Mutex
	cmd           *exec.Cmd
	exited        chan struct{}
	stderrLog     string
}

// rsys is the package's collector, started once by the first test that
// needs it (nil when rsyslogd is not installed or did not start; rsysErr
// says why); TestMain stops it.
var (
	rsys     *collector
	rsysErr  error
	rsysOnce sync.Once
)

func startCollector() (*collector, error) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		return nil, errors.New("rsyslogd is not installed (run `make deps`)")
	}
	dir, err := os.MkdirTemp("", "cordon-rsyslog-")
	if err != nil {
		return nil, err
	}
	c := &collector{dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), out: filepath.Join(dir, "received.log")}
	if err := c.certificates(); err != nil {
		return nil, err
	}
	udp, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	c.udp = udp
	// First start: TCP ports chosen by rsyslogd (port 0), read back; the
	// config is then rewritten with them so a restart keeps them.
	if err := c.writeConf(0, 0); err != nil {
		return nil, err
	}
	if err := c.start(bin); err != nil {
		return nil, err
	}
	if c.tcp, err = waitPortFile(filepath.Join(dir, "tcp.port"), c.exited); err == nil {
		c.tls, err = waitPortFile(filepath.Join(dir, "tls.port"), c.exited)
	}
	if err == nil {
		err = c.writeConf(c.tcp, c.tls)
	}
	if err != nil {
		msg := c.stderr()
		c.close()
		return nil, fmt.Errorf("%w: %s", err, msg)
	}
	return c, nil
}

func (c *collector) writeConf(tcp, tls int) error {
	d := c.dir
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
		tcp, filepath.Join(d, "tcp.port"), tls, filepath.Join(d, "tls.port"), c.udp, c.out, d)
	return os.WriteFile(c.conf, []byte(conf), 0o600)
}

func (c *collector) start(bin string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range []string{"tcp.port", "tls.port"} {
		_ = os.Remove(filepath.Join(c.dir, f))
	}
	c.stderrLog = filepath.Join(c.dir, "rsyslogd.out")
	logf, err := os.OpenFile(c.stderrLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-n", "-f", c.conf, "-i", filepath.Join(c.dir, "rsyslogd.pid"))
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

// stop ends rsyslogd (SIGTERM) and waits for it.
func (c *collector) stop() {
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

// restart starts rsyslogd again on the same ports and waits until it
// listens.
func (c *collector) restart() error {
	bin, _ := exec.LookPath("rsyslogd")
	if err := c.start(bin); err != nil {
		return err
	}
	for _, port := range []int{c.tcp, c.tls} {
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

// ensureRunning restarts rsyslogd if a test left it stopped.
func (c *collector) ensureRunning() {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	select {
	case <-exited:
		if err := c.restart(); err != nil {
			rsysErr, rsys = err, nil
		}
	default:
	}
}

func (c *collector) stderr() string {
	b, _ := os.ReadFile(c.stderrLog)
	return string(b)
}

// nodeFile is the per-gateway file the README's collector recipe writes
// (the MSG of each message: the audit line).
func (c *collector) nodeFile(node string) string {
	return filepath.Join(c.dir, node+".audit.log")
}

// received returns the raw messages from node, in arrival order.
func (c *collector) received(node string) []string {
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

// waitFor polls the collector's file until cond holds (rsyslogd gives no
// other signal that a message was written), failing after limit.
func (c *collector) waitFor(t *testing.T, node string, limit time.Duration, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := c.received(node)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector: condition not met after %v; %d messages from %s", limit, len(got), node)
		}
		<-tick.C
	}
}

func (c *collector) close() {
	c.stop()
	_ = os.RemoveAll(c.dir)
}

// needCollector returns the package's rsyslogd, or skips (fails in CI).
func needCollector(t *testing.T) *collector {
	t.Helper()
	rsysOnce.Do(func() {
		c, err := startCollector()
		if err != nil {
			rsysErr = err
			return
		}
		rsys = c
	})
	if rsys == nil {
		testtool.Missing(t, fmt.Sprintf("no rsyslog collector: %v", rsysErr))
	}
	return rsys
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

// certificates writes a CA, a server certificate for 127.0.0.1 and a
// client certificate, all from the CA.
func (c *collector) certificates() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cordon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	c.ca = filepath.Join(c.dir, "ca.pem")
	if err := writePEM(c.ca, "CERTIFICATE", caDER); err != nil {
		return err
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
		cp, kp := filepath.Join(c.dir, name+".pem"), filepath.Join(c.dir, name+".key")
		return cp, kp, errors.Join(writePEM(cp, "CERTIFICATE", der), writePEM(kp, "PRIVATE KEY", kd))
	}
	if _, _, err := issue("server", 2, x509.ExtKeyUsageServerAuth, true); err != nil {
		return err
	}
	c.cert, c.key, err = issue("client", 3, x509.ExtKeyUsageClientAuth, false)
	return err
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
