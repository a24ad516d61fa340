package testtool

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// UDPSink counts the datagrams that reach a set of UDP sockets on one
// address: the candidate-flood tests give their ports to an ICE agent and
// count what it sends where.
type UDPSink struct {
	conns []net.PacketConn
	got   []atomic.Int64
	wg    sync.WaitGroup
}

// NewUDPSink listens on n UDP sockets on host (port 0 each); they are
// closed, and their readers stopped, when the test ends.
func NewUDPSink(t testing.TB, host string, n int) *UDPSink {
	t.Helper()
	s := &UDPSink{got: make([]atomic.Int64, n)}
	t.Cleanup(func() {
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.wg.Wait()
	})
	for i := range n {
		c, err := net.ListenPacket("udp4", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
				s.got[i].Add(1)
			}
		}()
	}
	return s
}

// Port is the port of socket i.
func (s *UDPSink) Port(i int) int { return s.conns[i].LocalAddr().(*net.UDPAddr).Port }

// Total returns the datagrams received and how many sockets received any.
func (s *UDPSink) Total() (n int64, ports int) {
	for i := range s.got {
		if v := s.got[i].Load(); v > 0 {
			n += v
			ports++
		}
	}
	return n, ports
}

// StripCandidates returns sdp without its "a=candidate:" lines (line
// endings kept): an offer whose peer the answerer only learns later, from
// a PATCH or through a proxy.
func StripCandidates(sdp string) string {
	var out strings.Builder
	for _, l := range strings.SplitAfter(sdp, "\n") {
		if !strings.HasPrefix(l, "a=candidate:") {
			out.WriteString(l)
		}
	}
	return out.String()
}
