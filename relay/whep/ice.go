package whep

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pion/ice/v4"
)

// advertUDPMux is pion's single-socket UDP mux with the host candidates it
// advertises replaced by ours: exactly the configured host IPs (or the
// listen interfaces) on the one UDP port. pion's own IP filters do not apply
// to UDP-mux candidates, hence this wrapper.
type advertUDPMux struct {
	*ice.UDPMuxDefault
	local  *net.UDPAddr
	advert []net.Addr
	sender *sender

	mu    sync.Mutex
	corks map[string]*corkGroup // by local ICE ufrag: the sessions' batching (cork.go)
}

func (m *advertUDPMux) GetListenAddresses() []net.Addr { return m.advert }

func (m *advertUDPMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	if !m.local.IP.IsUnspecified() {
		addr = m.local // a specific socket: advertised IPs may be NAT addresses
	} // else the mux only looks at the address family
	c, err := m.UDPMuxDefault.GetConn(ufrag, addr)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	g := m.corks[ufrag]
	m.mu.Unlock()
	if g == nil {
		return c, nil
	}
	cc, err := newCorkConn(c, g)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return cc, nil
}

// cork returns the batching group of the session whose local ufrag this
// is, creating it (before its PeerConnection gathers).
func (m *advertUDPMux) cork(ufrag string) *corkGroup {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.corks == nil {
		m.corks = map[string]*corkGroup{}
	}
	g := &corkGroup{s: m.sender}
	m.corks[ufrag] = g
	return g
}

// forget drops a session's batching group.
func (m *advertUDPMux) forget(ufrag string) {
	m.mu.Lock()
	delete(m.corks, ufrag)
	m.mu.Unlock()
}

// advertisedIPs returns the IPs to advertise for a socket bound to bound:
// hostIPs when given, the bound IP when specific, otherwise every usable
// interface address (loopback only when there is nothing else).
func advertisedIPs(bound net.IP, hostIPs []string) ([]net.IP, error) {
	if len(hostIPs) > 0 {
		out := make([]net.IP, 0, len(hostIPs))
		for i, h := range hostIPs {
			ip := net.ParseIP(h)
			if ip == nil || ip.IsUnspecified() {
				return nil, fmt.Errorf("host_ips[%d]: %q is not an IP address", i, h)
			}
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			if bound.To4() != nil && !bound.IsUnspecified() && ip.To4() == nil {
				return nil, fmt.Errorf("host_ips[%d]: %s is IPv6 but the UDP socket is IPv4", i, h)
			}
			out = append(out, ip)
		}
		return out, nil
	}
	if !bound.IsUnspecified() {
		return []net.IP{bound}, nil
	}
	v4only := bound.To4() != nil
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing interface addresses: %w", err)
	}
	var out, loop []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipn.IP
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		} else if v4only {
			continue
		}
		switch {
		case ip.IsLoopback():
			loop = append(loop, ip)
		case ip.IsLinkLocalUnicast(), ip.IsMulticast(), ip.IsUnspecified():
		default:
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		out = loop
	}
	if len(out) == 0 {
		return nil, errors.New("no interface address to advertise: set webrtc.host_ips")
	}
	return out, nil
}

func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(addrs, func(a net.Addr) bool {
		ipn, ok := a.(*net.IPNet)
		return ok && ipn.IP.Equal(ip)
	})
}

// tcpWriteTimeout bounds one ICE-TCP write. pion writes RFC 4571 frames
// straight to the net.Conn, which blocks when a viewer stops reading and its
// TCP window is full; without a deadline the session goroutine would hang
// forever. A write that times out may have left half a frame on the wire, so
// the connection is closed (the session then ends through ICE).
const tcpWriteTimeout = 5 * time.Second

type deadlineListener struct {
	net.Listener
	timeout time.Duration
}

func (l deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, timeout: l.timeout}, nil
}

type deadlineConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex // serializes writes so a deadline covers one frame
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		_ = c.Conn.Close()
	}
	return n, err
}
