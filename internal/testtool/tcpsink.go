package testtool

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// TCPSink is a TCP address that must never be reached (where a hostile
// camera redirects to, what a guard must refuse): it accepts and closes
// every connection and counts them.
type TCPSink struct {
	l     net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

// NewTCPSink listens on host (port 0); it is closed, and its accept loop
// stopped, when the test ends.
func NewTCPSink(t testing.TB, host string) *TCPSink {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &TCPSink{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); s.wg.Wait() })
	return s
}

// Addr is the sink's host:port.
func (s *TCPSink) Addr() string { return s.l.Addr().String() }

// Conns is how many connections reached the sink.
func (s *TCPSink) Conns() int64 { return s.conns.Load() }
