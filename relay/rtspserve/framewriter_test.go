package rtspserve

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"cordon/internal/testtool"
	"cordon/relay"
)

// Over TCP the frames go out through the frame writer: a gortsplib client
// gets every video and audio packet with the SSRC announced in SETUP and
// continuous sequence numbers, and sender reports for both tracks on
// their RTCP channels, with the same SSRC and a timestamp of the stream.
func TestTCPFramesAndSenderReports(t *testing.T) {
	f := newFixture(t, false)
	c, desc, err := dial(t, f.url("alice:s3cret-A", "gate"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ssrc := map[*description.Media]uint32{}
	lastTS := map[*description.Media]uint32{}
	last := map[*description.Media]uint16{}
	pkts := map[*description.Media]int{}
	srs := map[*description.Media][]*rtcp.SenderReport{}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, p *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := ssrc[m]; ok && s != p.SSRC {
			t.Errorf("%s: SSRC changed %x -> %x", m.Type, s, p.SSRC)
		}
		if n, ok := last[m]; ok && p.SequenceNumber != n+1 {
			t.Errorf("%s: sequence %d after %d", m.Type, p.SequenceNumber, n)
		}
		ssrc[m], last[m], lastTS[m] = p.SSRC, p.SequenceNumber, p.Timestamp
		pkts[m]++
	})
	c.OnPacketRTCPAny(func(m *description.Media, p rtcp.Packet) {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			mu.Lock()
			srs[m] = append(srs[m], sr)
			mu.Unlock()
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, 10*time.Second, "packets and a sender report on both tracks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(srs) == 2 && pkts[desc.Medias[0]] > 30 && pkts[desc.Medias[1]] > 5
	})
	mu.Lock()
	defer mu.Unlock()
	for m, list := range srs {
		sr := list[0]
		if sr.SSRC != ssrc[m] || sr.PacketCount == 0 || sr.OctetCount == 0 {
			t.Errorf("%s: sender report %+v, media SSRC %x", m.Type, sr, ssrc[m])
		}
		if d := int32(lastTS[m] - sr.RTPTime); d < 0 || d > 10*90000 {
			t.Errorf("%s: sender report timestamp %d, latest packet %d", m.Type, sr.RTPTime, lastTS[m])
		}
		if age := time.Since(time.Unix(int64(sr.NTPTime>>32)-2208988800, 0)); age < -2*time.Second || age > 30*time.Second {
			t.Errorf("%s: sender report NTP time %v off", m.Type, age)
		}
	}
}

// frameWriter.write marshals a frame as interleaved records, one Write
// per frame (and a sender report when due), with the session's SSRC.
func TestFrameWriterOneWritePerFrame(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &frameWriter{conn: &countConn{Conn: a}, timeout: time.Second, chans: []int{2}, ssrcs: []uint32{0xabcd}, clocks: []int{90000},
		sr: make([]srState, 1), now: time.Now}
	d := relay.Delivery{Track: 0, Packets: []rtp.Packet{
		{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 900, SSRC: 1}, Payload: bytes.Repeat([]byte{1}, 1100)},
		{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 8, Timestamp: 900, SSRC: 1, Marker: true}, Payload: []byte{2, 3}},
	}}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := b.Read(buf)
		got <- buf[:n]
	}()
	if err := w.write(viewOf(d)); err != nil {
		t.Fatal(err)
	}
	out := <-got
	cc := w.conn.(*countConn)
	if cc.writes != 1 {
		t.Fatalf("%d writes for one frame", cc.writes)
	}
	// two RTP records, then the sender report on channel 3
	off := 0
	for i, want := range []struct {
		ch  byte
		seq uint16
	}{{2, 7}, {2, 8}} {
		if out[off] != '$' || out[off+1] != want.ch {
			t.Fatalf("record %d: header % x", i, out[off:off+4])
		}
		n := int(out[off+2])<<8 | int(out[off+3])
		var p rtp.Packet
		if err := p.Unmarshal(out[off+4 : off+4+n]); err != nil || p.SSRC != 0xabcd || p.SequenceNumber != want.seq ||
			p.Version != 2 || p.PayloadType != 96 || p.Timestamp != 900 || p.Marker != (i == 1) || len(p.Payload) != len(d.Packets[i].Payload) {
			t.Fatalf("record %d: %v %+v", i, err, p.Header)
		}
		off += 4 + n
	}
	if out[off] != '$' || out[off+1] != 3 {
		t.Fatalf("no sender report after the frame: % x", out[off:min(len(out), off+8)])
	}
}

type countConn struct {
	net.Conn
	writes    int
	deadlines []time.Time
}

func (c *countConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return c.Conn.SetWriteDeadline(t)
}

// The write deadline moves once less than half the timeout is left, not
// on every frame, and every Write has at least half the timeout.
func TestFrameWriterDeadlineRefresh(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	now := time.Now() // net.Pipe checks deadlines against the real clock
	cc := &countConn{Conn: a}
	w := &frameWriter{conn: cc, timeout: 10 * time.Second, chans: []int{0}, ssrcs: []uint32{1}, clocks: []int{90000},
		sr: make([]srState, 1), now: func() time.Time { return now }}
	d := relay.Delivery{Track: 0, Primed: true, Packets: []rtp.Packet{{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: []byte{1}}}}
	for range 250 { // 10 s of frames at 25 fps
		if err := w.write(viewOf(d)); err != nil {
			t.Fatal(err)
		}
		if left := cc.deadlines[len(cc.deadlines)-1].Sub(now); left < 5*time.Second {
			t.Fatalf("a write with %v left before its deadline", left)
		}
		now = now.Add(40 * time.Millisecond)
	}
	if len(cc.deadlines) != 2 {
		t.Fatalf("deadline set %d times over 10 s with a 10 s timeout, want 2", len(cc.deadlines))
	}
}

// A header with a CSRC list goes through pion's marshaller, with the
// session's SSRC.
func TestFrameWriterFullHeader(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &frameWriter{conn: a, timeout: time.Second, chans: []int{0}, ssrcs: []uint32{0xabcd}, clocks: []int{90000},
		sr: make([]srState, 1), now: time.Now}
	d := relay.Delivery{Track: 0, Primed: true, Packets: []rtp.Packet{{Header: rtp.Header{Version: 2, PayloadType: 97, SequenceNumber: 3,
		Timestamp: 77, SSRC: 1, CSRC: []uint32{5, 6}, Marker: true}, Payload: []byte{9, 9}}}}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := b.Read(buf)
		got <- buf[:n]
	}()
	if err := w.write(viewOf(d)); err != nil {
		t.Fatal(err)
	}
	out := <-got
	var p rtp.Packet
	if err := p.Unmarshal(out[4:]); err != nil || p.SSRC != 0xabcd || len(p.CSRC) != 2 || !p.Marker || p.Timestamp != 77 || len(p.Payload) != 2 {
		t.Fatalf("%v %+v", err, p.Header)
	}
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes++
	return c.Conn.Write(b)
}

// A session's buffer is sized once per larger frame and bounded: a
// keyframe beyond frameBufLimit is written in several Writes from a buffer
// of at most bufCap, and once it has seen the largest frame, writing
// allocates nothing (append's doubling used to re-allocate it as ever
// larger keyframes came, up to 1 MiB per reader).
func TestFrameWriterBufferBounded(t *testing.T) {
	cc := &countConn{Conn: discardConn{}}
	// SSRC 2, not the relay's 1: this reader builds its own records
	w := &frameWriter{conn: cc, timeout: time.Minute, chans: []int{0}, ssrcs: []uint32{2}, clocks: []int{90000},
		sr: make([]srState, 1), now: time.Now}
	p, key := viewOf(knownFrame(20)), viewOf(knownFrame(300)) // ~17 KB and ~260 KB
	if err := w.write(p); err != nil {
		t.Fatal(err)
	}
	if c := cap(w.buf); c < p.Frame.Bytes || c > bufCap {
		t.Fatalf("after a %d-byte frame the buffer holds %d bytes", p.Frame.Bytes, c)
	}
	cc.writes = 0
	if err := w.write(key); err != nil {
		t.Fatal(err)
	}
	if c := cap(w.buf); c != bufCap {
		t.Fatalf("after a %d-byte keyframe the buffer holds %d bytes, want the bound %d", key.Frame.Bytes, c, bufCap)
	}
	if min := key.Frame.Bytes / bufCap; cc.writes < min+1 || cc.writes > min+2 {
		t.Fatalf("a %d-byte keyframe took %d writes", key.Frame.Bytes, cc.writes)
	}
	if a := testing.AllocsPerRun(20, func() {
		_ = w.write(p)
		_ = w.write(key)
	}); a != 0 {
		t.Fatalf("%.1f allocations per P-frame and keyframe once the buffer is sized", a)
	}
}

// discardConn is a net.Conn whose writes succeed and go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// A sender report maps a live frame's timestamp to the time the frame
// reached the relay, also when the frame waited in the reader's queue
// (Backlog > 0: a camera's audio and video frames arrive together, so one
// of them always waits; requiring an empty queue left that track without
// reports); a frame from the cached GOP never gets one.
func TestFrameWriterSenderReportTime(t *testing.T) {
	rc := &recordConn{}
	now := time.Date(2026, 11, 30, 12, 0, 10, 0, time.UTC)
	w := &frameWriter{conn: rc, timeout: time.Minute, chans: []int{0}, ssrcs: []uint32{7}, clocks: []int{90000},
		sr: make([]srState, 1), now: func() time.Time { return now }}
	pkt := func(ts uint32) relay.Delivery {
		return relay.Delivery{Track: 0, Packets: []rtp.Packet{{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: ts, Marker: true}, Payload: []byte{1, 2}}}}
	}
	reports := func() []rtcp.SenderReport {
		var out []rtcp.SenderReport
		for b := rc.buf; len(b) >= 4; {
			n := int(b[2])<<8 | int(b[3])
			if b[1] == 1 {
				var sr rtcp.SenderReport
				if err := sr.Unmarshal(b[4 : 4+n]); err != nil {
					t.Fatal(err)
				}
				out = append(out, sr)
			}
			b = b[4+n:]
		}
		rc.buf = nil
		return out
	}
	primed := viewOf(pkt(1000))
	primed.Primed = true
	if err := w.write(primed); err != nil {
		t.Fatal(err)
	}
	if r := reports(); len(r) != 0 {
		t.Fatalf("a sender report for a frame from the cached GOP: %+v", r)
	}
	arrived := now.Add(-80 * time.Millisecond)
	live := viewOf(pkt(9000))
	live.Backlog, live.Frame.Time = 1, arrived
	if err := w.write(live); err != nil {
		t.Fatal(err)
	}
	r := reports()
	if len(r) != 1 || r[0].RTPTime != 9000 || r[0].NTPTime != ntpTime(arrived) || r[0].SSRC != 7 {
		t.Fatalf("reports %+v for a live frame one behind in the queue, want RTP 9000 at NTP %x", r, ntpTime(arrived))
	}
}

// recordConn keeps what is written to it.
type recordConn struct {
	net.Conn
	buf []byte
}

func (c *recordConn) Write(b []byte) (int, error)    { c.buf = append(c.buf, b...); return len(b), nil }
func (*recordConn) SetWriteDeadline(time.Time) error { return nil }

// Frames added one after the other (those already queued when the pump
// wakes) go out with one Write, byte for byte what writing them one by
// one sends; a frame that does not fit what is left of the buffer
// flushes first, so the buffer keeps its bound and, once sized, nothing
// is allocated.
func TestFrameWriterGathersQueuedFrames(t *testing.T) {
	newW := func(c net.Conn) *frameWriter {
		return &frameWriter{conn: c, timeout: time.Minute, chans: []int{0}, ssrcs: []uint32{9}, clocks: []int{90000},
			sr: make([]srState, 1), now: func() time.Time { return time.Unix(1e9, 0) }}
	}
	a, b := viewOf(knownFrame(20)), viewOf(knownFrame(21)) // two ~17 KB frames
	one := &recordConn{}
	w1 := newW(one)
	if err := w1.write(a); err != nil {
		t.Fatal(err)
	}
	if err := w1.write(b); err != nil {
		t.Fatal(err)
	}
	rc := &recordConn{}
	cc := &countConn{Conn: rc}
	w := newW(cc)
	if err := w.add(a); err != nil {
		t.Fatal(err)
	}
	if err := w.add(b); err != nil {
		t.Fatal(err)
	}
	if cc.writes != 0 {
		t.Fatalf("%d writes before the flush", cc.writes)
	}
	if err := w.flush(w.now()); err != nil {
		t.Fatal(err)
	}
	if cc.writes != 1 || !bytes.Equal(rc.buf, one.buf) {
		t.Fatalf("%d writes, %d bytes; want 1 write of the %d bytes two writes send", cc.writes, len(rc.buf), len(one.buf))
	}
	// a keyframe after a P-frame: the P-frame is flushed first, and the
	// buffer stays within its bound
	key := viewOf(knownFrame(300))
	cc.writes = 0
	if err := w.add(a); err != nil {
		t.Fatal(err)
	}
	if err := w.add(key); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(w.now()); err != nil {
		t.Fatal(err)
	}
	if c := cap(w.buf); c > bufCap {
		t.Fatalf("gathering grew the buffer to %d bytes, past its bound %d", c, bufCap)
	}
	if cc.writes < 2 {
		t.Fatalf("a P-frame and a %d-byte keyframe in %d writes", key.Frame.Bytes, cc.writes)
	}
	if n := testing.AllocsPerRun(20, func() {
		_ = w.add(a)
		_ = w.add(b)
		_ = w.add(key)
		_ = w.flush(w.now())
	}); n != 0 {
		t.Fatalf("%.1f allocations per gathered write once the buffer is sized", n)
	}
}

// sliceConn records the backing array of each Write.
type sliceConn struct {
	discardConn
	first []*byte
	bytes [][]byte
}

func (c *sliceConn) Write(b []byte) (int, error) {
	c.first = append(c.first, &b[0])
	c.bytes = append(c.bytes, bytes.Clone(b))
	return len(b), nil
}

// Readers that dropped nothing and announced the relay's SSRC write one
// frame's records from the same bytes: the first builds them, the others
// neither build nor copy (their Write gets the very same array, and
// nothing is allocated). A reader on another channel, or one with deltas
// (it dropped frames), builds its own, byte for byte what it would
// without sharing. A frame gathered after a shared one joins it in one
// Write, and a due sender report follows the records.
func TestFrameWriterSharesRecords(t *testing.T) {
	now := time.Unix(1e9, 0)
	newW := func(c net.Conn, ch int) *frameWriter {
		return &frameWriter{conn: c, timeout: time.Minute, chans: []int{ch}, ssrcs: []uint32{1}, clocks: []int{90000},
			sr: []srState{{lastSR: now}}, now: func() time.Time { return now }}
	}
	v := viewOf(knownFrame(20))
	a, b, other := &sliceConn{}, &sliceConn{}, &sliceConn{}
	wa, wb, wo := newW(a, 0), newW(b, 0), newW(other, 2)
	for _, w := range []*frameWriter{wa, wb, wo} {
		if err := w.write(v); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.first) != 1 || len(b.first) != 1 || a.first[0] != b.first[0] {
		t.Fatal("two readers on the same channel did not write the same records")
	}
	d := knownFrame(20)
	if !bytes.Equal(a.bytes[0], expectRecords(t, d, 0, 0, 0, 1, now)[:len(a.bytes[0])]) {
		t.Fatal("shared records differ from the expected ones")
	}
	if other.first[0] == a.first[0] || !bytes.Equal(other.bytes[0], expectRecords(t, d, 0, 0, 2, 1, now)[:len(other.bytes[0])]) {
		t.Fatal("a reader on channel 2 got channel 0's records")
	}
	wb.conn = discardConn{}
	if n := testing.AllocsPerRun(50, func() { _ = wb.write(v) }); n != 0 {
		t.Fatalf("%.1f allocations writing shared records", n)
	}
	// a reader that dropped frames (a sequence offset), and one primed
	// from the cached GOP with squeezed timestamps (a timestamp offset
	// only), while the shared records are built: each writes its own
	for _, c := range []struct {
		name   string
		seq    uint16
		ts     uint32
		primed bool
	}{{"dropped", 3, 0, false}, {"squeezed", 0, 500, true}} {
		own := viewOf(knownFrame(20))
		own.SeqDelta, own.TSDelta, own.Primed = c.seq, c.ts, c.primed
		if _, ok := own.Frame.SharedEncoding(0, encodeRecords); !ok { // as if another reader had built them
			t.Fatal("no shared records")
		}
		rc := &sliceConn{}
		if err := newW(rc, 0).write(own); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rc.bytes[0], expectRecords(t, d, c.seq, c.ts, 0, 1, now)[:len(rc.bytes[0])]) {
			t.Fatalf("%s: a reader with offsets wrote wrong records", c.name)
		}
	}

	// gathered: shared records, then another frame's, then a due report
	v2 := viewOf(knownFrame(21))
	g := &sliceConn{}
	wg := newW(g, 0)
	wg.sr[0].lastSR = now.Add(-time.Minute)
	if err := wg.add(v); err != nil {
		t.Fatal(err)
	}
	if err := wg.add(v2); err != nil {
		t.Fatal(err)
	}
	if err := wg.flush(now); err != nil {
		t.Fatal(err)
	}
	want2 := expectRecords(t, knownFrame(21), 0, 0, 0, 1, now)
	all := append(expectRecords(t, d, 0, 0, 0, 1, now), want2[:len(want2)-32]...) // the second frame's report is not due
	if len(g.bytes) != 1 || !bytes.Equal(g.bytes[0], all) {
		t.Fatalf("%d writes; gathered bytes differ at %d", len(g.bytes), firstDiff(g.bytes[0], all))
	}
}
