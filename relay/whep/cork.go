package whep

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Batched UDP sends. pion writes every SRTP packet synchronously, one
// sendto each, through the ICE candidate's conn, which is what our UDP mux
// hands out (ice.go). For each session the mux wraps those conns in a
// corkConn sharing the session's corkGroup: while the session writes one
// frame (Cork ... Flush) the SRTP/SRTCP packets are appended to a pooled
// buffer instead of sent, and Flush sends each run of packets for one
// destination with one sendmsg using UDP generic segmentation offload
// (UDP_SEGMENT: the kernel cuts the buffer into datagrams of the given
// size, the last may be shorter). A frame's packets are equal-sized but
// the last (the packetizer fills every payload), so a frame is usually
// one system call; the kernel's per-packet work is done once per call.
// Nothing waits: Flush runs right after the frame's last write.
//
// STUN and DTLS, and anything for a destination not written to before
// (the mux learns addresses from writes), pass straight through. Without
// GSO (a kernel or NIC that refuses it: the first EIO/EINVAL turns it off
// for the process) runs go out one packet at a time.

// Bounds of one GSO send: the kernel's segment limit (64 before Linux
// 6.6) and the 64 KiB datagram limit less the headers.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
	corkBufSize    = 64 << 10
)

// sendMetrics counts the system calls of the UDP sends and their packets.
type sendMetrics struct {
	calls, packets *prometheus.CounterVec
}

func newSendMetrics() sendMetrics {
	return sendMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_whep_udp_send_calls_total", Help: "System calls sending WHEP media over UDP, by mode (gso, single).",
		}, []string{"mode"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_whep_udp_sent_packets_total", Help: "WHEP media datagrams sent over UDP, by mode (gso, single).",
		}, []string{"mode"}),
	}
}

// sender sends runs of datagrams on the mux's socket (one per server).
type sender struct {
	sock *net.UDPConn
	gso  atomic.Bool
	log  *slog.Logger
	pool sync.Pool // *corkBuf
	// system calls and packets, by mode
	gsoCalls, gsoPkts prometheus.Counter
	oneCalls, onePkts prometheus.Counter
}

func newSender(sock *net.UDPConn, wantGSO bool, log *slog.Logger, m sendMetrics) *sender {
	s := &sender{sock: sock, log: log,
		gsoCalls: m.calls.WithLabelValues("gso"), gsoPkts: m.packets.WithLabelValues("gso"),
		oneCalls: m.calls.WithLabelValues("single"), onePkts: m.packets.WithLabelValues("single")}
	s.pool.New = func() any { return &corkBuf{buf: make([]byte, 0, corkBufSize), segs: make([]corkSeg, 0, 64)} }
	if wantGSO {
		s.gso.Store(gsoSupported(sock))
	}
	return s
}

// corkBuf is the packets of one corked frame: contiguous bytes and their
// boundaries and destinations.
type corkBuf struct {
	buf  []byte
	segs []corkSeg
}

type corkSeg struct {
	off, n int
	dst    netip.AddrPort
}

// corkGroup is one session's cork: every conn the mux gave its ICE agent
// writes through it.
type corkGroup struct {
	s      *sender
	mu     sync.Mutex
	corked bool
	pend   *corkBuf
	seen   []netip.AddrPort // destinations the mux has registered (written through it)
	oob    [32]byte
}

// Cork starts batching this session's media writes.
func (g *corkGroup) Cork() {
	g.mu.Lock()
	g.corked = true
	g.mu.Unlock()
}

// Flush sends what was batched since Cork and stops batching.
func (g *corkGroup) Flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.corked = false
	g.flushLocked()
}

func (g *corkGroup) flushLocked() {
	p := g.pend
	if p == nil {
		return
	}
	g.pend = nil
	g.s.send(p, &g.oob)
	p.buf, p.segs = p.buf[:0], p.segs[:0]
	g.s.pool.Put(p)
}

// write batches b for dst when corked and b is SRTP/SRTCP for a known
// destination; false means: send it now.
func (g *corkGroup) write(b []byte, dst netip.AddrPort) bool {
	if len(b) == 0 || b[0] < 128 || b[0] > 191 { // RFC 7983: not RTP/RTCP
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.corked || !g.known(dst) || len(b) > corkBufSize {
		return false
	}
	if g.pend != nil && len(g.pend.buf)+len(b) > corkBufSize {
		g.flushLocked()
	}
	if g.pend == nil {
		g.pend = g.s.pool.Get().(*corkBuf)
	}
	p := g.pend
	p.segs = append(p.segs, corkSeg{off: len(p.buf), n: len(b), dst: dst})
	p.buf = append(p.buf, b...)
	return true
}

func (g *corkGroup) known(dst netip.AddrPort) bool {
	for _, d := range g.seen {
		if d == dst {
			return true
		}
	}
	return false
}

// sentThrough records a destination written through the mux.
func (g *corkGroup) sentThrough(dst netip.AddrPort) {
	g.mu.Lock()
	if !g.known(dst) && len(g.seen) < 16 {
		g.seen = append(g.seen, dst)
	}
	g.mu.Unlock()
}

// send sends the batch: runs of equal-sized packets for one destination
// (the last of a run may be shorter) in one GSO call each.
func (s *sender) send(p *corkBuf, oob *[32]byte) {
	segs := p.segs
	for i := 0; i < len(segs); {
		j, size, total := i+1, segs[i].n, segs[i].n
		for j < len(segs) && j-i < gsoMaxSegments && segs[j].dst == segs[i].dst && total+segs[j].n <= gsoMaxBytes && segs[j].n <= size {
			total += segs[j].n
			j++
			if segs[j-1].n < size {
				break // a shorter packet ends the run
			}
		}
		s.sendRun(p.buf[segs[i].off:segs[j-1].off+segs[j-1].n], segs[i:j], size, oob)
		i = j
	}
}

func (s *sender) sendRun(b []byte, segs []corkSeg, size int, oob *[32]byte) {
	dst := segs[0].dst
	if len(segs) > 1 && s.gso.Load() {
		_, _, err := s.sock.WriteMsgUDPAddrPort(b, gsoControl(oob, size), dst)
		if err == nil {
			s.gsoCalls.Inc()
			s.gsoPkts.Add(float64(len(segs)))
			return
		}
		if gsoRefused(err) && s.gso.Swap(false) {
			s.log.Warn("UDP segmentation offload refused by the kernel or the interface; sending WebRTC packets one by one", "err", err)
		} else if !gsoRefused(err) {
			return // a send error other than GSO's: lost like any UDP datagram
		}
	}
	for _, sg := range segs {
		if _, err := s.sock.WriteToUDPAddrPort(b[sg.off-segs[0].off:sg.off-segs[0].off+sg.n], dst); err != nil {
			break
		}
		s.oneCalls.Inc()
		s.onePkts.Inc()
	}
}

// corkConn is the conn pion's ICE candidate writes through: a mux conn
// whose media writes a corked session batches.
type corkConn struct {
	inner net.PacketConn
	ap    ice.AddrPortReaderWriter
	g     *corkGroup
}

func newCorkConn(inner net.PacketConn, g *corkGroup) (*corkConn, error) {
	ap, ok := inner.(ice.AddrPortReaderWriter)
	if !ok {
		return nil, errors.New("whep: the UDP mux conn has no netip.AddrPort I/O")
	}
	return &corkConn{inner: inner, ap: ap, g: g}, nil
}

// WriteToAddrPort implements ice.AddrPortReaderWriter (the path pion's
// candidates write through).
func (c *corkConn) WriteToAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	if c.g.write(b, dst) {
		return len(b), nil
	}
	n, err := c.ap.WriteToAddrPort(b, dst)
	if err == nil {
		c.g.sentThrough(dst)
	}
	return n, err
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (c *corkConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ap.ReadFromAddrPort(b)
}

func (c *corkConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, ua.AddrPort())
	}
	return c.inner.WriteTo(b, addr)
}

func (c *corkConn) ReadFrom(b []byte) (int, net.Addr, error) { return c.inner.ReadFrom(b) }
func (c *corkConn) Close() error                             { return c.inner.Close() }
func (c *corkConn) LocalAddr() net.Addr                      { return c.inner.LocalAddr() }
func (c *corkConn) SetDeadline(t time.Time) error            { return c.inner.SetDeadline(t) }
func (c *corkConn) SetReadDeadline(t time.Time) error        { return c.inner.SetReadDeadline(t) }
func (c *corkConn) SetWriteDeadline(t time.Time) error       { return c.inner.SetWriteDeadline(t) }
