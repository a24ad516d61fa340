package relay

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/internal/clock"
	"cordon/relay/sanitize"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A real 320x240 constrained-baseline SPS/PPS pair (x264).
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48} // x264 baseline 3.0, 640x480 (the sanitizer drops parameter sets that do not parse)
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

func idr(size int) []byte {
	b := make([]byte, size)
	b[0] = 0x65
	b[1] = 0x88
	return b
}

func pslice(size int) []byte {
	b := make([]byte, size)
	b[0] = 0x41
	b[1] = 0x9a
	return b
}

type demandRec struct {
	mu    sync.Mutex
	calls []bool
}

func (d *demandRec) SetDemand(w bool) {
	d.mu.Lock()
	d.calls = append(d.calls, w)
	d.mu.Unlock()
}

func newTestStream(t *testing.T, queue int) *Stream {
	t.Helper()
	s := &Stream{Camera: "cam", QueueFrames: queue}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var h264Track = Track{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}}
var pcmuTrack = Track{Kind: KindAudio, Codec: CodecPCMU, ClockRate: 8000}

// feed writes n video frames at 25 fps starting at pts0, GOP of gop frames.
func feed(t *testing.T, s *Stream, pts0 time.Duration, first, n, gop int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		var au [][]byte
		if i%gop == 0 {
			au = [][]byte{testSPS, testPPS, idr(3000)}
		} else {
			au = [][]byte{pslice(500)}
		}
		if err := s.WriteUnit(Unit{Track: 0, PTS: pts0 + time.Duration(i)*40*time.Millisecond, AU: au}); err != nil {
			t.Fatal(err)
		}
	}
}

func next(t *testing.T, r *Reader) Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return d
}

// checker asserts a reader's packets have continuous sequence numbers and
// non-decreasing timestamps.
type checker struct {
	t       *testing.T
	haveSeq bool
	seq     uint16
	ts      uint32
}

func (c *checker) check(d Delivery) {
	c.t.Helper()
	for _, p := range d.Packets {
		if c.haveSeq {
			if p.SequenceNumber != c.seq+1 {
				c.t.Fatalf("sequence gap: %d after %d", p.SequenceNumber, c.seq)
			}
			if int32(p.Timestamp-c.ts) < 0 {
				c.t.Fatalf("timestamp went back: %d after %d", p.Timestamp, c.ts)
			}
		}
		c.haveSeq, c.seq, c.ts = true, p.SequenceNumber, p.Timestamp
		if len(p.Extensions) != 0 || len(p.CSRC) != 0 || p.Padding {
			c.t.Fatal("packet carries extensions, CSRCs or padding")
		}
	}
}

func TestFanOutAndGOPCache(t *testing.T) {
	s := newTestStream(t, 64)
	if err := s.CameraConnected([]Track{h264Track, pcmuTrack}); err != nil {
		t.Fatal(err)
	}
	// A viewer present from the start waits for the first keyframe.
	r1, err := s.AddReader(ReaderConf{Protocol: "webrtc"})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	if _, err := r1.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	feed(t, s, 5*time.Second, 0, 13, 10) // keyframe at 0 and 10: cache holds frames 10..12

	c1 := &checker{t: t}
	for i := 0; i < 13; i++ {
		d := next(t, r1)
		c1.check(d)
		if (i%10 == 0) != d.Key {
			t.Fatalf("frame %d key=%v", i, d.Key)
		}
	}

	// A late viewer gets the cached GOP at once, starting on the keyframe,
	// with timestamps squeezed up to the newest cached frame.
	r2, _ := s.AddReader(ReaderConf{Protocol: "rtsp"})
	defer r2.Close()
	tracks, err := r2.WaitReady(context.Background())
	if err != nil || len(tracks) != 2 {
		t.Fatalf("tracks %v err %v", tracks, err)
	}
	if tracks[0].ProfileLevelID != "42c01e" {
		t.Fatalf("profile-level-id %q", tracks[0].ProfileLevelID)
	}
	c2 := &checker{t: t}
	d := next(t, r2)
	if !d.Key {
		t.Fatal("late viewer did not start on a keyframe")
	}
	c2.check(d)
	first := d.Packets[0].Timestamp
	c2.check(next(t, r2))
	d = next(t, r2)
	c2.check(d)
	if got := d.Packets[0].Timestamp - first; got != 2 {
		t.Fatalf("cached frames should be squeezed 1 tick apart, spread %d", got)
	}
	// live continues after the cache with the original spacing
	feed(t, s, 5*time.Second, 13, 1, 10)
	d = next(t, r2)
	c2.check(d)
	if gap := d.Packets[0].Timestamp - first; gap < 3600 || gap > 3700 {
		t.Fatalf("live frame after cache at +%d ticks, want ~3602", gap)
	}
	c1.check(next(t, r1))

	// audio goes through with its own clock
	if err := s.WriteUnit(Unit{Track: 1, PTS: 5*time.Second + 520*time.Millisecond, AU: [][]byte{make([]byte, 160)}}); err != nil {
		t.Fatal(err)
	}
	if d := next(t, r1); d.Track != 1 || len(d.Packets[0].Payload) != 160 || d.Packets[0].PayloadType != 0 {
		t.Fatalf("audio delivery %+v", d)
	}
	in := s.Info()
	if !in.Online || in.Readers["webrtc"] != 1 || in.Readers["rtsp"] != 1 {
		t.Fatalf("info %+v", in)
	}
}

func TestSlowReaderDropsOnlyItsOwnFrames(t *testing.T) {
	s := newTestStream(t, 8)
	_ = s.CameraConnected([]Track{h264Track})
	slow, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	defer slow.Close()
	fast, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	defer fast.Close()
	_, _ = slow.WaitReady(context.Background())
	_, _ = fast.WaitReady(context.Background())

	got := make(chan struct{}, 1024)
	cf := &checker{t: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := fast.Next(context.Background())
			if err != nil {
				return
			}
			cf.check(d)
			got <- struct{}{}
		}
	}()
	received := 0
	waitFast := func(n int) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for received < n {
			select {
			case <-got:
				received++
			case <-timeout:
				t.Fatalf("fast reader got %d of %d frames", received, n)
			}
		}
	}
	const n = 200
	for i := 0; i < n; i++ {
		feed(t, s, 0, i, 1, 25)
		// pace like a camera so the fast reader keeps up; the slow one never reads
		if i%8 == 7 {
			waitFast(i + 1)
		}
	}
	waitFast(n)
	dropped, _ := slow.Stats()
	if dropped < n-8-1 {
		t.Fatalf("slow reader dropped %d, want about %d", dropped, n-8)
	}
	// the slow reader resumes on a keyframe with continuous sequence numbers
	cs := &checker{t: t}
	for i := 0; i < 8; i++ {
		cs.check(next(t, slow))
	}
	feed(t, s, 0, n, 30, 25) // frames 200..229: keyframe at 200 and 225
	d := next(t, slow)
	cs.check(d)
	if !d.Key {
		t.Fatal("slow reader resumed on a non-keyframe")
	}
	fast.Close()
	<-done
}

func TestReconnectKeepsTimelineContinuous(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := &Stream{Camera: "cam", QueueFrames: 64, Clock: clk}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	_ = s.CameraConnected([]Track{h264Track})
	r, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	defer r.Close()
	_, _ = r.WaitReady(context.Background())
	feed(t, s, 100*time.Second, 0, 5, 5)
	c := &checker{t: t}
	for range 5 {
		c.check(next(t, r))
	}
	s.CameraDisconnected(errors.New("connection reset"))
	if s.Info().Online {
		t.Fatal("still online")
	}
	clk.Advance(700 * time.Millisecond)
	// camera comes back with timestamps reset to 0
	if err := s.CameraConnected([]Track{h264Track}); err != nil {
		t.Fatal(err)
	}
	before := c.ts
	feed(t, s, 0, 0, 5, 5)
	d := next(t, r)
	c.check(d)
	if !d.Key {
		t.Fatal("first frame after reconnect is not a keyframe")
	}
	if gap := d.Packets[0].Timestamp - before; gap != 90*700 {
		t.Fatalf("gap across reconnect %d ticks, want the 700 ms outage (%d)", gap, 90*700)
	}
	for range 4 {
		c.check(next(t, r))
	}
	// a jump inside one connection is re-based too
	feed(t, s, time.Hour, 5, 2, 5)
	c.check(next(t, r))
	c.check(next(t, r))
}

func TestCodecChangeEndsReaders(t *testing.T) {
	s := newTestStream(t, 8)
	_ = s.CameraConnected([]Track{h264Track})
	r, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	s.CameraDisconnected(nil)
	_ = s.CameraConnected([]Track{{Kind: KindVideo, Codec: CodecH265, ClockRate: 90000}})
	select {
	case <-r.Done():
	case <-time.After(time.Second):
		t.Fatal("reader not ended")
	}
	if !errors.Is(r.Err(), ErrTracksChanged) {
		t.Fatalf("err %v", r.Err())
	}
}

func TestDemandAndWaitReady(t *testing.T) {
	d := &demandRec{}
	s := &Stream{Camera: "od", Demand: d}
	_ = s.Initialize()
	defer s.Close()
	r1, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	r2, _ := s.AddReader(ReaderConf{Protocol: "rtsp"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, err := r1.WaitReady(ctx); err == nil {
		t.Fatal("WaitReady succeeded while offline")
	}
	cancel()
	ready := make(chan error, 1)
	go func() {
		_, err := r2.WaitReady(context.Background())
		ready <- err
	}()
	_ = s.CameraConnected([]Track{h264Track})
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	r1.Close()
	r2.Close()
	r2.Close() // idempotent
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.calls) != 2 || !d.calls[0] || d.calls[1] {
		t.Fatalf("demand calls %v, want [true false]", d.calls)
	}
}

func BenchmarkFanOut50(b *testing.B) {
	s := &Stream{Camera: "bench", QueueFrames: 1024}
	_ = s.Initialize()
	defer s.Close()
	_ = s.CameraConnected([]Track{h264Track})
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range 50 {
		r, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
		_, _ = r.WaitReady(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.Next(ctx); err != nil {
					return
				}
			}
		}()
	}
	p := [][]byte{pslice(10000)} // 2 Mbit/s at 25 fps
	k := [][]byte{testSPS, testPPS, idr(40000)}
	b.ReportAllocs()
	b.SetBytes(10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		au := p
		if i%50 == 0 {
			au = k
		}
		_ = s.WriteUnit(Unit{Track: 0, PTS: time.Duration(i) * 40 * time.Millisecond, AU: au})
	}
	b.StopTimer()
	cancel()
	wg.Wait()
}

// A reload that changes the SEI allow-list applies to a running stream.
func TestSetSanitizeAppliesToRunningStream(t *testing.T) {
	uuid := [16]byte{0x53, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x20, 0x56, 0x69, 0x64, 0x65, 0x6f, 0x2e, 0x2e, 0x2e, 0x30}
	sei := append([]byte{0x06, 0x05, 0x10}, uuid[:]...)
	sei = append(sei, 0x80)
	s := newTestStream(t, 64)
	_ = s.CameraConnected([]Track{h264Track})
	r, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	defer r.Close()
	_, _ = r.WaitReady(context.Background())
	hasSEI := func(d Delivery) bool {
		for _, p := range d.Packets {
			if bytes.Contains(p.Payload, uuid[:]) {
				return true
			}
		}
		return false
	}
	au := [][]byte{testSPS, testPPS, sei, idr(200)}
	_ = s.WriteUnit(Unit{Track: 0, PTS: 0, AU: au})
	if hasSEI(next(t, r)) {
		t.Fatal("SEI passed without being allow-listed")
	}
	s.SetSanitize(sanitize.Options{AllowSEIUUIDs: [][16]byte{uuid}})
	_ = s.WriteUnit(Unit{Track: 0, PTS: 40 * time.Millisecond, AU: au})
	if !hasSEI(next(t, r)) {
		t.Fatal("allow-listed SEI dropped after SetSanitize")
	}
}

// A reader that asks for access units (the recorder) gets the sanitized
// access unit beside the packets: video NAL units after the sanitizer, read
// back from the packets into its own copy, audio frames as written. A
// reader that does not (a viewer) gets the audio frames and no video NAL
// units.
func TestFrameCarriesAccessUnit(t *testing.T) {
	s := newTestStream(t, 64)
	_ = s.CameraConnected([]Track{h264Track, pcmuTrack})
	r1, _ := s.AddReader(ReaderConf{Protocol: "webrtc"})
	defer r1.Close()
	r2, _ := s.AddReader(ReaderConf{Consumer: "record", AU: true})
	defer r2.Close()
	_, _ = r1.WaitReady(context.Background())
	_, _ = r2.WaitReady(context.Background())
	aud := []byte{0x09, 0xf0} // an access unit delimiter: dropped by the sanitizer
	in := [][]byte{aud, testSPS, testPPS, idr(3000)}
	if err := s.WriteUnit(Unit{Track: 0, PTS: time.Second, AU: in}); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 160)
	frame[0] = 0x7f
	if err := s.WriteUnit(Unit{Track: 1, PTS: time.Second, AU: [][]byte{frame}}); err != nil {
		t.Fatal(err)
	}
	in[3][100] = 0xee // the stream kept its own copy
	var recorded [][]byte
	for _, r := range []*Reader{r1, r2} {
		v := next(t, r)
		if r == r1 {
			if v.Track != 0 || !v.Key || v.AU != nil {
				t.Fatalf("viewer's video delivery: track %d key %v, %d NAL units", v.Track, v.Key, len(v.AU))
			}
		} else if v.Track != 0 || !v.Key || len(v.AU) != 3 || !bytes.Equal(v.AU[0], testSPS) || !bytes.Equal(v.AU[1], testPPS) ||
			len(v.AU[2]) != 3000 || v.AU[2][100] != 0 {
			t.Fatalf("video delivery: track %d key %v, %d NAL units", v.Track, v.Key, len(v.AU))
		} else {
			recorded = v.AU
		}
		if v.Time.IsZero() {
			t.Fatal("delivery without arrival time")
		}
		// the packets carry exactly these NAL units
		var payload int
		for _, p := range v.Packets {
			payload += len(p.Payload)
		}
		if payload < len(testSPS)+len(testPPS)+3000 {
			t.Fatalf("packets carry %d payload bytes", payload)
		}
		a := next(t, r)
		if a.Track != 1 || len(a.AU) != 1 || !bytes.Equal(a.AU[0], frame) || !bytes.Equal(a.Packets[0].Payload, frame) {
			t.Fatalf("audio delivery %+v", a)
		}
	}
	// the recorder's NAL units are its own: the shared packets do not
	// change when it writes them, and they outlive the next call to Next
	for i := range recorded[2] {
		recorded[2][i] = 0xab
	}
	_ = s.WriteUnit(Unit{Track: 0, PTS: time.Second + 40*time.Millisecond, AU: [][]byte{testSPS, testPPS, idr(3000)}})
	v := next(t, r2)
	if len(v.AU) != 3 || len(v.AU[2]) != 3000 || v.AU[2][100] != 0 || recorded[2][100] != 0xab {
		t.Fatal("the recorder's access unit shares memory with the stream's packets")
	}
}

// A non-viewer reader (a recorder) keeps an on-demand camera pulled and
// gets frames, but is not counted as a viewer.
func TestConsumerReaderDemandsButIsNoViewer(t *testing.T) {
	d := &demandRec{}
	s := &Stream{Camera: "od", Demand: d}
	_ = s.Initialize()
	defer s.Close()
	rec, _ := s.AddReader(ReaderConf{Consumer: "record"})
	in := s.Info()
	if in.Viewers() != 0 || in.Consumers["record"] != 1 {
		t.Fatalf("info %+v", in)
	}
	v, _ := s.AddReader(ReaderConf{Protocol: "rtsp"})
	v.Close()
	_ = s.CameraConnected([]Track{h264Track})
	if _, err := rec.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	feed(t, s, 0, 0, 3, 25)
	for range 3 {
		next(t, rec)
	}
	rec.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.calls) != 2 || !d.calls[0] || d.calls[1] {
		t.Fatalf("demand calls %v: the recorder alone must keep the camera wanted", d.calls)
	}
}

// TestReaderQueueBytesBound: a stalled reader pins at most QueueBytes of
// frames (plus the one an empty queue always takes), however large the
// camera's frames.
func TestReaderQueueBytesBound(t *testing.T) {
	st := &Stream{Camera: "cam", QueueFrames: 256, QueueBytes: 1 << 20}
	if err := st.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CameraConnected([]Track{{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}}}); err != nil {
		t.Fatal(err)
	}
	r, err := st.AddReader(ReaderConf{Protocol: "rtsp"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	big := append([]byte{0x65, 0x88}, make([]byte, 300_000)...)
	for i := range 40 {
		if err := st.WriteUnit(Unit{Track: 0, PTS: time.Duration(i) * 40 * time.Millisecond, AU: [][]byte{testSPS, testPPS, big}}); err != nil {
			t.Fatal(err)
		}
	}
	if q := r.queued.Load(); q > 1<<20+400_000 {
		t.Fatalf("%d bytes queued for a stalled reader", q)
	}
	if dropped, _ := r.Stats(); dropped == 0 {
		t.Fatal("nothing dropped")
	}
	// it drains to zero
	for r.queued.Load() > 0 {
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
