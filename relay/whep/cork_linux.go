package whep

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoControl is the UDP_SEGMENT control message for segments of size.
func gsoControl(oob *[32]byte, size int) []byte {
	n := unix.CmsgSpace(2)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(size)
	return oob[:n]
}

// gsoRefused tells a refusal of segmentation offload (no checksum offload
// on the interface, a kernel without it) from an ordinary send error.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EOPNOTSUPP)
}

// gsoSupported probes the socket for UDP_SEGMENT (Linux 4.18+).
func gsoSupported(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}
