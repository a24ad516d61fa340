package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"cordon/internal/testtool/slapd"
)

// slowProxy forwards TCP connections to a target and holds every chunk the
// target sends for delay before passing it on (each chunk from the moment
// it was read, so a reply in several chunks is late by delay, not by a
// multiple of it): a directory that answers, slowly.
type slowProxy struct {
	addr  string
	delay atomic.Int64 // nanoseconds
}

// (Function over 80 lines: one proxy with its accept and copy loops.)
func newSlowProxy(t *testing.T, target string) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{addr: ln.Addr().String()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			track(client)
			track(server)
			wg.Go(func() {
				_, _ = io.Copy(server, client)
				_ = server.Close()
				_ = client.Close()
			})
			type chunk struct {
				b  []byte
				at time.Time
			}
			chunks := make(chan chunk, 256)
			wg.Go(func() {
				defer close(chunks)
				buf := make([]byte, 32<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 {
						chunks <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(time.Duration(p.delay.Load()))}
					}
					if err != nil {
						return
					}
				}
			})
			wg.Go(func() {
				defer client.Close()
				for c := range chunks {
					// the delay is the behaviour under test (a slow
					// directory), not a wait for something to happen
					if d := time.Until(c.at); d > 0 {
						tm := time.NewTimer(d)
						select {
						case <-tm.C:
						case <-stop:
							tm.Stop()
							return
						}
					}
					if _, err := client.Write(c.b); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		close(stop)
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// timeLate runs f and returns how long it took and how late, at worst, a
// 5 ms timer of this process fired meanwhile: the time the machine kept
// this process from running (on a 2-core machine shared with other
// builds that is usually milliseconds, and now and then over a second).
// A deadline bound adds it, so the bound does not depend on the machine's
// load but still catches time the code itself spent past its deadline.
func timeLate(f func()) (took, late time.Duration) {
	stop := make(chan struct{})
	worst := make(chan time.Duration)
	go func() {
		const tick = 5 * time.Millisecond
		var w time.Duration
		tm := time.NewTimer(tick)
		defer tm.Stop()
		due := time.Now().Add(tick)
		for {
			select {
			case <-stop:
				if l := time.Since(due); l > w { // a timer that is late right now
					w = l
				}
				worst <- w
				return
			case <-tm.C:
				if l := time.Since(due); l > w {
					w = l
				}
				tm.Reset(tick)
				due = time.Now().Add(tick)
			}
		}
	}()
	start := time.Now()
	f()
	took = time.Since(start)
	close(stop)
	return took, <-worst
}

// checkDeadline fails t unless a request that ended at its deadline took
// timeout, plus at most schedSlack and the machine's lateness.
func checkDeadline(t *testing.T, what string, took, late, timeout time.Duration) {
	t.Helper()
	t.Logf("%s: %v (timeout %v, machine lateness %v)", what, took, timeout, late)
	if took < timeout-50*time.Millisecond {
		t.Errorf("%s ended after %v, before its deadline (%v)", what, took, timeout)
	}
	if took > timeout+schedSlack+late {
		t.Errorf("%s took %v: more than timeout %v + %v + the machine's lateness %v", what, took, timeout, schedSlack, late)
	}
}

// One sign-in is bounded by one deadline, whatever sequence of steps it
// runs: against a directory that takes 0.4 x Timeout to answer each
// request, a request of one step succeeds, and a sign-in of three steps
// (user search, user bind, group search: 1.2 x Timeout of answers) ends
// at the deadline with "no answer", where steps with a fresh timeout each
// would have let it through after 1.2 x Timeout.
func TestLDAPOneDeadlinePerRequest(t *testing.T) {
	// longer than deadlineTimeout: the one-step request must succeed after
	// 0.4 x timeout of delay plus its own processing on a loaded machine
	const timeout = 2 * time.Second
	s := needSlapd(t)
	p := newSlowProxy(t, strings.TrimPrefix(s.LDAPSURL, "ldaps://"))
	oneStep := newLDAP(t, func(l *LDAP) { l.URL = "ldaps://" + p.addr })
	threeSteps := newLDAP(t, func(l *LDAP) {
		l.URL = "ldaps://" + p.addr
		l.GroupBaseDN = slapd.GroupsDN
		l.GroupFilter = "(member=%s)"
	})
	for _, l := range []*LDAP{oneStep, threeSteps} {
		if _, err := l.Authenticate(ctxT(t), "alice", slapd.Users["alice"]); err != nil {
			t.Fatal(err) // fills the pools: no dial below
		}
		// Timeout is read once per request; changed between requests only
		l.Timeout = timeout
	}
	p.delay.Store(int64(timeout * 4 / 10))

	start := time.Now()
	if _, err := oneStep.Lookup(ctxT(t), "alice"); err != nil {
		t.Fatalf("one step of 0.4 x Timeout: %v after %v", err, time.Since(start))
	}
	if took := time.Since(start); took < timeout*4/10 {
		t.Fatalf("the proxy did not delay: one step took %v", took)
	}

	var err error
	took, late := timeLate(func() { _, err = threeSteps.Authenticate(ctxT(t), "alice", slapd.Users["alice"]) })
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer within "+timeout.String()) {
		t.Errorf("three steps of 0.4 x Timeout: err = %v after %v, want no answer within %v", err, took, timeout)
	}
	checkDeadline(t, "three steps of 0.4 x Timeout", took, late, timeout)

	// the directory fast again: the LDAP recovers (the connection given up
	// at the deadline was replaced)
	p.delay.Store(0)
	threeSteps.Timeout = healthyTimeout
	if _, err := threeSteps.Authenticate(ctxT(t), "alice", slapd.Users["alice"]); err != nil {
		t.Errorf("after the directory sped up: %v", err)
	}
}

// runOp returns at the deadline even when the operation does not: the
// bound must not depend on the LDAP library noticing its socket's
// deadline and handing the error back through its goroutines.
func TestRunOpReturnsAtDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	l := goldap.NewConn(a, false)
	l.Start()
	var bg background
	c := &ldapConn{l: l, raw: a, bg: &bg}
	release := make(chan struct{})
	var once sync.Once
	// an implementation that waits for the operation fails the bound
	// below instead of hanging the test
	stopper := time.AfterFunc(10*time.Second, func() { once.Do(func() { close(release) }) })
	defer stopper.Stop()

	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	took, late := timeLate(func() {
		err = c.do(ctx, func() error {
			<-release // deaf to the socket, as a wait inside the library would be
			return nil
		})
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("do: %v, want the deadline", err)
	}
	checkDeadline(t, "do", took, late, timeout)
	if !c.abandoned {
		t.Error("the connection is not marked abandoned")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if err := c.do(ctx2, func() error { return nil }); !errors.Is(err, errAbandoned) {
		t.Errorf("an abandoned connection was used again: %v", err)
	}
	once.Do(func() { close(release) })
	c.close()
	bg.wait()
}

// A caller that gives up is neither "directory down" nor "invalid
// credentials".
func TestLDAPCancelledIsNotAVerdict(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})
	l := newLDAP(t, func(l *LDAP) { l.URL = "ldaps://" + ln.Addr().String() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Authenticate(ctx, "alice", slapd.Users["alice"])
		errc <- err
	}()
	conn := <-accepted // the request is in flight: the client goes away
	cancel()
	err = <-errc
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("cancelled sign-in: %v, want context.Canceled only", err)
	}
	if h := l.Health(); h != nil {
		t.Errorf("a cancelled request marked the directory down: %v", h)
	}
	_ = conn.Close()
	_ = ln.Close()
	wg.Wait()
	for len(accepted) > 0 {
		_ = (<-accepted).Close()
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// The reason names what came back, whichever of the answer and the
// deadline came first; "no answer" only when nothing did.
func TestFailureReason(t *testing.T) {
	unknownCA := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Err: syscall.ECONNREFUSED}}
	cases := []struct {
		name    string
		err     error
		expired bool
		want    string
	}{
		{"certificate, before the deadline", unknownCA, false, "TLS failed: x509: certificate signed by unknown authority"},
		{"certificate, deadline passed meanwhile", unknownCA, true, "TLS failed: x509: certificate signed by unknown authority"},
		{"certificate via go-ldap StartTLS, deadline passed", goldap.NewError(goldap.ErrorNetwork,
			fmt.Errorf("TLS handshake failed (%v)", unknownCA)), true, "TLS failed: x509: certificate signed by unknown authority"},
		{"certificate via net/http, deadline passed", fmt.Errorf(`Get "https://idp/.well-known": %w`, unknownCA), true,
			"TLS failed: x509: certificate signed by unknown authority"},
		{"TLS alert from the peer", fmt.Errorf("remote error: %w", tls.AlertError(40)), true, "TLS failed: tls: handshake failure"},
		{"refused, deadline passed", refused, true, "cannot connect to dir:636"},
		{"dial timed out", &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, false, "no answer within 2s"},
		{"read timed out", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, false, "no answer within 2s"},
		{"go-ldap request timer", goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection timed out")), false, "no answer within 2s"},
		{"go-ldap StartTLS handshake timed out", goldap.NewError(goldap.ErrorNetwork,
			errors.New("TLS handshake failed (read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout)")), false, "no answer within 2s"},
		{"net/http handshake timeout", errors.New("net/http: TLS handshake timeout"), false, "no answer within 2s"},
		{"context deadline", context.DeadlineExceeded, false, "no answer within 2s"},
		{"connection closed, deadline passed", io.EOF, true, "no answer within 2s"},
		{"connection closed", io.EOF, false, ""},
	}
	for _, c := range cases {
		if got := failureReason(c.err, c.expired, 2*time.Second, "dir:636"); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
