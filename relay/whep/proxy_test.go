package whep

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cordon/internal/testtool"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// udpProxy relays one client's UDP to the server and can be cut, as when a
// console loses the network without a DELETE.
type udpProxy struct {
	front, back *net.UDPConn
	client      atomic.Pointer[net.UDPAddr]
	cut         atomic.Bool
	wg          sync.WaitGroup
}

func newUDPProxy(t *testing.T, server *net.UDPAddr) *udpProxy {
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, server)
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{front: front, back: back}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, addr, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.client.Store(addr)
			if !p.cut.Load() {
				_, _ = back.Write(buf[:n])
			}
		}
	}()
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			if a := p.client.Load(); a != nil && !p.cut.Load() {
				_, _ = front.WriteToUDP(buf[:n], a)
			}
		}
	}()
	t.Cleanup(func() { _ = front.Close(); _ = back.Close(); p.wg.Wait() })
	return p
}

func (p *udpProxy) port() int { return p.front.LocalAddr().(*net.UDPAddr).Port }

// TestVanishedViewer: a viewer whose network disappears (no DELETE, no DTLS
// close) is ended after ICE reports it disconnected plus DisconnectTimeout,
// and the other viewer never notices.
func TestVanishedViewer(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.TCPListen = "" })
	startCamera(t, e.hub, "cam1")
	srvPort := strconv.Itoa(e.srv.UDPAddr().(*net.UDPAddr).Port)
	proxy := newUDPProxy(t, e.srv.UDPAddr().(*net.UDPAddr))
	viaProxy := func(answer string) string {
		return strings.ReplaceAll(answer, " 127.0.0.1 "+srvPort+" typ host", " 127.0.0.1 "+strconv.Itoa(proxy.port())+" typ host")
	}
	// without its candidates in the offer the server only learns the client
	// through the proxy, so every path goes through it
	lost, _ := newClient(t, e, "cam1", clientOpts{rewriteAnswer: viaProxy, rewriteOffer: testtool.StripCandidates})
	other, _ := newClient(t, e, "cam1", clientOpts{})
	if lost == nil || other == nil {
		t.Fatal("POST failed")
	}
	checkSPSPPSIDR(t, lost.nextAU(t, 10*time.Second))
	checkSPSPPSIDR(t, other.nextAU(t, 10*time.Second))

	proxy.cut.Store(true)
	t0 := time.Now()
	testtool.WaitFor(t, 20*time.Second, "the vanished viewer's session to end", func() bool { return e.srv.Sessions.Count("") == 1 })
	t.Logf("vanished viewer ended %v after its network was cut", time.Since(t0).Round(100*time.Millisecond))
	if v := testutil.ToFloat64(e.srv.Metrics.errors.WithLabelValues("disconnected")); v != 1 {
		t.Errorf("disconnected sessions: %v", v)
	}
	// the other viewer is still live
	for len(other.aus) > 0 {
		<-other.aus
	}
	other.nextAU(t, time.Second)
}
