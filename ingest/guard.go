package ingest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// netGuard confines one camera connection to the configured camera. It is
// gortsplib's DialContext, ListenPacket and ResolveIPAddr:
//
//   - TCP is dialled only to the configured host:port (the camera URL's,
//     default port 554/322): whatever a camera answers (a redirect, a
//     Content-Base or control URL naming another host), no connection, and
//     so no credential, goes anywhere else;
//   - UDP (RTCP receiver reports, the client's only UDP sends) goes only to
//     the IP address the TCP connection reached;
//   - no name is ever resolved on a camera's behalf (a Transport "source="
//     host is stripped before gortsplib sees it; the resolver refuses).
//
// It also counts every byte the camera sends, TCP and UDP, into the
// session's bitrate bucket.
type netGuard struct {
	addr   string // canonical host:port of the configured URL
	limits *Limits
	s      *session    // violations go here; nil in unit tests
	tls    *tls.Config // rtsps:// (dialTLS); nil = system roots

	mu   sync.Mutex
	peer net.IP // the camera's IP address, once connected
}

// canonicalAddr is gortsplib's address for a URL: host and port, with the
// scheme's default port (554 for rtsp, 322 for rtsps).
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func (g *netGuard) violate(v *Violation) error {
	if g.s != nil {
		g.s.violate(v)
	}
	return v
}

// dial is gortsplib's DialContext (rtsp://): the guarded TCP connection,
// read through the stream guard.
func (g *netGuard) dial(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := g.dialTCP(ctx, network, address)
	if err != nil || g.s == nil {
		return c, err
	}
	return newStreamGuard(c, c, g.s), nil
}

// dialTLS is gortsplib's DialTLSContext (rtsps://): the same guarded TCP
// connection, TLS over it, and the stream guard over the TLS connection,
// so that the bounds follow the RTSP bytes and never the ciphertext (fed
// TLS records, the tokenizer would cut an honest camera off within a
// second). The certificate is verified as gortsplib does by default: the
// system roots (or tls.RootCAs), the URL's host as the server name.
func (g *netGuard) dialTLS(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := g.dialTCP(ctx, network, address)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{}
	if g.tls != nil {
		cfg = g.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(address)
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS with the camera: %w", err)
	}
	if g.s == nil {
		return tc, nil
	}
	return newStreamGuard(tc, c, g.s), nil
}

// dialTCP connects to the configured address, and nowhere else.
func (g *netGuard) dialTCP(ctx context.Context, network, address string) (net.Conn, error) {
	if address != g.addr || (network != "tcp" && network != "tcp4" && network != "tcp6") {
		return nil, g.violate(&Violation{Reason: ReasonDialRefused,
			Msg: fmt.Sprintf("refused to connect to %s: cordon connects only to the camera's configured address %s", address, g.addr)})
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		g.mu.Lock()
		g.peer = a.IP
		g.mu.Unlock()
	}
	return c, nil
}

func (g *netGuard) peerIP() net.IP {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peer
}

// resolve is gortsplib's ResolveIPAddr: cordon resolves no name a camera
// hands it.
func (g *netGuard) resolve(_, address string) (*net.IPAddr, error) {
	return nil, g.violate(&Violation{Reason: ReasonDialRefused,
		Msg: fmt.Sprintf("refused to resolve %q: cordon resolves no name a camera sends", address)})
}

// listenPacket is gortsplib's ListenPacket.
func (g *netGuard) listenPacket(network, address string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		_ = pc.Close()
		return nil, fmt.Errorf("unexpected packet connection %T", pc)
	}
	return &guardedUDP{UDPConn: uc, g: g}, nil
}

// guardedUDP is a camera UDP socket: it sends only to the camera and counts
// what the camera sends. It keeps *net.UDPConn's other methods (gortsplib
// needs SyscallConn and SetReadBuffer).
type guardedUDP struct {
	*net.UDPConn
	g *netGuard
}

// WriteTo refuses any destination but the camera's address.
func (u *guardedUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	peer := u.g.peerIP()
	if !ok || peer == nil || !ua.IP.Equal(peer) {
		return 0, u.g.violate(&Violation{Reason: ReasonDialRefused,
			Msg: fmt.Sprintf("refused to send UDP to %s: cordon sends only to the camera's address", addr)})
	}
	return u.UDPConn.WriteTo(b, addr)
}

// ReadFrom counts the camera's datagrams against the bitrate bound; others
// (spoofed or stray) are left to gortsplib, which ignores them.
func (u *guardedUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := u.UDPConn.ReadFrom(b)
	if err == nil && u.g.s != nil {
		if ua, ok := addr.(*net.UDPAddr); ok && ua.IP.Equal(u.g.peerIP()) {
			if v := u.g.s.rate.take(n, time.Now()); v != nil {
				u.g.s.violate(v)
			}
		}
	}
	return n, addr, err
}
