//go:build !linux

package whepclient

import (
	"errors"
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

func (r *batchReader) drained() bool                         { return true }
func (r *batchReader) fill(*net.UDPConn, bool) error         { return errors.ErrUnsupported }
func (r *batchReader) full() bool                            { return false }
func (r *batchReader) size() int                             { return 0 }
func (r *batchReader) datagram(int) ([]byte, netip.AddrPort) { return nil, netip.AddrPort{} }

// canPoll: no non-blocking batch reads here; light viewers read their
// sockets themselves.
const canPoll = false

// socketDrops is not known on this platform.
func socketDrops(*net.UDPConn) uint64 { return 0 }
