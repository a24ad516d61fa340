package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// ldapConn is one connection to the directory. Every operation on it runs
// under one deadline, the request's (see runOp), so a directory that accepts
// and never answers, or hangs half-way, cannot hold a caller past it.
type ldapConn struct {
	l      *goldap.Conn
	raw    net.Conn
	bg     *background
	fresh  bool // dialled for the current request (not taken from the pool)
	usedAt time.Time
	// abandoned: an operation was left running at its deadline; the
	// connection is broken and only fit for closing. opDone is closed when
	// that operation has returned.
	abandoned bool
	opDone    chan struct{}
}

// errAbandoned: the connection was given up at a deadline.
var errAbandoned = errors.New("ldap: connection given up at a deadline")

// runOp runs op on c and returns when op does or when ctx ends, whichever is
// first. op runs on its own goroutine so that nothing inside the LDAP
// library stands between the deadline and the caller: not its reader and
// dispatcher goroutines noticing the socket deadline one after the other,
// not its own request timer, not the teardown of the broken connection.
// At the deadline the caller gets control back at once; the socket's
// deadline is forced into the past so op fails promptly in the
// background, and the connection is marked abandoned (the pool closes it
// off the caller's path). An answer that arrives in the same instant as
// the deadline wins: the deadline only decides when nothing came back.
func runOp[T any](ctx context.Context, c *ldapConn, op func() (T, error)) (T, error) {
	var zero T
	if c.abandoned {
		return zero, errAbandoned
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return zero, errors.New("ldap: operation without a deadline")
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	left := time.Until(dl)
	if left <= 0 {
		return zero, context.DeadlineExceeded
	}
	if err := c.raw.SetDeadline(dl); err != nil {
		return zero, err
	}
	// the library's own request timer and the wait in its Close never
	// outlast the request's deadline either
	c.l.SetTimeout(left)
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	c.opDone = make(chan struct{})
	opDone := c.opDone
	c.bg.run(func() {
		defer close(opDone)
		v, err := op()
		done <- result{v, err}
	})
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		select {
		case r = <-done:
		default:
			c.abandoned = true
			_ = c.raw.SetDeadline(time.Unix(1, 0))
			return zero, ctx.Err()
		}
	}
	if r.err == nil {
		r.err = c.raw.SetDeadline(time.Time{})
	}
	return r.v, r.err
}

// do is runOp for an operation without a result.
func (c *ldapConn) do(ctx context.Context, op func() error) error {
	_, err := runOp(ctx, c, func() (struct{}, error) { return struct{}{}, op() })
	return err
}

// close tears the connection down off the caller's path: the socket is
// closed first, so every blocked read or write inside the library returns
// at once and no TLS close_notify can wait on a hung peer; then, in the
// background, once an abandoned operation has returned (the library's
// connection is not closed under its feet), the library's goroutines are
// stopped.
func (c *ldapConn) close() {
	_ = c.raw.Close()
	opDone := c.opDone
	c.bg.run(func() {
		if opDone != nil {
			<-opDone
		}
		_ = c.l.Close()
	})
}

// errStartTLS: the directory answered the StartTLS request with a refusal;
// the connection is closed, never used in plain text.
var errStartTLS = errors.New("StartTLS refused")

// dialLDAP connects to hostport, over TLS at once (ldaps) or after
// StartTLS (ldap), all under ctx's deadline. There is no plain-text mode.
func dialLDAP(ctx context.Context, hostport string, ldaps bool, tlsConf *tls.Config, bg *background) (*ldapConn, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, errors.New("ldap: dial without a deadline")
	}
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	if err := raw.SetDeadline(dl); err != nil {
		_ = raw.Close()
		return nil, err
	}
	var nc net.Conn = raw
	if ldaps {
		tc := tls.Client(raw, tlsConf)
		if err := handshake(ctx, raw, tc); err != nil {
			_ = raw.Close()
			return nil, err
		}
		nc = tc
	}
	l := goldap.NewConn(nc, ldaps)
	l.Start()
	c := &ldapConn{l: l, raw: raw, bg: bg, fresh: true}
	if !ldaps {
		err := c.do(ctx, func() error { return l.StartTLS(tlsConf) })
		if err != nil {
			c.close()
			if isLDAPResult(err) {
				// the directory answered with a result code: a refusal
				return nil, fmt.Errorf("%w: %w", errStartTLS, err)
			}
			return nil, err // no answer in time, or the TLS handshake failed
		}
		if _, ok := l.TLSConnectionState(); !ok {
			c.close()
			return nil, errors.New("StartTLS did not encrypt the connection")
		}
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// handshake runs the TLS handshake under the socket's deadline rather than
// tls.Conn.HandshakeContext: a handshake that ends in a certificate error
// returns that error even when the deadline passed while the certificate
// was being verified (CPU work no deadline interrupts), where
// HandshakeContext would report the context's error instead. A caller that
// cancels breaks the socket at once.
func handshake(ctx context.Context, raw net.Conn, tc *tls.Conn) error {
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return tc.Handshake()
}

// background runs the work that must not hold a caller (operations left
// running at their deadline, teardown of broken connections) and lets
// Close wait for it. Each task is bounded: its socket is closed or past
// its deadline.
type background struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (b *background) run(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		go f() // a request still in flight while Close ran: bounded, not waited for
		return
	}
	b.wg.Go(f)
}

// wait waits for the tasks started before it.
func (b *background) wait() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// ldapPool keeps up to size open connections of one kind (bound as the
// service account, or used for users' binds) and hands them out one
// request at a time.
type ldapPool struct {
	dial        func(ctx context.Context) (*ldapConn, error)
	idleTimeout time.Duration
	slots       chan struct{} // one per open connection
	idle        chan *ldapConn
	mu          sync.Mutex
	closed      bool
}

func newLDAPPool(size int, idleTimeout time.Duration, dial func(context.Context) (*ldapConn, error)) *ldapPool {
	return &ldapPool{
		dial:        dial,
		idleTimeout: idleTimeout,
		slots:       make(chan struct{}, size),
		idle:        make(chan *ldapConn, size),
	}
}

var errPoolClosed = errors.New("ldap: closed")

// get returns an idle connection, or dials one when fewer than size are
// open, or waits for one until ctx ends.
func (p *ldapPool) get(ctx context.Context) (*ldapConn, error) {
	for {
		if p.isClosed() {
			return nil, errPoolClosed
		}
		var c *ldapConn
		select {
		case c = <-p.idle: // an idle connection first
		default:
			select {
			case c = <-p.idle:
			case p.slots <- struct{}{}:
				c, err := p.dial(ctx)
				if err != nil {
					<-p.slots
					return nil, err
				}
				return c, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if c.l.IsClosing() || time.Since(c.usedAt) > p.idleTimeout {
			p.discard(c)
			continue
		}
		c.fresh = false
		return c, nil
	}
}

// put returns a connection; a broken one (ok = false) is closed.
func (p *ldapPool) put(c *ldapConn, ok bool) {
	if !ok || c.abandoned || p.isClosed() || c.l.IsClosing() {
		p.discard(c)
		return
	}
	c.usedAt = time.Now()
	p.idle <- c // never blocks: at most size connections exist
}

func (p *ldapPool) discard(c *ldapConn) {
	c.close()
	<-p.slots
}

func (p *ldapPool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close closes the idle connections; busy ones are closed when put back.
func (p *ldapPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			p.discard(c)
		default:
			return
		}
	}
}
