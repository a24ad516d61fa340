//go:build linux

package audit

import (
	"math"
	"net"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED (include/net/tcp_states.h).
const tcpEstablished = 1

// unackedBytes returns how many bytes written to c the peer's TCP stack
// has not acknowledged yet (SIOCOUTQ), ok = false when unknown. A
// connection that is no longer established (a reset purges the send
// queue, which would read as "all acknowledged") reports everything as
// unacknowledged.
func unackedBytes(c *net.TCPConn) (n int, ok bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ierr error
	established := false
	err = raw.Control(func(fd uintptr) {
		if n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); ierr != nil {
			return
		}
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		established = err == nil && info.State == tcpEstablished
	})
	if err != nil || ierr != nil {
		return 0, false
	}
	if !established {
		return math.MaxInt32, true
	}
	return n, true
}
