package whep

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"cordon/internal/icepolicy"
)

// ICE hygiene: a viewer chooses the addresses and ports cordon sends STUN
// checks (and then media) to. Every remote candidate, in the offer and in
// each trickle PATCH, passes the ICE policy (internal/icepolicy) before
// pion sees it: at most Filter.MaxRemote per session (refused ones
// counted), IP literals only (mDNS ".local" and other host names are
// refused: cordon resolves nothing a viewer names), and only addresses the
// policy allows. The one UDP socket also drops datagrams from addresses
// the policy refuses, so pion never learns one as a peer-reflexive
// candidate and never answers or checks it, and it refuses to send to
// them: nothing leaves for a refused address whatever the ICE agent does.
// ICE-TCP connections from refused addresses are closed on accept.

// Reasons a remote candidate is refused (metric label).
const (
	candTooMany   = "too_many"
	candAddress   = "address"
	candHostname  = "hostname"
	candMalformed = "malformed"
)

// errHostnameCandidate refuses a candidate named by host name (mDNS).
var errHostnameCandidate = errors.New("host-name (mDNS) candidates are not used: cordon resolves no name a viewer gives")

// icePolicy is one policy with its decision cache: the socket filter asks
// per datagram, on the media path, so a hit is one atomic load and no
// allocation; a miss (a new address, or a flood of spoofed ones) costs one
// policy check and one small allocation, never more.
type icePolicy struct {
	f     *icepolicy.Filter
	slots [policyCacheSlots]atomic.Pointer[policyEntry]
}

// policyCacheSlots: a direct-mapped cache of this many addresses.
const policyCacheSlots = 1024

type policyEntry struct {
	addr netip.Addr
	ok   bool
}

// SetICEPolicy replaces the remote-candidate policy (at start and on a
// reload: viewer networks, camera hosts, the gateway's addresses). nil is
// the zero Filter: no loopback, link-local or multicast, 16 candidates.
// Call it after Initialize (before, set ICEPolicy). Sessions keep the
// candidates already admitted.
func (s *Server) SetICEPolicy(f *icepolicy.Filter) {
	if f == nil {
		f = &icepolicy.Filter{}
	}
	s.ice.Store(&icePolicy{f: f})
}

func (s *Server) icePolicy() *icePolicy { return s.ice.Load() }

// allowed reports whether a is an address ICE may talk to (cached).
func (p *icePolicy) allowed(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	b := a.As16()
	h := (binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])) * 0xff51afd7ed558ccd
	slot := &p.slots[h>>54] // the top 10 bits: 1024 slots
	if e := slot.Load(); e != nil && e.addr == a {
		return e.ok
	}
	ok := p.f.Allowed(a) == nil
	slot.Store(&policyEntry{addr: a, ok: ok})
	return ok
}

// candidateAddr returns the connection address of an SDP candidate
// ("candidate:<foundation> <component> <transport> <priority> <address>
// <port> typ <type> ..."; the "a=" prefix optional).
func candidateAddr(c string) (netip.Addr, error) {
	c = strings.TrimPrefix(strings.TrimSpace(c), "a=")
	f := strings.Fields(strings.TrimPrefix(c, "candidate:"))
	if len(f) < 8 || f[6] != "typ" {
		return netip.Addr{}, errors.New("malformed candidate")
	}
	if p, err := strconv.Atoi(f[5]); err != nil || p < 0 || p > 65535 {
		return netip.Addr{}, errors.New("malformed candidate port")
	}
	a, err := netip.ParseAddr(f[4])
	if err != nil {
		return netip.Addr{}, errHostnameCandidate
	}
	return a, nil
}

// admitCandidate judges the n-th remote candidate of a session (n counts
// from 1, refused ones included) and returns the metric reason of a
// refusal ("" = admitted).
func (s *Server) admitCandidate(n int, cand string) (string, error) {
	a, err := candidateAddr(cand)
	switch {
	case errors.Is(err, errHostnameCandidate):
		return candHostname, err
	case err != nil:
		return candMalformed, err
	}
	if err := s.icePolicy().f.Admit(n, a); err != nil {
		if errors.Is(err, icepolicy.ErrTooManyCandidates) {
			return candTooMany, err
		}
		return candAddress, err
	}
	return "", nil
}

// filterOffer removes the offer's candidates the policy refuses. It
// returns the offer pion may see and how many candidates it carried
// (the session's count starts there).
func (s *Server) filterOffer(sdp string) (string, int) {
	if !strings.Contains(sdp, "a=candidate:") {
		return sdp, 0
	}
	lines := strings.SplitAfter(sdp, "\n")
	out := lines[:0]
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "a=candidate:") {
			n++
			if reason, err := s.admitCandidate(n, l); err != nil {
				s.Metrics.candidates.WithLabelValues(reason).Inc()
				s.Log.Debug("remote ICE candidate refused", "reason", reason, "err", err)
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, ""), n
}

// policyConn is the one UDP socket as pion's mux sees it: datagrams from
// addresses the policy refuses are dropped, and nothing is sent to them.
// It keeps pion's allocation-free AddrPort path.
type policyConn struct {
	*net.UDPConn
	srv *Server
}

var errRefusedPeer = errors.New("whep: the ICE policy refuses this address")

func (c *policyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, ap, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		if c.srv.icePolicy().allowed(ap.Addr()) {
			return n, net.UDPAddrFromAddrPort(ap), nil
		}
		c.srv.Metrics.dropped.Inc()
	}
}

func (c *policyConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, ap, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || c.srv.icePolicy().allowed(ap.Addr()) {
			return n, ap, err
		}
		c.srv.Metrics.dropped.Inc()
	}
}

func (c *policyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errRefusedPeer
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

func (c *policyConn) WriteToAddrPort(b []byte, ap netip.AddrPort) (int, error) {
	if !c.srv.icePolicy().allowed(ap.Addr()) {
		return 0, errRefusedPeer
	}
	return c.UDPConn.WriteToUDPAddrPort(b, ap)
}

// policyListener closes ICE-TCP connections from refused addresses.
type policyListener struct {
	net.Listener
	srv *Server
}

func (l policyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ap, perr := netip.ParseAddrPort(c.RemoteAddr().String()); perr == nil && l.srv.icePolicy().allowed(ap.Addr()) {
			return c, nil
		}
		l.srv.Metrics.dropped.Inc()
		_ = c.Close()
	}
}
