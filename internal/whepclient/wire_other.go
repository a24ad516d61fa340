//go:build !linux

package whepclient

import (
	"net"
	"net/netip"
)

// batchReader reads one datagram at a time where recvmmsg is not there.
type batchReader struct{ buf []byte }

func (r *batchReader) next(c *net.UDPConn) ([]byte, netip.AddrPort, error) {
	if r.buf == nil {
		r.buf = make([]byte, 2048)
	}
	n, from, err := c.ReadFromUDPAddrPort(r.buf)
	return r.buf[:n], from, err
}

// socketDrops is not known on this platform.
func socketDrops(*net.UDPConn) uint64 { return 0 }
