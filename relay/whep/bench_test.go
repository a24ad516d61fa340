package whep

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
	"unsafe"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Hot-path benchmarks of the WHEP media path (issue 12). The end-to-end
// figures (CPU per viewer-minute, viewers per core, join loss, memory per
// viewer beside MediaMTX) come from `make bench-compare`; these isolate
// the pieces: go test -run '^$' -bench . ./relay/whep/

// benchFrame is a 1080p 4 Mbit/s P-frame as the relay packetizes it: 18
// full packets and a shorter last one (SRTP adds 16 bytes each).
var benchFrame = func() []int {
	s := make([]int, 19)
	for i := range s {
		s[i] = 1128 + 16
	}
	s[18] = 700
	return s
}()

// BenchmarkSendFrame: one viewer's frame to the socket, batched with UDP
// GSO (what a session does) and one send per packet (webrtc.udp_gso:
// off, or a kernel without GSO). Reports system calls per frame.
func BenchmarkSendFrame(b *testing.B) {
	for _, mode := range []struct {
		name string
		gso  bool
	}{{"gso", true}, {"single", false}} {
		b.Run(mode.name, func(b *testing.B) {
			srv, rcv := udpSock(b), udpSock(b)
			m := newSendMetrics()
			s := newSender(srv, mode.gso, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
			if mode.gso && !s.gso.Load() {
				b.Skip("no UDP GSO on this kernel")
			}
			g := &corkGroup{s: s}
			cc, err := newCorkConn(&muxConn{sock: srv}, g)
			if err != nil {
				b.Fatal(err)
			}
			dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
			if _, err := cc.WriteToAddrPort([]byte{22, 0xfe, 0xfd}, dst); err != nil { // DTLS: registers dst
				b.Fatal(err)
			}
			pkts := make([][]byte, len(benchFrame))
			for i, n := range benchFrame {
				pkts[i] = pkt(1, uint32(i), n)
			}
			go drain(rcv) // the receiver keeps up, as a viewer does
			b.SetBytes(int64(len(pkts) * 1144))
			b.ResetTimer()
			for range b.N {
				g.Cork()
				for _, p := range pkts {
					if _, err := cc.WriteToAddrPort(p, dst); err != nil {
						b.Fatal(err)
					}
				}
				g.Flush()
			}
			b.StopTimer()
			calls := testutil.ToFloat64(m.calls.WithLabelValues("gso")) + testutil.ToFloat64(m.calls.WithLabelValues("single"))
			b.ReportMetric(calls/float64(b.N), "syscalls/frame")
		})
	}
}

// drain reads c until it is closed.
func drain(c *net.UDPConn) {
	buf := make([]byte, 64<<10)
	for {
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

// BenchmarkRTXIndex: what the retransmission index adds to every packet
// sent (index), and answering a NACK of 8 packets (resend). Reports the
// index's memory per viewer stream (pion's responder held 512 copies of
// every packet: about 0.9 MB per viewer).
func BenchmarkRTXIndex(b *testing.B) {
	null := interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return len(p), nil })
	info := &interceptor.StreamInfo{SSRC: 0x1234, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	payload := make([]byte, 1128)
	b.Run("index", func(b *testing.B) {
		it, _ := rtxFactory{m: newRTXMetrics()}.NewInterceptor("")
		w := it.(*rtxResponder).BindLocalStream(info, null)
		h := rtp.Header{Version: 2, PayloadType: 102, SSRC: 0x1234}
		b.ReportAllocs()
		for i := range b.N {
			h.SequenceNumber, h.Timestamp = uint16(i), uint32(i/19*3600)
			if _, err := w.Write(&h, payload, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(unsafe.Sizeof(rtxStream{})), "index-B/stream")
	})
	b.Run("resend", func(b *testing.B) {
		it, _ := rtxFactory{m: newRTXMetrics()}.NewInterceptor("")
		r := it.(*rtxResponder)
		now := time.Unix(0, 0)
		r.now = func() time.Time { now = now.Add(time.Second); return now } // the budget refills: every NACK is answered
		w := r.BindLocalStream(info, null)
		for i := range rtxRing {
			h := rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: uint16(i), SSRC: 0x1234}
			if _, err := w.Write(&h, payload, nil); err != nil {
				b.Fatal(err)
			}
		}
		nack := &rtcp.TransportLayerNack{MediaSSRC: 0x1234, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{100, 101, 103, 107, 110, 111, 112, 113})}
		resent := r.m.resent
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			r.resend(nack)
		}
		b.StopTimer()
		if got := testutil.ToFloat64(resent); got != float64(8*b.N) {
			b.Fatalf("resent %v packets, want %d", got, 8*b.N)
		}
	})
}

// BenchmarkPacer: the token bucket's decision per frame while a viewer
// catches up and once live.
func BenchmarkPacer(b *testing.B) {
	p := newPacer(DefaultSendBurst, DefaultSendRate)
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for i := range b.N {
		p.observe(time.Duration(i)*40*time.Millisecond, 19)
		now = now.Add(40 * time.Millisecond)
		if p.reserve(19, now) != 0 {
			b.Fatal("a live frame of ordinary size waited")
		}
	}
}
