package whep

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// udpReadBuffer is the WHEP UDP socket's receive buffer (SO_RCVBUF).
const udpReadBuffer = 4 << 20

// dtlsRetransmit is the first DTLS retransmission timeout (it doubles).
const dtlsRetransmit = 100 * time.Millisecond

// listen opens the one UDP socket (and the ICE-TCP listener) and builds the
// setting engine every PeerConnection shares.
func (s *Server) listen() error {
	pionLog := pionLogs{log: s.Log}
	se := webrtc.SettingEngine{LoggerFactory: pionLog}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// ICE-TCP is passive only: cordon never dials a viewer's address
	se.DisableActiveTCP(true)
	se.DisableMediaEngineCopy(true) // one MediaEngine per PeerConnection already
	// pion's ICE timeouts: our own DisconnectTimeout timer ends the session
	// first; "failed" is the backstop.
	se.SetICETimeouts(5*time.Second, s.DisconnectTimeout+5*time.Second, 2*time.Second)
	// A lost DTLS flight waits for the retransmission timer: pion starts it
	// at 1 s (RFC 6347's default), so one datagram dropped at a busy
	// viewer's socket cost a join a whole second (BenchmarkJoinLostHandshake:
	// p50 1004 ms). Browsers start lower on the LANs cordon serves
	// (Chromium derives it from the ICE RTT, 50 ms at least); the timer
	// still doubles on every loss, so a dead peer costs a few small
	// datagrams.
	se.SetDTLSRetransmissionInterval(dtlsRetransmit)

	pc, err := net.ListenPacket("udp", s.UDPListen)
	if err != nil {
		return fmt.Errorf("whep: webrtc.udp_listen %q: %w", s.UDPListen, err)
	}
	// Every session's STUN, DTLS and RTCP arrive on this one socket: a
	// default 208 KB buffer overflows while the reader waits for a core on a
	// busy host, and a lost STUN check or DTLS flight costs a joining
	// viewer a retransmission (hundreds of ms). The kernel caps the size at
	// net.core.rmem_max.
	if err := pc.(*net.UDPConn).SetReadBuffer(udpReadBuffer); err != nil {
		s.Log.Warn("WHEP UDP receive buffer not enlarged", "err", err)
	}
	local := pc.LocalAddr().(*net.UDPAddr)
	ips, err := advertisedIPs(local.IP, s.HostIPs)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("whep: %w", err)
	}
	advert := make([]net.Addr, len(ips))
	loopback := false
	for i, ip := range ips {
		advert[i] = &net.UDPAddr{IP: ip, Port: local.Port}
		loopback = loopback || ip.IsLoopback()
	}
	s.udpConn = pc
	s.udpMux = &advertUDPMux{
		UDPMuxDefault: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: &policyConn{UDPConn: pc.(*net.UDPConn), srv: s}, Logger: pionLog.NewLogger("udpmux")}),
		local:         local,
		advert:        advert,
		sender:        newSender(pc.(*net.UDPConn), s.UDPGSO != "off", s.Log, s.Metrics.send),
	}
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}

	if s.TCPListen != "" {
		tcpLoopback, err := s.listenTCP(&se, ips, pionLog)
		if err != nil {
			s.closeSockets()
			return err
		}
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
		loopback = loopback || tcpLoopback
	}
	se.SetNetworkTypes(networks)
	se.SetIncludeLoopbackCandidate(loopback)
	s.settings = se
	s.Log.Info("WHEP listening", "udp", pc.LocalAddr().String(), "tcp", s.TCPListen, "advertise", fmt.Sprint(ips))
	return nil
}

// listenTCP opens the ICE-TCP listener and restricts the TCP host
// candidates (which pion takes from the interface list) to the advertised
// IPs. It reports whether the listener is on loopback.
func (s *Server) listenTCP(se *webrtc.SettingEngine, ips []net.IP, pionLog pionLogs) (bool, error) {
	ln, err := net.Listen("tcp", s.TCPListen)
	if err != nil {
		return false, fmt.Errorf("whep: webrtc.tcp_listen %q: %w", s.TCPListen, err)
	}
	s.tcpLn = ln
	var wrapped net.Listener = ln
	if s.WrapTCP != nil {
		if wrapped, err = s.WrapTCP(ln); err != nil {
			_ = ln.Close()
			s.tcpLn = nil
			return false, fmt.Errorf("whep: webrtc.tcp_listen: %w", err)
		}
	}
	wrapped = policyListener{Listener: wrapped, srv: s}
	s.tcpMux = webrtc.NewICETCPMux(pionLog.NewLogger("tcpmux"), deadlineListener{Listener: wrapped, timeout: tcpWriteTimeout}, 8)
	se.SetICETCPMux(s.tcpMux)
	// TCP host candidates on the UDP ones' addresses only: pion would
	// otherwise offer one per interface address (each a listener goroutine,
	// a reader and an 8 KB buffer in every session), unreachable ones too
	// when the listener is bound to one address.
	allLocal := !slices.ContainsFunc(ips, func(ip net.IP) bool { return !isLocalIP(ip) })
	switch {
	case allLocal:
		se.SetIPFilter(func(ip net.IP) bool {
			return slices.ContainsFunc(ips, func(h net.IP) bool { return h.Equal(ip) })
		})
	case len(ips) == 1:
		// a 1:1 NAT address: rewrite the TCP host candidates only (UDP ones are ours already)
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: []string{ips[0].String()}, AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode: webrtc.ICEAddressRewriteReplace, Networks: []webrtc.NetworkType{webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6},
		}); err != nil {
			return false, fmt.Errorf("whep: host_ips: %w", err)
		}
	default:
		return false, errors.New("whep: with tcp_listen set, host_ips must be addresses of this host or a single 1:1 NAT address")
	}
	return ln.Addr().(*net.TCPAddr).IP.IsLoopback(), nil
}
