package whepclient

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
)

// What arrives on the client's UDP sockets is counted before pion sees it:
// SRTP encrypts only the RTP payload, so sequence numbers, timestamps and
// marker bits are read from the clear header of every video packet. In
// light mode (Options.Light) the packets are then dropped instead of being
// decrypted and depacketized, once the first keyframe access unit has been
// decoded by the normal path: ICE, DTLS, SRTP keys, RTCP and the first
// keyframe stay real, and the server's work per packet is the same; what
// the client skips is SRTP authentication and decryption of later RTP
// payloads and their depacketization.

// Earliest is the window after the first video packet whose losses count as
// losses at join (WireStats.LostEarly).
const Earliest = 3 * time.Second

// WireStats is what a client's sockets saw of the video track.
type WireStats struct {
	Packets, Bytes int64 // video RTP datagrams and their bytes
	Frames         int64 // video packets with the marker bit (one per access unit)
	// Lost counts sequence numbers never received within a 1024-packet
	// window (a late or reordered packet is not a loss); LostEarly those
	// missed within Earliest after the first video packet.
	Lost, LostEarly int64
	First           time.Time     // first video packet
	FrameGapP95     time.Duration // 95th percentile of the time between two marker bits
	FrameGapMax     time.Duration
	// Drops is the kernel's count of datagrams dropped on the client's
	// sockets (receive buffer full; SO_MEMINFO), all tracks.
	Drops uint64
}

// wire counts video RTP on one client's sockets.
type wire struct {
	rcvbuf   int     // SO_RCVBUF for new sockets; 0 = default
	poller   *Poller // reads light sockets after the first keyframe; nil = they read themselves
	drop     func(seq uint16) bool
	dropDTLS func(n int) bool
	nDTLS    atomic.Int64
	light    atomic.Bool // swallow RTP after counting it
	videoPTs [2]atomic.Uint64

	mu      sync.Mutex
	conns   []*wireConn
	st      WireStats
	loss    lossCounter
	lastMk  time.Time
	gapHist [gapBuckets]uint32 // 1 ms buckets; the last one is "longer"
}

const gapBuckets = 2001

func (w *wire) setVideoPT(pt uint8) {
	if pt < 128 {
		w.videoPTs[pt/64].Or(1 << (pt % 64))
	}
}

func (w *wire) isVideoPT(pt uint8) bool {
	return w.videoPTs[pt/64].Load()&(1<<(pt%64)) != 0
}

// packet looks at one datagram and reports whether pion should get it.
func (w *wire) packet(b []byte, now time.Time) bool {
	// RFC 7983: DTLS records start with 20..63
	if len(b) > 0 && b[0] >= 20 && b[0] <= 63 && w.dropDTLS != nil {
		return !w.dropDTLS(int(w.nDTLS.Add(1)))
	}
	// RFC 7983: RTP/RTCP have version 2; RTCP packet types are 192..223
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
		return true
	}
	pt := b[1] & 0x7f
	if !w.isVideoPT(pt) {
		return !w.light.Load()
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	if w.drop != nil && w.drop(seq) {
		return false
	}
	marker := b[1]&0x80 != 0
	w.mu.Lock()
	if w.st.First.IsZero() {
		w.st.First = now
	}
	early := now.Sub(w.st.First) < Earliest
	if w.loss.add(seq, early) {
		w.st.Packets++
		w.st.Bytes += int64(len(b))
		if marker {
			w.st.Frames++
			if !w.lastMk.IsZero() {
				w.gapHist[min(int(now.Sub(w.lastMk)/time.Millisecond), gapBuckets-1)]++
				w.st.FrameGapMax = max(w.st.FrameGapMax, now.Sub(w.lastMk))
			}
			w.lastMk = now
		}
	}
	w.mu.Unlock()
	return !w.light.Load()
}

func (w *wire) stats() WireStats {
	w.mu.Lock()
	st := w.st
	st.Lost, st.LostEarly = w.loss.lost, w.loss.lostEarly
	pending, pendingEarly := w.loss.pending()
	st.Lost += pending
	st.LostEarly += pendingEarly
	var total uint64
	for _, n := range w.gapHist {
		total += uint64(n)
	}
	if total > 0 {
		want, acc := (total*95+99)/100, uint64(0)
		for i, n := range w.gapHist {
			acc += uint64(n)
			if acc >= want {
				st.FrameGapP95 = time.Duration(i) * time.Millisecond
				break
			}
		}
	}
	conns := w.conns
	w.mu.Unlock()
	for _, c := range conns {
		st.Drops += socketDrops(c.UDPConn)
	}
	return st
}

// lossCounter finds sequence numbers that never arrive: a window of the
// last lossWindow numbers after the highest seen; a number leaving the
// window unreceived is lost.
type lossCounter struct {
	have            bool
	top             int64 // highest extended sequence number received
	slots           [lossWindow]lossSlot
	lost, lostEarly int64
}

type lossSlot struct {
	ext   int64
	state uint8 // 0 unused, 1 missing, 2 received
	early bool
}

const lossWindow = 1024

// add records a received sequence number; false for a duplicate or a
// packet older than the window.
func (l *lossCounter) add(seq uint16, early bool) bool {
	if !l.have {
		l.have, l.top = true, int64(seq)
		l.slots[seq%lossWindow] = lossSlot{ext: l.top, state: 2}
		return true
	}
	ext := l.top + int64(int16(seq-uint16(l.top)))
	switch {
	case ext > l.top:
		// numbers skipped past the window are lost at once; the rest wait
		// in the window for a late arrival
		from := l.top + 1
		start := max(from, ext-lossWindow+1)
		l.count(start-from, early)
		for s := start; s < ext; s++ {
			l.put(lossSlot{ext: s, state: 1, early: early})
		}
		l.put(lossSlot{ext: ext, state: 2})
		l.top = ext
		return true
	case l.top-ext >= lossWindow:
		return false
	}
	sl := &l.slots[ext%lossWindow]
	if sl.ext != ext || sl.state != 1 {
		return false
	}
	sl.state = 2
	return true
}

func (l *lossCounter) put(s lossSlot) {
	i := s.ext % lossWindow
	if old := l.slots[i]; old.state == 1 {
		l.count(1, old.early)
	}
	l.slots[i] = s
}

func (l *lossCounter) count(n int64, early bool) {
	l.lost += n
	if early {
		l.lostEarly += n
	}
}

// pending counts the numbers still missing inside the window.
func (l *lossCounter) pending() (n, early int64) {
	for _, s := range l.slots {
		if s.state == 1 {
			n++
			if s.early {
				early++
			}
		}
	}
	return n, early
}

// wireNet is pion's standard network whose UDP sockets are wireConns.
type wireNet struct {
	*stdnet.Net
	w *wire
}

func newWireNet(w *wire) (*wireNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &wireNet{Net: n, w: w}, nil
}

func (n *wireNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	if n.w.rcvbuf > 0 {
		if err := c.SetReadBuffer(n.w.rcvbuf); err != nil {
			c.Close()
			return nil, err
		}
	}
	wc := &wireConn{UDPConn: c, w: n.w}
	n.w.mu.Lock()
	n.w.conns = append(n.w.conns, wc)
	n.w.mu.Unlock()
	return wc, nil
}

// wireConn shows every datagram to its wire before pion reads it, reading
// in batches (recvmmsg) where the platform has it.
type wireConn struct {
	*net.UDPConn
	w      *wire
	rb     batchReader
	polled chan polled // once a Poller reads the socket (light mode)
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter (the path pion's
// candidates read through).
func (c *wireConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		if c.polled != nil {
			return c.readPolled(b)
		}
		// light, and nothing of the last batch left: the poller takes over
		if c.w.poller != nil && c.w.light.Load() && c.rb.drained() {
			c.polled = make(chan polled, 64)
			if c.w.poller.add(c) {
				continue
			}
			c.polled = nil
		}
		d, from, err := c.rb.next(c.UDPConn)
		if err != nil {
			return 0, from, err
		}
		if c.w.packet(d, time.Now()) {
			return copy(b, d), from, nil
		}
	}
}

// WriteToAddrPort implements ice.AddrPortReaderWriter.
func (c *wireConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// ReadFrom is the net.PacketConn path, filtered the same way.
func (c *wireConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}
