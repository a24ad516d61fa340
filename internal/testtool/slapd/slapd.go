// Package slapd runs Debian's OpenLDAP server (slapd) on loopback for
// tests: a generated slapd.conf, a throw-away test CA and server
// certificate, LDAPS and StartTLS listeners, the memberof and ppolicy
// overlays, and a small directory (Directory below). Tests start one
// server per package (in TestMain) and change the directory through Modify
// (ldapmodify over the server's private ldapi socket), so the fixture does
// not depend on the LDAP client library under test.
//
// It lives in internal/testtool because the directory package's tests and
// the end-to-end tests both use it.
package slapd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cordon/internal/testtool/testca"
)

// Names in the test directory.
const (
	Suffix          = "dc=force,dc=local"
	RootDN          = "cn=admin," + Suffix
	ServiceDN       = "cn=cordon-svc,ou=services," + Suffix
	PeopleDN        = "ou=people," + Suffix
	GroupsDN        = "ou=groups," + Suffix
	OperatorsDN     = "cn=cctv-operators," + GroupsDN
	SupervisorsDN   = "cn=cctv-supervisors," + GroupsDN
	ServicePassword = "svc-secret-1"
	// OddName is a user whose uid holds filter metacharacters.
	OddName = "ops(night)*"
)

// Users of the test directory: name -> password. alice is in
// cctv-operators and cctv-supervisors, bob in no group, carol in
// cctv-operators but disabled (ppolicy lock), OddName in cctv-operators.
var Users = map[string]string{
	"alice": "alice-pw-1",
	"bob":   "bob-pw-1",
	"carol": "carol-pw-1",
	OddName: "odd-pw-1",
}

// UserDN returns the DN of a test user.
func UserDN(name string) string { return "uid=" + name + "," + PeopleDN }

// Server is a running slapd.
type Server struct {
	// LDAPSURL is ldaps://127.0.0.1:PORT; LDAPURL is ldap://127.0.0.1:PORT
	// for StartTLS.
	LDAPSURL string
	LDAPURL  string
	// CA signed the server certificate (for 127.0.0.1 and localhost);
	// CA.CertFile is the ca_file a client uses.
	CA *testca.CA
	// ServicePasswordFile holds ServicePassword.
	ServicePasswordFile string
	// Version is slapd's version line.
	Version string

	dir      string
	ldapi    string
	rootPW   string
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	logMu    sync.Mutex
	log      bytes.Buffer
	stopOnce sync.Once
}

// Binary returns the path of slapd, or an error saying how to get it.
func Binary() (string, error) {
	for _, p := range []string{"/usr/sbin/slapd", "/usr/local/libexec/slapd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("slapd"); err == nil {
		return p, nil
	}
	return "", errors.New("slapd is not installed (run `make deps`: Debian packages slapd and ldap-utils)")
}

// Start runs slapd with its files under dir (which must exist and be
// short enough for a unix socket path, e.g. os.MkdirTemp("", "slapd")),
// loads Directory and waits until it serves. Close stops it.
func Start(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("ldapmodify"); err != nil {
		return nil, errors.New("ldapmodify is not installed (run `make deps`: Debian package ldap-utils)")
	}
	s := &Server{dir: dir, rootPW: randomHex(12)}
	s.CA, err = testca.New(dir, "ldap")
	if err != nil {
		return nil, err
	}
	leaf, err := s.CA.Issue("slapd", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	s.ServicePasswordFile = filepath.Join(dir, "svc-password")
	if err := os.WriteFile(s.ServicePasswordFile, []byte(ServicePassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(s.config(leaf)), 0o600); err != nil {
		return nil, err
	}
	s.ldapi = filepath.Join(dir, "ldapi")
	// slapd cannot listen on port 0 and report the port, so free ports are
	// picked and the start is retried when another process took one first.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		lastErr = s.run(bin, conf)
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if err := s.Modify(Directory(), true); err != nil {
		s.Close()
		return nil, fmt.Errorf("slapd: load directory: %w", err)
	}
	return s, nil
}

func (s *Server) config(leaf *testca.Leaf) string {
	d := s.dir
	return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile ` + filepath.Join(d, "slapd.pid") + `
argsfile ` + filepath.Join(d, "slapd.args") + `
TLSCACertificateFile ` + s.CA.CertFile + `
TLSCertificateFile ` + leaf.CertFile + `
TLSCertificateKeyFile ` + leaf.KeyFile + `
TLSProtocolMin 3.3
disallow bind_anon
database mdb
maxsize 10485760
suffix "` + Suffix + `"
rootdn "` + RootDN + `"
rootpw ` + s.rootPW + `
directory ` + filepath.Join(d, "db") + `
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="` + ServiceDN + `" read
  by self read
  by * none
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay ppolicy
ppolicy_default "cn=default,ou=policies,` + Suffix + `"
`
}

// run starts slapd on two fresh loopback ports and waits for "slapd
// starting" (debug level 256 prints it once every listener is bound).
func (s *Server) run(bin, conf string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(ports[0])
	s.LDAPURL = "ldap://127.0.0.1:" + strconv.Itoa(ports[1])
	_ = os.Remove(s.ldapi)
	urls := s.LDAPSURL + "/ " + s.LDAPURL + "/ ldapi://" + url.PathEscape(s.ldapi)
	cmd := exec.Command(bin, "-f", conf, "-h", urls, "-d", "256")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("slapd: %w", err)
	}
	ready := make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.logLine(line)
			if s.Version == "" && strings.Contains(line, "OpenLDAP: slapd") {
				v := line[strings.Index(line, "OpenLDAP: slapd")+len("OpenLDAP: "):]
				if f := strings.Fields(v); len(f) >= 2 {
					s.Version = f[0] + " " + f[1]
				}
			}
			if !signalled && strings.HasSuffix(line, "slapd starting") {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
		s.cmd = cmd
		if err := s.waitListening(ports); err != nil {
			_ = cmd.Process.Kill()
			<-s.done
			s.cmd = nil
			return err
		}
		return nil
	case <-s.done:
		return fmt.Errorf("slapd exited at start (%v): %s", s.waitErr, s.Log())
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("slapd did not start within 20s: %s", s.Log())
	}
}

// waitListening returns once the ldapi socket and both TCP listeners
// accept connections. slapd prints "slapd starting" before its daemon
// loop calls listen() on the sockets it has bound, so a client that
// connects on that line alone is refused now and then on a loaded
// machine. Nothing announces the listen() calls (short of debug levels
// that log every poll), so each listener is tried every 5 ms, for at most
// 20 s or until slapd exits.
func (s *Server) waitListening(ports []int) error {
	addrs := [][2]string{{"unix", s.ldapi}}
	for _, p := range ports {
		addrs = append(addrs, [2]string{"tcp", "127.0.0.1:" + strconv.Itoa(p)})
	}
	deadline := time.Now().Add(20 * time.Second)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout(a[0], a[1], time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("slapd: %s %s not accepting connections 20s after start: %v", a[0], a[1], err)
			}
			select {
			case <-t.C:
			case <-s.done:
				return fmt.Errorf("slapd exited at start (%v): %s", s.waitErr, s.Log())
			}
		}
	}
	return nil
}

const maxLog = 256 * 1024

func (s *Server) logLine(line string) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.log.Len() > maxLog {
		b := s.log.Bytes()
		keep := append([]byte(nil), b[len(b)-maxLog/2:]...)
		s.log.Reset()
		s.log.Write(keep)
	}
	s.log.WriteString(line)
	s.log.WriteByte('\n')
}

// Log returns slapd's recent debug output (stats: every connection,
// bind and search).
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// Modify applies LDIF through ldapmodify as the root DN over the private
// ldapi socket (add = true: entries without changetype are added).
func (s *Server) Modify(ldif string, add bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-x", "-H", "ldapi://" + url.PathEscape(s.ldapi), "-D", RootDN, "-y", s.rootPWFile()}
	if add {
		args = append(args, "-a")
	}
	cmd := exec.CommandContext(ctx, "ldapmodify", args...)
	cmd.Stdin = strings.NewReader(ldif)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ldapmodify: %v: %s", err, out)
	}
	return nil
}

func (s *Server) rootPWFile() string {
	p := filepath.Join(s.dir, "root-password")
	if _, err := os.Stat(p); err != nil {
		// ldapmodify -y reads the whole file: no trailing newline
		_ = os.WriteFile(p, []byte(s.rootPW), 0o600)
	}
	return p
}

// Pause stops slapd (SIGSTOP) and returns once the kernel reports it
// stopped: its sockets accept connections and never answer, like a hung
// directory. Resume undoes it.
func (s *Server) Pause() error {
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return s.waitState(func(st byte) bool { return st == 'T' || st == 't' })
}

// Resume continues a paused slapd and returns once it runs again.
func (s *Server) Resume() error {
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	return s.waitState(func(st byte) bool { return st != 'T' && st != 't' })
}

// waitState waits until slapd's scheduler state (/proc/PID/stat) passes
// ok. Signal delivery is asynchronous and nothing notifies another process
// of it, so the state is polled every millisecond, for at most 5 s.
func (s *Server) waitState(ok func(byte) bool) error {
	path := "/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat"
	deadline := time.Now().Add(5 * time.Second)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && ok(b[i+2]) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slapd: state %q after 5s", b)
		}
		<-t.C
	}
}

// Close stops slapd and waits for it.
func (s *Server) Close() {
	s.stopOnce.Do(func() {
		if s.cmd == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
