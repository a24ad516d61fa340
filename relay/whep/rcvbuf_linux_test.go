package whep

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The shared WHEP UDP socket asks for udpReadBuffer; the kernel grants up
// to net.core.rmem_max (and reports twice what it grants).
func TestUDPReceiveBufferEnlarged(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	raw, err := e.srv.udpConn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if want := 2 * min(udpReadBuffer, rmemMax); got < want {
		t.Fatalf("SO_RCVBUF %d, want %d (rmem_max %d)", got, want, rmemMax)
	}
}
