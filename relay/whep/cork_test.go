package whep

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

// muxConn stands for the UDP mux's conn: it writes straight to the socket
// and counts what it sent.
type muxConn struct {
	sock *net.UDPConn
	mu   sync.Mutex
	sent int
}

func (m *muxConn) WriteToAddrPort(b []byte, a netip.AddrPort) (int, error) {
	m.mu.Lock()
	m.sent++
	m.mu.Unlock()
	return m.sock.WriteToUDPAddrPort(b, a)
}
func (m *muxConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return m.sock.ReadFromUDPAddrPort(b)
}
func (m *muxConn) ReadFrom(b []byte) (int, net.Addr, error)  { return m.sock.ReadFrom(b) }
func (m *muxConn) WriteTo(b []byte, a net.Addr) (int, error) { return m.sock.WriteTo(b, a) }
func (m *muxConn) Close() error                              { return nil }
func (m *muxConn) LocalAddr() net.Addr                       { return m.sock.LocalAddr() }
func (m *muxConn) SetDeadline(time.Time) error               { return nil }
func (m *muxConn) SetReadDeadline(time.Time) error           { return nil }
func (m *muxConn) SetWriteDeadline(time.Time) error          { return nil }
func (m *muxConn) count() int                                { m.mu.Lock(); defer m.mu.Unlock(); return m.sent }

func udpSock(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	return c
}

// pkt is an "SRTP" datagram of n bytes: first byte 0x80, then the stream
// id and its number.
func pkt(stream byte, seq uint32, n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = 0x80, stream
	binary.BigEndian.PutUint32(b[2:], seq)
	for i := 6; i < n; i++ {
		b[i] = byte(seq) + byte(i)
	}
	return b
}

// The cork conn sends exactly the packets it is given, each once, in the
// order each writer wrote them, whatever their sizes (runs of equal sizes
// with a shorter last, odd sizes, a frame bigger than the buffer), while
// another goroutine writes through the same session (RTCP, resends);
// STUN/DTLS and the first packet to a destination pass straight through.
// With GSO a frame of equal packets is one system call; without, one per
// packet.
func TestCorkSendsExactlyInOrder(t *testing.T) {
	for _, gso := range []bool{true, false} {
		srv, rcv := udpSock(t), udpSock(t)
		m := newSendMetrics()
		s := newSender(srv, gso, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
		if gso && !s.gso.Load() {
			t.Log("no UDP GSO on this kernel: only the fallback is tested")
		}
		g := &corkGroup{s: s}
		inner := &muxConn{sock: srv}
		cc, err := newCorkConn(inner, g)
		if err != nil {
			t.Fatal(err)
		}
		dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
		// DTLS first: through the mux (which registers the destination)
		if _, err := cc.WriteToAddrPort([]byte{22, 0xfe, 0xfd}, dst); err != nil {
			t.Fatal(err)
		}
		sizes := [][]int{{1128, 1128, 1128, 700}, {300}, {1128, 1128}, {90, 1128, 1128, 1128, 1000, 1128}}
		big := make([]int, 80) // 80 × 1128 B: more than one buffer and one GSO call
		for i := range big {
			big[i] = 1128
		}
		sizes = append(sizes, big)
		want := 0
		var other sync.WaitGroup
		other.Add(1)
		go func() { // the RTCP writer beside the session's goroutine
			defer other.Done()
			for i := range 50 {
				_, _ = cc.WriteToAddrPort(pkt(2, uint32(i), 60), dst)
			}
		}()
		var seq uint32
		for round := range 20 {
			for _, frame := range sizes {
				g.Cork()
				for _, n := range frame {
					if _, err := cc.WriteToAddrPort(pkt(1, seq, n), dst); err != nil {
						t.Fatal(err)
					}
					seq++
				}
				if round == 0 && len(frame) == 4 { // STUN while corked: not held back
					if _, err := cc.WriteToAddrPort([]byte{0, 1, 0, 0}, dst); err != nil {
						t.Fatal(err)
					}
					want++
				}
				g.Flush()
			}
		}
		other.Wait()
		want += int(seq) + 50 + 1
		next := map[byte]uint32{}
		buf := make([]byte, 2048)
		for range want {
			_ = rcv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := rcv.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("gso %v: after %v: %v", gso, next, err)
			}
			if buf[0] < 128 {
				continue
			}
			st, got := buf[1], binary.BigEndian.Uint32(buf[2:])
			if got != next[st] || n < 6 || buf[n-1] != byte(got)+byte(n-1) {
				t.Fatalf("gso %v: stream %d: got packet %d (%d bytes), want %d", gso, st, got, n, next[st])
			}
			next[st]++
		}
		if next[1] != seq || next[2] != 50 {
			t.Fatalf("gso %v: received %v, want %d and 50", gso, next, seq)
		}
		_ = rcv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := rcv.ReadFromUDPAddrPort(buf); err == nil {
			t.Fatalf("gso %v: a packet too many", gso)
		}
		gsoCalls := testutil.ToFloat64(m.calls.WithLabelValues("gso"))
		if s.gso.Load() {
			// per round: one call for each of the first, third and fourth
			// frames (300, 90 and the last 1128 are singles), two for the
			// 80 packets (a buffer holds 58, a call 57); the RTCP writer
			// may split a run
			if gsoCalls < 20*5 || gsoCalls > 20*5+50 {
				t.Fatalf("%v GSO calls for 20 rounds", gsoCalls)
			}
		} else if gsoCalls != 0 {
			t.Fatalf("gso off: %v GSO calls", gsoCalls)
		}
		if inner.count() < 1 {
			t.Fatal("nothing passed through the mux")
		}
	}
}

// A write for a destination the mux has not seen passes through even when
// corked (the mux learns addresses from writes), and GSO refusals are told
// from other send errors.
func TestCorkUnknownDestinationAndRefusals(t *testing.T) {
	srv, rcv := udpSock(t), udpSock(t)
	s := newSender(srv, true, slog.New(slog.NewTextHandler(io.Discard, nil)), newSendMetrics())
	g := &corkGroup{s: s}
	inner := &muxConn{sock: srv}
	cc, _ := newCorkConn(inner, g)
	g.Cork()
	if _, err := cc.WriteToAddrPort(pkt(1, 0, 100), rcv.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	if inner.count() != 1 || g.pend != nil {
		t.Fatal("a packet for an unknown destination was held")
	}
	g.Flush()
	for _, c := range []struct {
		err  error
		want bool
	}{{unix.EIO, true}, {unix.EINVAL, true}, {unix.ECONNREFUSED, false}, {errors.New("x"), false}} {
		if got := gsoRefused(&net.OpError{Op: "write", Err: c.err}); got != c.want {
			t.Errorf("gsoRefused(%v) = %v", c.err, got)
		}
	}
}
