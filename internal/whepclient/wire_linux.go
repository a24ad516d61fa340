package whepclient

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader reads a socket's datagrams 16 at a time (recvmmsg), so a
// client holding hundreds of viewers wakes once per burst, not per packet.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6
	n     int
	at    int
}

const (
	batchLen  = 16
	batchSize = 2048 // pion's RTP and DTLS records stay under 1200 bytes
)

func (r *batchReader) init(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	r.rc = rc
	r.hdrs = make([]unix.Mmsghdr, batchLen)
	r.iovs = make([]unix.Iovec, batchLen)
	r.names = make([]unix.RawSockaddrInet6, batchLen)
	r.bufs = make([][]byte, batchLen)
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, batchSize)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(batchSize)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	return nil
}

// next returns the next datagram (valid until the next call) and its source.
func (r *batchReader) next(c *net.UDPConn) ([]byte, netip.AddrPort, error) {
	for r.at >= r.n {
		if err := r.fill(c, true); err != nil {
			return nil, netip.AddrPort{}, err
		}
	}
	i := r.at
	r.at++
	return r.bufs[i][:r.hdrs[i].Len], sockaddr(&r.names[i]), nil
}

// drained reports whether every datagram read has been returned.
func (r *batchReader) drained() bool { return r.at >= r.n }

// fill reads a batch; wait blocks until at least one datagram is there,
// otherwise an empty socket is an empty batch.
func (r *batchReader) fill(c *net.UDPConn, wait bool) error {
	if r.hdrs == nil {
		if err := r.init(c); err != nil {
			return err
		}
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			for i := range r.hdrs {
				r.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
				r.hdrs[i].Len = 0
			}
			got, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				n = 0
				return !wait // wait until readable, or report nothing
			}
			n, errno = int(got), e
			return true
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("recvmmsg", errno)
	}
	if n < 0 {
		return errors.New("recvmmsg returned nothing")
	}
	r.n, r.at = n, 0
	return nil
}

// full reports whether the last batch used every slot (more may wait).
func (r *batchReader) full() bool { return r.n == len(r.hdrs) }

func sockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	b := (*[unsafe.Sizeof(*sa)]byte)(unsafe.Pointer(sa))
	port := binary.BigEndian.Uint16(b[2:4])
	switch sa.Family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
	}
	return netip.AddrPort{}
}

// socketDrops is the kernel's count of datagrams this socket dropped
// (SO_MEMINFO's SK_MEMINFO_DROPS).
func socketDrops(c *net.UDPConn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var mem [unix.SK_MEMINFO_VARS]uint32
	_ = rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(mem))
		_, _, _ = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO, uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
	})
	return uint64(mem[unix.SK_MEMINFO_DROPS])
}

// datagram i of the last batch.
func (r *batchReader) datagram(i int) ([]byte, netip.AddrPort) {
	return r.bufs[i][:r.hdrs[i].Len], sockaddr(&r.names[i])
}

// size is the number of datagrams in the last batch.
func (r *batchReader) size() int { return r.n }

// canPoll: a Poller can read these sockets without blocking.
const canPoll = true
