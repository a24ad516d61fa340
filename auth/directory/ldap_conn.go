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
// under a deadline on the socket itself, so a directory that accepts and
// never answers (or a TLS handshake that stalls) cannot hold a caller past
// its deadline.
type ldapConn struct {
	l      *goldap.Conn
	raw    net.Conn
	fresh  bool // dialled for the current request (not taken from the pool)
	usedAt time.Time
}

// do runs op with the socket deadline set to the context's deadline; a
// cancelled context breaks the connection at once.
func (c *ldapConn) do(ctx context.Context, op func() error) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return errors.New("ldap: operation without a deadline")
	}
	if err := c.raw.SetDeadline(dl); err != nil {
		return err
	}
	c.l.SetTimeout(time.Until(dl))
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	err := op()
	if !stop() {
		return ctx.Err()
	}
	if err != nil && !time.Now().Before(dl) {
		// the socket deadline fired a moment before the context's timer
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	if err == nil {
		err = c.raw.SetDeadline(time.Time{})
	}
	return err
}

func (c *ldapConn) close() {
	// a past deadline makes the unbind message fail fast on a hung server
	_ = c.raw.SetDeadline(time.Unix(1, 0))
	_ = c.l.Close()
}

// errStartTLS: the server refused StartTLS or its handshake failed; the
// connection is closed, never used in plain text.
var errStartTLS = errors.New("StartTLS failed")

// dialLDAP connects to hostport, over TLS at once (ldaps) or after
// StartTLS (ldap). There is no plain-text mode.
func dialLDAP(ctx context.Context, hostport string, ldaps bool, tlsConf *tls.Config) (*ldapConn, error) {
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	if err := raw.SetDeadline(dl); err != nil {
		_ = raw.Close()
		return nil, err
	}
	var nc net.Conn = raw
	if ldaps {
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		nc = tc
	}
	l := goldap.NewConn(nc, ldaps)
	l.Start()
	c := &ldapConn{l: l, raw: raw, fresh: true}
	if !ldaps {
		err := c.do(ctx, func() error { return l.StartTLS(tlsConf) })
		if err != nil {
			c.close()
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errStartTLS, err)
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
	if !ok || p.isClosed() || c.l.IsClosing() {
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
