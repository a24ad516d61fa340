package relay

// The consumer side of a Reader: what an output takes from its queue,
// either as a Delivery (Next: per-reader header copies, and access units
// for a reader that asked for them) or as a View of the shared frame
// (NextView, TryNextView: for an output that writes the headers itself).

import (
	"context"
	"time"

	"github.com/pion/rtp"
)

// Delivery is what Next returns: one frame. Packets have headers copied for
// this reader (sequence numbers continuous for it) and payloads shared and
// read-only, valid until the next call to Next. AU is the frame's
// sanitized access unit: for audio the codec frames, shared and read-only;
// for video nil unless the reader asked for access units (ReaderConf.AU),
// then the NAL units (no start codes) exactly as packetized, depacketized
// for this delivery into a buffer that is the caller's to keep (it is
// never reused nor written by the relay).
type Delivery struct {
	Track   int
	Key     bool
	PTS     time.Duration
	DTS     time.Duration // decode time: PTS except with B-frames (Frame.DTS)
	Time    time.Time     // wall clock when the access unit reached the stream
	AU      [][]byte
	Packets []rtp.Packet
	// Primed: the frame came from the GOP cache (a new reader's start, or
	// Flush), not live. Backlog: frames still queued behind this one. An
	// output that paces its sends uses them to tell catching up from live.
	Primed  bool
	Backlog int
}

// Next blocks until the next frame for this reader, the reader's end, or ctx.
func (r *Reader) Next(ctx context.Context) (Delivery, error) {
	var it item
	var au [][]byte
	for {
		var err error
		if it, err = r.take(ctx); err != nil {
			return Delivery{}, err
		}
		var ok bool
		if au, ok = r.accessUnit(it.f); ok {
			break
		}
	}
	r.delivered(it)
	r.buf = r.s.borrowPackets()
	pkts := (*r.buf)[:0]
	for _, p := range it.f.Packets {
		c := *p
		c.SequenceNumber -= it.seqDelta
		c.Timestamp += it.tsDelta
		pkts = append(pkts, c)
	}
	*r.buf = pkts
	f := it.f
	return Delivery{Track: f.Track, Key: f.Key, PTS: f.PTS, DTS: f.DTS, Time: f.Time, AU: au, Packets: pkts, Primed: it.primed, Backlog: len(r.ch)}, nil
}

// accessUnit returns what Delivery.AU carries for f, and false when f is
// dropped for this reader: its packets cannot be depacketized, or an
// earlier frame of its track could not and f is no keyframe.
func (r *Reader) accessUnit(f *Frame) ([][]byte, bool) {
	if !f.video {
		return f.AU, true
	}
	if !r.wantAU {
		return nil, true
	}
	if f.Track >= len(r.auSkip) {
		r.auSkip = append(r.auSkip, make([]bool, f.Track+1-len(r.auSkip))...)
	}
	if r.auSkip[f.Track] && !f.Key {
		r.countDrop()
		return nil, false
	}
	au, err := depacketize(f.h265, f.Packets)
	if err != nil {
		r.auSkip[f.Track] = true
		r.countDrop()
		if !r.auLogged {
			r.auLogged = true
			r.s.Log.Warn("a video frame cannot be read back from its packets: dropped for this reader until the next keyframe", "reader", r.label(), "err", err)
		}
		return nil, false
	}
	r.auSkip[f.Track] = false
	return au, true
}

// View is one frame for this reader without Next's per-reader copies of
// the packet headers, for an output that writes the headers itself (RTSP
// over TCP): Frame is the frame every reader shares, read-only; this
// reader's packet p carries sequence number Seq(p) and timestamp TS(p).
// A frame is never written once published, so a View stays valid for as
// long as it is held.
type View struct {
	Frame    *Frame
	SeqDelta uint16 // subtracted from the shared sequence numbers
	TSDelta  uint32 // added to the shared timestamps (a primed frame's squeeze)
	// Primed and Backlog as in Delivery.
	Primed  bool
	Backlog int
}

// Seq is p's sequence number for this reader.
func (v *View) Seq(p *rtp.Packet) uint16 { return p.SequenceNumber - v.SeqDelta }

// TS is p's timestamp for this reader.
func (v *View) TS(p *rtp.Packet) uint32 { return p.Timestamp + v.TSDelta }

// NextView is Next without the header copies and without access units (a
// video Frame's AU is nil, whatever ReaderConf.AU says): it blocks until
// the next frame for this reader, the reader's end, or ctx. Don't mix it
// with Next on one reader in a way that relies on a Delivery after
// NextView.
func (r *Reader) NextView(ctx context.Context) (View, error) {
	it, err := r.take(ctx)
	if err != nil {
		return View{}, err
	}
	return r.view(it), nil
}

// TryNextView is NextView without waiting: the next frame if one is
// queued already, else false. An output that writes several frames with
// one system call gathers those that arrived together (a camera's audio
// and video, or two frames the camera sent at once) and adds no delay.
func (r *Reader) TryNextView() (View, bool) {
	select {
	case it := <-r.ch:
		r.queued.Add(-int64(it.f.Bytes))
		return r.view(it), true
	default:
		return View{}, false
	}
}

// view delivers it as a View.
func (r *Reader) view(it item) View {
	r.delivered(it)
	return View{Frame: it.f, SeqDelta: it.seqDelta, TSDelta: it.tsDelta, Primed: it.primed, Backlog: len(r.ch)}
}

// take returns the reader's next queued frame (after returning the last
// delivery's packets to the pool).
func (r *Reader) take(ctx context.Context) (item, error) {
	r.releaseBuf()
	var it item
	select {
	case it = <-r.ch:
		r.queued.Add(-int64(it.f.Bytes))
	case <-r.done:
		return item{}, r.err
	case <-ctx.Done():
		return item{}, ctx.Err()
	}
	return it, nil
}

// delivered counts a frame's payload bytes as delivered.
func (r *Reader) delivered(it item) {
	r.statsMu.Lock()
	r.bytes += uint64(it.f.Bytes)
	r.statsMu.Unlock()
}

// releaseBuf returns the last delivery's packets to the stream's pool,
// cleared so that a pooled slice pins no frame's payload.
func (r *Reader) releaseBuf() {
	if r.buf == nil {
		return
	}
	clear(*r.buf)
	*r.buf = (*r.buf)[:0]
	r.s.deliveries.Put(r.buf)
	r.buf = nil
}
