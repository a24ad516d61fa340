package udppair

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

func TestFreeAndRetry(t *testing.T) {
	p, err := Free("127.0.0.1")
	if err != nil || p%2 != 0 {
		t.Fatal(p, err)
	}
	calls := 0
	var bound []net.PacketConn
	err = Retry("127.0.0.1", 5, func(rtp int) error {
		calls++
		if calls < 3 {
			return syscall.EADDRINUSE
		}
		for _, port := range []int{rtp, rtp + 1} {
			c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				return err
			}
			bound = append(bound, c)
		}
		return nil
	})
	for _, c := range bound {
		_ = c.Close()
	}
	if err != nil || calls != 3 || len(bound) != 2 {
		t.Fatalf("Retry: %v after %d calls", err, calls)
	}
	other := errors.New("permission denied")
	if err := Retry("127.0.0.1", 5, func(int) error { return other }); !errors.Is(err, other) {
		t.Fatalf("Retry returned %v", err)
	}
}
