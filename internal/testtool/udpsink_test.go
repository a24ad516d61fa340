package testtool

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestUDPSink(t *testing.T) {
	s := NewUDPSink(t, "127.0.0.1", 3)
	c, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(s.Port(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	WaitFor(t, 5*time.Second, "two datagrams on one socket", func() bool {
		n, ports := s.Total()
		return n == 2 && ports == 1
	})
}

func TestStripCandidates(t *testing.T) {
	in := "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\na=mid:0\r\na=candidate:2 1 udp 1 127.0.0.1 10 typ host"
	if got := StripCandidates(in); got != "v=0\r\na=mid:0\r\n" {
		t.Fatalf("%q", got)
	}
}

func TestTCPSink(t *testing.T) {
	s := NewTCPSink(t, "127.0.0.1")
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	WaitFor(t, 5*time.Second, "one connection", func() bool { return s.Conns() == 1 })
}
