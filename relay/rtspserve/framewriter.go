package rtspserve

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"cordon/relay"
)

// One write per frame per reader. gortsplib sends every RTP packet of a
// session through a queue (a closure and a 1472-byte buffer allocated per
// packet, a goroutine wake-up) and one conn.Write per packet. For RTSP
// over TCP (interleaved, plain RTP/AVP: what VMS and NVRs use) cordon
// writes a frame's interleaved records ($, channel, length, RTP packet)
// with one Write instead, on the connection that answered PLAY: a frame
// costs one system call whatever its packet count. A slow client becomes
// TCP back-pressure on this session's pump, so its relay reader's queue
// fills and drops frames up to the next keyframe (relay.Reader), which
// affects nobody else. gortsplib still answers requests and reads RTCP on
// the same connection; net.Conn (and tls.Conn) serialize whole Writes, so
// records never interleave with its responses. Sender reports (every 5 s,
// per track) are cordon's, since gortsplib never sees these packets. UDP
// and SRTP sessions keep gortsplib's path.

const (
	srInterval = 5 * time.Second
	// frameBufLimit bounds a session's buffer: a larger frame (a keyframe,
	// typically) is written in several Writes of about this size. 64 KiB
	// keeps a P-frame in one Write up to about 12 Mbit/s, while a reader's
	// buffer no longer grows to the largest keyframe it sees (1 MiB here
	// before: 150 readers of a 4 Mbit/s camera kept ~45 MB of them).
	frameBufLimit = 64 << 10
	// bufCap is what a session's buffer holds at most: frameBufLimit, the
	// record that crossed it (the relay's payloads are at most
	// relay.PayloadMaxSize) and a sender report. Only a capacity: append
	// still grows it for a larger packet.
	bufCap = frameBufLimit + 4 + 12 + relay.PayloadMaxSize + 64
)

// interleaved is one SETUP answer's Transport: channel and SSRC.
type interleaved struct {
	channel int
	ssrc    uint32
}

// learnSetup records the interleaved channel and SSRC of a SETUP answer
// (OnResponse sees every answer; only SETUP's carry a Transport).
func (st *connState) learnSetup(res *base.Response) {
	v, ok := res.Header["Transport"]
	if !ok || res.StatusCode != base.StatusOK {
		return
	}
	var th headers.Transport
	if err := th.Unmarshal(v); err != nil || th.InterleavedIDs == nil || th.SSRC == nil ||
		th.Protocol != headers.TransportProtocolTCP || th.Profile != headers.TransportProfileAVP {
		return
	}
	if len(st.setups) < 16 {
		st.setups = append(st.setups, interleaved{channel: th.InterleavedIDs[0], ssrc: *th.SSRC})
	}
}

// frameWriter writes one TCP session's frames.
// Its buffer grows to the most the session gathered for one Write (a
// frame, or frames queued together), at most bufCap.
type frameWriter struct {
	conn    net.Conn
	timeout time.Duration
	chans   []int    // RTP channel by out-track index; -1 = not set up
	ssrcs   []uint32 // the SSRC announced in SETUP
	clocks  []int
	sr      []srState
	buf     []byte
	now     func() time.Time
	// deadline is the write deadline last set: it is moved only once less
	// than half the timeout is left (one runtime timer update per
	// timeout/2, not per frame), so a Write always has at least timeout/2
	deadline time.Time
}

type srState struct {
	packets, octets uint32
	lastTS          uint32
	lastSR          time.Time
	have            bool
}

// newFrameWriter returns a writer for a plain TCP session whose every
// set-up media's channel and SSRC are known; nil keeps gortsplib's path.
func newFrameWriter(conn *gortsplib.ServerConn, ss *gortsplib.ServerSession, cs *camStream, setups []interleaved, timeout time.Duration) *frameWriter {
	tr := ss.Transport()
	if conn == nil || tr == nil || tr.Protocol != gortsplib.ProtocolTCP || tr.Profile != headers.TransportProfileAVP {
		return nil
	}
	w := &frameWriter{conn: conn.NetConn(), timeout: timeout, chans: make([]int, len(cs.medias)), ssrcs: make([]uint32, len(cs.medias)),
		clocks: make([]int, len(cs.medias)), sr: make([]srState, len(cs.medias)), now: time.Now}
	stats := ss.Stats()
	set := 0
	for i, m := range cs.medias {
		w.chans[i] = -1
		if m == nil {
			continue
		}
		ms, ok := stats.Medias[m]
		if !ok {
			continue // not set up by this client
		}
		var ssrc uint32
		for _, f := range ms.Formats {
			ssrc = f.LocalSSRC
		}
		found := false
		for _, s := range setups {
			if s.ssrc == ssrc {
				w.chans[i], w.ssrcs[i], found = s.channel, ssrc, true
			}
		}
		if !found {
			return nil
		}
		w.clocks[i] = cs.tracks[i].ClockRate
		set++
	}
	if set == 0 {
		return nil
	}
	return w
}

// write sends one frame (and a due sender report) with one Write.
func (w *frameWriter) write(v *relay.View) error {
	if err := w.add(v); err != nil {
		return err
	}
	return w.flush(w.now())
}

// add appends one frame (and a due sender report) to the session's
// buffer; flush writes what was added. It reads the relay's shared
// packets (v.Frame, read-only) and writes this session's SSRC, sequence
// numbers and timestamps into its own buffer: no per-reader copy of the
// headers is made first (relay.Reader.NextView). Frames added one after
// the other go out with one Write as long as they fit the buffer; a
// frame that does not fit what is left flushes first.
func (w *frameWriter) add(v *relay.View) error {
	f := v.Frame
	if f.Track >= len(w.chans) || w.chans[f.Track] < 0 || len(f.Packets) == 0 {
		return nil
	}
	ch, ssrc := w.chans[f.Track], w.ssrcs[f.Track]
	need := min(f.Bytes+16*len(f.Packets)+64, bufCap)
	if len(w.buf) > 0 && len(w.buf)+need > bufCap {
		if err := w.flush(w.now()); err != nil { // past the bound: write what is gathered
			return err
		}
	}
	// size the buffer once for what it is to hold (or to its bound), not
	// by append's repeated doubling as ever larger keyframes arrive
	if c := min(len(w.buf)+need, bufCap); cap(w.buf) < c {
		w.buf = append(make([]byte, 0, c), w.buf...)
	}
	sr := &w.sr[f.Track]
	for _, p := range f.Packets {
		if len(w.buf) > frameBufLimit {
			if err := w.flush(w.now()); err != nil {
				return err
			}
		}
		ts := v.TS(p)
		if err := w.appendPacket(ch, ssrc, v.Seq(p), ts, p); err != nil {
			return err
		}
		sr.packets++
		sr.octets += uint32(len(p.Payload))
		sr.lastTS, sr.have = ts, true
	}
	// a sender report maps this frame's timestamp to the wall-clock time
	// it reached the relay (not to now: a frame that waited in this
	// reader's queue keeps its own time, so a reader that is a frame
	// behind, as when a camera's audio and video arrive together, still
	// gets reports); never for a frame from the cached GOP, whose
	// timestamps are squeezed
	now := w.now() // one clock read per frame
	if !v.Primed && now.Sub(sr.lastSR) >= srInterval {
		at := f.Time
		if at.IsZero() {
			at = now
		}
		sr.lastSR = now
		w.appendSR(ch+1, ssrc, sr, at)
	}
	return nil
}

// appendPacket appends p as an interleaved record on channel ch with the
// session's SSRC and this reader's sequence number and timestamp (p itself
// is shared and never written). The relay's packets have a plain 12-byte
// header (no padding, extension or CSRC): that is written directly; any
// other header goes through pion's marshaller.
func (w *frameWriter) appendPacket(ch int, ssrc uint32, seq uint16, ts uint32, p *rtp.Packet) error {
	h := &p.Header
	if h.Padding || h.Extension || len(h.CSRC) > 0 {
		hc := *h
		hc.SSRC, hc.SequenceNumber, hc.Timestamp = ssrc, seq, ts
		n := hc.MarshalSize() + len(p.Payload)
		if n > 0xffff {
			return nil // cannot be framed; the relay's payloads are far smaller
		}
		w.buf = append(w.buf, '$', byte(ch), byte(n>>8), byte(n))
		start := len(w.buf)
		w.buf = slices.Grow(w.buf, n)[:start+hc.MarshalSize()]
		if _, err := hc.MarshalTo(w.buf[start:]); err != nil {
			return err
		}
		w.buf = append(w.buf, p.Payload...)
		return nil
	}
	n := 12 + len(p.Payload)
	if n > 0xffff {
		return nil
	}
	b1 := h.PayloadType & 0x7f
	if h.Marker {
		b1 |= 0x80
	}
	w.buf = append(w.buf, '$', byte(ch), byte(n>>8), byte(n), 2<<6, b1)
	w.buf = binary.BigEndian.AppendUint16(w.buf, seq)
	w.buf = binary.BigEndian.AppendUint32(w.buf, ts)
	w.buf = binary.BigEndian.AppendUint32(w.buf, ssrc)
	w.buf = append(w.buf, p.Payload...)
	return nil
}

func (w *frameWriter) appendSR(ch int, ssrc uint32, sr *srState, now time.Time) {
	rep := rtcp.SenderReport{SSRC: ssrc, NTPTime: ntpTime(now), RTPTime: sr.lastTS, PacketCount: sr.packets, OctetCount: sr.octets}
	b, err := rep.Marshal()
	if err != nil {
		return
	}
	w.buf = append(w.buf, '$', byte(ch))
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(b)))
	w.buf = append(w.buf, b...)
}

// pending is the bytes added and not yet written.
func (w *frameWriter) pending() int { return len(w.buf) }

// errPartialWrite: a write timed out part way; the stream is broken.
var errPartialWrite = errors.New("rtsp client too slow: a write timed out")

func (w *frameWriter) flush(now time.Time) error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.deadline.Sub(now) < w.timeout/2 {
		w.deadline = now.Add(w.timeout)
		_ = w.conn.SetWriteDeadline(w.deadline)
	}
	_, err := w.conn.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return errPartialWrite
	}
	return nil
}

// ntpTime converts to the 64-bit NTP format (seconds since 1900).
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}
