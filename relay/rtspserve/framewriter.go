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
//
// A frame's records are the same for every session that announced the
// relay's SSRC for the track and has dropped nothing (its sequence numbers
// and timestamps are then the relay's own) on the same channel: they are
// built once per frame, by the first such session, and written as they
// are by the others (relay.Frame.SharedEncoding), so a reader costs its
// Write and no copy. To that end the SSRC a TCP SETUP answer announces is
// the relay's for that track (learnSetup), not gortsplib's per-session
// one: gortsplib never sends on these sessions (a session whose answers
// announced the relay's SSRC is never handed to gortsplib's path, which
// would send its own), and it ignores receiver reports for an SSRC it
// does not know.

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

// interleaved is one SETUP answer's Transport: channel, gortsplib's SSRC
// for the media, and the SSRC the answer announced instead.
type interleaved struct {
	channel int
	ssrc    uint32 // gortsplib's
	wire    uint32 // announced, and written
}

// learnSetup records the interleaved channel and SSRC of the session's
// plain TCP SETUP answer (OnResponse sees every answer; only SETUP's carry
// a Transport) and makes the answer announce the relay's SSRC for the
// track, so that its records can be shared. The record is the session's,
// not the connection's: a client may SETUP on one connection and PLAY on
// another. A session sets each of its medias up once (gortsplib refuses a
// second SETUP of a media), so it records at most one answer per media.
// Under Server.mu.
func (c *client) learnSetup(res *base.Response) {
	v, ok := res.Header["Transport"]
	if !ok || res.StatusCode != base.StatusOK {
		return
	}
	var th headers.Transport
	if err := th.Unmarshal(v); err != nil || th.InterleavedIDs == nil || th.SSRC == nil ||
		th.Protocol != headers.TransportProtocolTCP || th.Profile != headers.TransportProfileAVP {
		return
	}
	if len(c.setups) >= len(c.cs.medias) {
		return
	}
	in := interleaved{channel: th.InterleavedIDs[0], ssrc: *th.SSRC, wire: *th.SSRC}
	if ssrc, ok := c.cs.relaySSRC(*th.SSRC); ok {
		in.wire = ssrc
		th.SSRC = &ssrc
		res.Header["Transport"] = th.Marshal()
	}
	c.setups = append(c.setups, in)
}

// relaySSRC is the relay's SSRC for the track whose gortsplib SSRC is
// ssrc in this stream.
func (cs *camStream) relaySSRC(ssrc uint32) (uint32, bool) {
	stats := cs.stream.Stats()
	for i, m := range cs.medias {
		if m == nil {
			continue
		}
		for _, f := range stats.Medias[m].Formats {
			if f.LocalSSRC == ssrc {
				return cs.tracks[i].SSRC, true
			}
		}
	}
	return 0, false
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
	// shared is a frame's shared records (relay.Frame.SharedEncoding)
	// added and not yet written: written as they are when nothing else
	// is added, else copied into buf. buf is empty while shared is held.
	shared []byte
	now    func() time.Time
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
				w.chans[i], w.ssrcs[i], found = s.channel, s.wire, true
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
	sr := &w.sr[f.Track]
	if v.SeqDelta == 0 && v.TSDelta == 0 && f.Packets[0].SSRC == ssrc {
		b, ok := f.SharedEncoding(uint32(ch), encodeRecords)
		if ok && b != nil {
			if err := w.addShared(b); err != nil {
				return err
			}
			sr.packets += uint32(len(f.Packets))
			sr.octets += uint32(f.Bytes)
			sr.lastTS, sr.have = f.Packets[len(f.Packets)-1].Timestamp, true
			return w.maybeSR(v, ch, ssrc, sr)
		}
	}
	if err := w.unshare(); err != nil {
		return err
	}
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
	for _, p := range f.Packets {
		if len(w.buf) > frameBufLimit {
			if err := w.flush(w.now()); err != nil {
				return err
			}
		}
		ts := v.TS(p)
		var err error
		if w.buf, err = appendRecord(w.buf, ch, ssrc, v.Seq(p), ts, p); err != nil {
			return err
		}
		sr.packets++
		sr.octets += uint32(len(p.Payload))
		sr.lastTS, sr.have = ts, true
	}
	return w.maybeSR(v, ch, ssrc, sr)
}

// maybeSR adds a sender report for track channel ch after v's frame when
// one is due.
func (w *frameWriter) maybeSR(v *relay.View, ch int, ssrc uint32, sr *srState) error {
	// a sender report maps this frame's timestamp to the wall-clock time
	// it reached the relay (not to now: a frame that waited in this
	// reader's queue keeps its own time, so a reader that is a frame
	// behind, as when a camera's audio and video arrive together, still
	// gets reports); never for a frame from the cached GOP, whose
	// timestamps are squeezed
	now := w.now() // one clock read per frame
	if !v.Primed && now.Sub(sr.lastSR) >= srInterval {
		if err := w.unshare(); err != nil {
			return err
		}
		at := v.Frame.Time
		if at.IsZero() {
			at = now
		}
		sr.lastSR = now
		w.appendSR(ch+1, ssrc, sr, at)
	}
	return nil
}

// addShared adds a frame's shared records: held as they are when nothing
// is pending, else gathered into the buffer (flushing first past its
// bound).
func (w *frameWriter) addShared(b []byte) error {
	if w.pending() == 0 {
		w.shared = b
		return nil
	}
	if err := w.unshare(); err != nil {
		return err
	}
	if len(w.buf)+len(b) > bufCap {
		if err := w.flush(w.now()); err != nil {
			return err
		}
		w.shared = b
		return nil
	}
	if c := len(w.buf) + len(b); cap(w.buf) < c {
		w.buf = append(make([]byte, 0, min(max(c, 2*cap(w.buf)), bufCap)), w.buf...)
	}
	w.buf = append(w.buf, b...)
	return nil
}

// unshare moves held shared records into the buffer, before something
// is added after them (another frame, a sender report); records too large
// for the buffer's bound are written first instead.
func (w *frameWriter) unshare() error {
	if w.shared == nil {
		return nil
	}
	b := w.shared
	if len(b) > frameBufLimit {
		return w.flush(w.now())
	}
	w.shared = nil
	if c := len(b) + 64; cap(w.buf) < c {
		w.buf = make([]byte, 0, min(max(c, 2*cap(w.buf)), bufCap))
	}
	w.buf = append(w.buf, b...)
	return nil
}

// encodeRecords builds a frame's interleaved records on channel ch with
// the packets' own headers (the relay's SSRC, sequence numbers and
// timestamps): what every reader that dropped nothing writes.
func encodeRecords(f *relay.Frame, ch uint32) []byte {
	b := make([]byte, 0, f.Bytes+16*len(f.Packets))
	for _, p := range f.Packets {
		var err error
		if b, err = appendRecord(b, int(ch), p.SSRC, p.SequenceNumber, p.Timestamp, p); err != nil {
			return nil
		}
	}
	return b
}

// appendRecord appends p to b as an interleaved record on channel ch with
// the session's SSRC and this reader's sequence number and timestamp (p
// itself is shared and never written). The relay's packets have a plain
// 12-byte header (no padding, extension or CSRC): that is written
// directly; any other header goes through pion's marshaller.
func appendRecord(b []byte, ch int, ssrc uint32, seq uint16, ts uint32, p *rtp.Packet) ([]byte, error) {
	h := &p.Header
	if h.Padding || h.Extension || len(h.CSRC) > 0 {
		hc := *h
		hc.SSRC, hc.SequenceNumber, hc.Timestamp = ssrc, seq, ts
		n := hc.MarshalSize() + len(p.Payload)
		if n > 0xffff {
			return b, nil // cannot be framed; the relay's payloads are far smaller
		}
		b = append(b, '$', byte(ch), byte(n>>8), byte(n))
		start := len(b)
		b = slices.Grow(b, n)[:start+hc.MarshalSize()]
		if _, err := hc.MarshalTo(b[start:]); err != nil {
			return b[:start-4], err
		}
		b = append(b, p.Payload...)
		return b, nil
	}
	n := 12 + len(p.Payload)
	if n > 0xffff {
		return b, nil
	}
	b1 := h.PayloadType & 0x7f
	if h.Marker {
		b1 |= 0x80
	}
	b = append(b, '$', byte(ch), byte(n>>8), byte(n), 2<<6, b1)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	b = binary.BigEndian.AppendUint32(b, ssrc)
	b = append(b, p.Payload...)
	return b, nil
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
func (w *frameWriter) pending() int { return len(w.buf) + len(w.shared) }

// errPartialWrite: a write timed out part way; the stream is broken.
var errPartialWrite = errors.New("rtsp client too slow: a write timed out")

func (w *frameWriter) flush(now time.Time) error {
	if w.pending() == 0 {
		return nil
	}
	if w.deadline.Sub(now) < w.timeout/2 {
		w.deadline = now.Add(w.timeout)
		_ = w.conn.SetWriteDeadline(w.deadline)
	}
	var err error
	if len(w.buf) > 0 {
		_, err = w.conn.Write(w.buf)
		w.buf = w.buf[:0]
	}
	if err == nil && w.shared != nil {
		_, err = w.conn.Write(w.shared)
	}
	w.shared = nil
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
