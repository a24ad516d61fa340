// Package connlimit caps the connections a TCP listener accepts, per
// remote address and in total, and closes connections that stay silent
// (no first bytes within HandshakeTimeout) or idle (no bytes either way
// for IdleTimeout), so that one host cannot exhaust the process's file
// descriptors and starve logins, cameras or other viewers. Every
// operator-facing TCP door (HTTP, RTSP, ICE-TCP) wraps its listener:
//
//	ln := &connlimit.Listener{Listener: inner, Protocol: "http", PerAddress: 64, Total: 2048,
//		HandshakeTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, Metrics: m,
//		OnReject: connlimit.HTTPReject}
//	if err := ln.Initialize(); err != nil { ... }
//	srv.Serve(ln)
//
// A connection over a cap is accepted and closed at once (optionally after
// OnReject writes a short answer); Accept never returns an error for it,
// so servers keep serving. It lives in internal/ because three doors in
// different packages use it and it belongs to none of them.
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"cordon/internal/addrlimit"
)

// Reject reasons (metric label).
const (
	ReasonTotal      = "total"
	ReasonPerAddress = "per_address"
)

// Listener wraps a net.Listener with caps and timeouts. Set the fields,
// then Initialize. Safe for concurrent use.
type Listener struct {
	net.Listener
	// Protocol names the door for metrics and logs ("http", "rtsp",
	// "ice_tcp").
	Protocol string
	// PerAddress caps open connections from one address (IPv6: one /64);
	// Total caps all open connections. 0 = no cap.
	PerAddress int
	Total      int
	// PerAddressExempt, if set, lifts the per-address cap (never the
	// total) for the addresses it accepts (an IP): a cluster's nodes,
	// which hold one RTSP connection per camera they relay from this one.
	PerAddressExempt func(ip netip.Addr) bool
	// HandshakeTimeout closes a connection that has sent no byte within
	// it (0 = none): idle sockets opened only to hold a descriptor.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no byte read or written for
	// this long (0 = none). Protocols with their own keepalives (RTSP,
	// ICE consent) need it above their keepalive interval.
	IdleTimeout time.Duration
	// OnReject, if set, may write a short answer to a connection refused
	// over a cap before it is closed (a write deadline of 1 s is set).
	OnReject func(c net.Conn, reason string)
	// Logger (nil = slog.Default()) and Metrics (nil = none).
	Logger  *slog.Logger
	Metrics *Metrics

	mu     sync.Mutex
	open   int
	byAddr map[string]int
	ready  bool
}

// Initialize checks the configuration.
func (l *Listener) Initialize() error {
	switch {
	case l.Listener == nil:
		return errors.New("connlimit: no listener")
	case l.PerAddress < 0 || l.Total < 0 || l.HandshakeTimeout < 0 || l.IdleTimeout < 0:
		return errors.New("connlimit: caps and timeouts must not be negative")
	case l.Protocol == "":
		return errors.New("connlimit: protocol is empty")
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	l.byAddr = map[string]int{}
	l.ready = true
	return nil
}

// Accept returns the next connection within the caps; connections over a
// cap are refused (closed) without returning.
func (l *Listener) Accept() (net.Conn, error) {
	if !l.ready {
		return nil, errors.New("connlimit: Initialize was not called")
	}
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		if reason := l.admit(key, l.exempt(c.RemoteAddr())); reason != "" {
			l.reject(c, reason)
			continue
		}
		return l.wrap(c, key), nil
	}
}

// exempt asks PerAddressExempt about a remote address.
func (l *Listener) exempt(a net.Addr) bool {
	if l.PerAddressExempt == nil || a == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && l.PerAddressExempt(ap.Addr().Unmap().WithZone(""))
}

// admit counts a connection from key, or says which cap refuses it.
func (l *Listener) admit(key string, exempt bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.Total > 0 && l.open >= l.Total:
		return ReasonTotal
	case l.PerAddress > 0 && !exempt && l.byAddr[key] >= l.PerAddress:
		return ReasonPerAddress
	}
	l.open++
	l.byAddr[key]++
	l.Metrics.opened(l.Protocol)
	return ""
}

func (l *Listener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
	l.Metrics.closed(l.Protocol)
}

func (l *Listener) reject(c net.Conn, reason string) {
	l.Metrics.rejected(l.Protocol, reason)
	if l.OnReject != nil {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		l.OnReject(c, reason)
	}
	_ = c.Close()
}

// Open returns the connections open now, in total and from remote (an
// address as net.Addr.String() gives it, or an IP).
func (l *Listener) Open(remote string) (total, fromAddr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.byAddr[addrlimit.Key(remote)]
}

// HTTPReject answers an HTTP client refused over a cap with 503 and
// Retry-After, so a browser shows something rather than a reset.
func HTTPReject(c net.Conn, _ string) {
	_, _ = c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 53\r\n\r\n{\"error\": \"too many connections; try again shortly\"}\n"))
}

// RTSPReject answers an RTSP client refused over a cap with 503.
func RTSPReject(c net.Conn, _ string) {
	_, _ = c.Write([]byte("RTSP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nCSeq: 0\r\n\r\n"))
}

// conn is an admitted connection: it gives its place back once when
// closed, and is closed by the timeouts.
type conn struct {
	net.Conn
	l        *Listener
	key      string
	once     sync.Once
	last     atomic.Int64 // unix nanos of the last byte read or written
	gotFirst atomic.Bool
	timer    *time.Timer
	tmu      sync.Mutex
	done     bool // no more timeout checks
}

func (l *Listener) wrap(c net.Conn, key string) net.Conn {
	w := &conn{Conn: c, l: l, key: key}
	w.last.Store(time.Now().UnixNano())
	if d := l.firstDeadline(); d > 0 {
		w.tmu.Lock()
		w.timer = time.AfterFunc(d, w.check)
		w.tmu.Unlock()
	}
	return w
}

// firstDeadline is when the first check is due.
func (l *Listener) firstDeadline() time.Duration {
	switch {
	case l.HandshakeTimeout > 0 && (l.IdleTimeout == 0 || l.HandshakeTimeout < l.IdleTimeout):
		return l.HandshakeTimeout
	default:
		return l.IdleTimeout
	}
}

// check closes the connection if it is silent or idle, else re-arms.
func (w *conn) check() {
	l := w.l
	now := time.Now()
	if !w.gotFirst.Load() && l.HandshakeTimeout > 0 {
		w.expire("handshake")
		return
	}
	if l.IdleTimeout == 0 {
		return
	}
	idle := now.Sub(time.Unix(0, w.last.Load()))
	if idle >= l.IdleTimeout {
		w.expire("idle")
		return
	}
	w.tmu.Lock()
	if !w.done {
		w.timer = time.AfterFunc(l.IdleTimeout-idle, w.check)
	}
	w.tmu.Unlock()
}

func (w *conn) expire(why string) {
	w.l.Metrics.timedOut(w.l.Protocol, why)
	w.l.Logger.Debug("closing a silent connection", "protocol", w.l.Protocol, "remote", w.RemoteAddr().String(), "why", why)
	_ = w.Close()
}

func (w *conn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
		if !w.gotFirst.Swap(true) && w.l.HandshakeTimeout > 0 && w.l.IdleTimeout == 0 {
			w.stopTimer()
		}
	}
	return n, err
}

func (w *conn) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (w *conn) stopTimer() {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// Close closes the connection and gives its place back (once).
func (w *conn) Close() error {
	err := w.Conn.Close()
	w.once.Do(func() {
		w.stopTimer()
		w.l.release(w.key)
	})
	return err
}

// Unwrap returns the underlying connection (e.g. for *net.TCPConn
// options). Closing it directly bypasses the accounting: close the
// wrapper.
func (w *conn) Unwrap() net.Conn { return w.Conn }

func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	return addrlimit.Key(a.String())
}
