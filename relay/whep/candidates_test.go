package whep

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/internal/icepolicy"
	"cordon/internal/testtool"
)

// pionChecksPerPair is how many binding requests pion's ICE agent sends
// to one candidate pair before it gives the pair up (ice/v4
// defaultMaxBindingRequests = 7, and it sends while the count is <= 7).
const pionChecksPerPair = 8

// The attack of issue 10: one ~6 KB PATCH with 100 candidates on ports
// the viewer chose made cordon send 800 STUN packets (8 checks to each).
// Now at most 16 remote candidates per session are looked at, of which
// only those the policy allows reach pion, and nothing at all is sent to
// an address the policy refuses.
func TestPatchCandidateFlood(t *testing.T) {
	allowedHost, refusedHost := "127.0.0.3", "127.0.0.4"
	e := newEnv(t, func(s *Server) {
		s.ICEPolicy = &icepolicy.Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix(allowedHost + "/32")}}
		s.ICEConnectTimeout = 4 * time.Second // pion gives every pair up after 8 checks, 1.6 s
	})
	startCamera(t, e.hub, "cam1")
	allowed, refused := testtool.NewUDPSink(t, allowedHost, 50), testtool.NewUDPSink(t, refusedHost, 50)

	// An offer whose own candidates are gone: the session never connects,
	// and its checks go only where the PATCH says.
	offer := testtool.StripCandidates(browserOffer(t, true))
	r := post(t, e, "cam1", "alice", "application/sdp", offer)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", r.StatusCode)
	}
	loc := r.Header.Get("Location")
	var frag strings.Builder
	fmt.Fprintf(&frag, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n", ufragOf(offer), strings.Repeat("p", 24))
	for i := range 50 { // alternate: allowed, refused, allowed, ...
		fmt.Fprintf(&frag, "a=candidate:%d 1 udp 2130706431 %s %d typ host\r\n", 2*i, allowedHost, allowed.Port(i))
		fmt.Fprintf(&frag, "a=candidate:%d 1 udp 2130706431 %s %d typ host\r\n", 2*i+1, refusedHost, refused.Port(i))
	}
	frag.WriteString("a=end-of-candidates\r\n")
	if frag.Len() < 5000 {
		t.Fatalf("the PATCH is %d bytes, want the issue's ~6 KB", frag.Len())
	}
	if r := do(t, e, http.MethodPatch, loc, "alice", "application/trickle-ice-sdpfrag", frag.String()); r.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: %d", r.StatusCode)
	}
	// The session never connects: it ends at ICEConnectTimeout, after
	// pion gave every pair up.
	testtool.WaitFor(t, 20*time.Second, "the unconnected session to end", func() bool { return e.srv.Sessions.Count("") == 0 })

	n, ports := allowed.Total()
	nRefused, portsRefused := refused.Total()
	t.Logf("100 candidates in one %d-byte PATCH: %d STUN packets to %d allowed ports, %d to refused addresses (before: 800 to 100 ports)", frag.Len(), n, ports, nRefused)
	if nRefused != 0 || portsRefused != 0 {
		t.Errorf("%d datagrams reached %d ports on an address the policy refuses", nRefused, portsRefused)
	}
	// of the first 16 candidates, 8 are allowed
	if ports == 0 || ports > icepolicy.DefaultMaxRemoteCandidates/2 {
		t.Errorf("checks reached %d allowed ports, want 1..%d", ports, icepolicy.DefaultMaxRemoteCandidates/2)
	}
	if n > icepolicy.DefaultMaxRemoteCandidates*pionChecksPerPair {
		t.Errorf("%d STUN packets sent, want at most %d", n, icepolicy.DefaultMaxRemoteCandidates*pionChecksPerPair)
	}
	for reason, want := range map[string]float64{candTooMany: 84, candAddress: 8} {
		if got := testutil.ToFloat64(e.srv.Metrics.candidates.WithLabelValues(reason)); got != want {
			t.Errorf("candidates refused for %s: %v, want %v", reason, got, want)
		}
	}
}

// The offer's candidates pass the same policy: host names (mDNS) and
// refused addresses are removed before pion sees the offer, and they
// count towards the session's bound.
func TestOfferCandidatesFiltered(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.ICEPolicy = &icepolicy.Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxRemote: 3}
	})
	offer := "v=0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
		"a=candidate:1 1 udp 1 3f1c2a0e-5d7b-4c39-8c1e-5e0b6f1d2a33.local 50000 typ host\r\n" +
		"a=candidate:2 1 udp 1 127.0.0.5 50001 typ host\r\n" +
		"a=candidate:3 1 udp 1 127.0.0.1 50002 typ host\r\n" +
		"a=candidate:4 1 udp 1 127.0.0.1 50003 typ host\r\n" +
		"a=candidate:5 1 udp 1 bad\r\n" +
		"a=mid:0\r\n"
	got, n := e.srv.filterOffer(offer)
	if n != 5 {
		t.Errorf("counted %d candidates, want 5", n)
	}
	want := "v=0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:3 1 udp 1 127.0.0.1 50002 typ host\r\na=mid:0\r\n"
	if got != want {
		t.Errorf("filtered offer:\n%q\nwant\n%q", got, want)
	}
	for reason, want := range map[string]float64{candHostname: 1, candAddress: 1, candTooMany: 1, candMalformed: 1} {
		if got := testutil.ToFloat64(e.srv.Metrics.candidates.WithLabelValues(reason)); got != want {
			t.Errorf("refused for %s: %v, want %v", reason, got, want)
		}
	}
	if _, err := candidateAddr("candidate:1 1 udp 1 10.0.0.1 99999 typ host"); err == nil {
		t.Error("a port out of range parsed")
	}
}

// The UDP socket drops datagrams from addresses the policy refuses (pion
// never sees them, so never learns a peer-reflexive candidate there) and
// sends nothing to them.
func TestSocketRefusesPolicyAddresses(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.ICEPolicy = &icepolicy.Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	})
	c, err := net.ListenPacket("udp4", "127.0.0.6:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := testutil.ToFloat64(e.srv.Metrics.dropped)
	// a STUN binding request header (type 0x0001, length 0, magic cookie)
	stun := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if _, err := c.WriteTo(stun, e.srv.UDPAddr()); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, 5*time.Second, "the datagram to be dropped", func() bool { return testutil.ToFloat64(e.srv.Metrics.dropped) > before })
	conn := &policyConn{UDPConn: e.srv.udpConn.(*net.UDPConn), srv: e.srv}
	if _, err := conn.WriteTo([]byte("x"), c.LocalAddr()); err == nil {
		t.Error("sent to a refused address")
	}
	// a policy change applies at once (reload)
	e.srv.SetICEPolicy(&icepolicy.Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}})
	if _, err := conn.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Errorf("after the policy allowed it: %v", err)
	}
}

// The socket filter's decision for an address already seen costs no
// allocation (it runs for every media packet) and agrees with the policy.
func TestPolicyCacheHitIsFree(t *testing.T) {
	p := &icePolicy{f: &icepolicy.Filter{Viewers: []netip.Prefix{netip.MustParsePrefix("10.50.0.0/16")}}}
	in, out := netip.MustParseAddr("10.50.1.2"), netip.MustParseAddr("10.60.1.2")
	for range 3 {
		if !p.allowed(in) || p.allowed(out) || !p.allowed(netip.MustParseAddr("::ffff:10.50.1.2")) {
			t.Fatal("cached decisions differ from the policy")
		}
	}
	if n := testing.AllocsPerRun(1000, func() { p.allowed(in) }); n != 0 {
		t.Errorf("a cache hit allocates %v times", n)
	}
	// many addresses: every decision stays right through evictions
	for i := range 5000 {
		a := netip.AddrFrom4([4]byte{10, byte(40 + i%30), byte(i >> 8), byte(i)})
		if p.allowed(a) != (p.f.Allowed(a) == nil) {
			t.Fatalf("%s: cached decision differs", a)
		}
	}
}
