package relay

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"cordon/democam"
)

const clipFrame = time.Second / democam.FPS

func bframeClip(t *testing.T) (*democam.Clip, Track) {
	t.Helper()
	clip, err := democam.LoadClip(democam.ClipBFrames)
	if err != nil {
		t.Fatal(err)
	}
	return clip, Track{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000, ParamSets: [][]byte{clip.SPS, clip.PPS}}
}

// writeClip writes the clip's access units in decode order with their
// presentation times, as a camera sends them, starting at pts0.
func writeClip(t *testing.T, s *Stream, clip *democam.Clip, pts0 time.Duration, n int) {
	t.Helper()
	for _, au := range clip.AUs[:n] {
		if err := s.WriteUnit(Unit{Track: 0, PTS: pts0 + time.Duration(au.PTS)*clipFrame, AU: au.NALUs}); err != nil {
			t.Fatalf("WriteUnit: %v", err)
		}
	}
}

// A camera whose SPS announces B-frames is served as it is to RTSP
// readers: every frame, PTS in presentation order carried by the RTP
// timestamps, DTS growing in delivery order and never after PTS. WebRTC
// readers (RefuseBFrames) are refused with ErrBFrames, whose message names
// B-frames and the fix.
func TestBFramesServedToRTSPRefusedToWebRTC(t *testing.T) {
	clip, tr := bframeClip(t)
	s := newTestStream(t, 256)
	rtsp, _ := s.AddReader(ReaderConf{Protocol: "rtsp"})
	defer rtsp.Close()
	web, _ := s.AddReader(ReaderConf{Protocol: "webrtc", RefuseBFrames: true})
	if err := s.CameraConnected([]Track{tr}); err != nil {
		t.Fatal(err)
	}
	// attached while offline, ended at the connection that announced them
	<-web.Done()
	if !errors.Is(web.Err(), ErrBFrames) {
		t.Fatalf("webrtc reader ended with %v", web.Err())
	}
	if _, err := s.AddReader(ReaderConf{Protocol: "webrtc", RefuseBFrames: true}); !errors.Is(err, ErrBFrames) {
		t.Fatalf("AddReader(RefuseBFrames) = %v, want ErrBFrames", err)
	}
	tracks, err := rtsp.WaitReady(context.Background())
	if err != nil || !tracks[0].BFrames || !s.Info().BFrames || !s.Info().Online {
		t.Fatalf("tracks %+v, info %+v, err %v", tracks, s.Info(), err)
	}
	n := 3 * 2 * democam.FPS / 2 // 1.5 GOPs (the clip's GOP is 2 s)
	writeClip(t, s, clip, 0, n)
	var got []Delivery
	for range n {
		d := next(t, rtsp)
		d.Packets = slices.Clone(d.Packets)
		got = append(got, d)
	}
	first := got[0]
	if !first.Key {
		t.Fatalf("first delivery %+v", first)
	}
	for i, d := range got {
		want := time.Duration(clip.AUs[i].PTS) * clipFrame
		if d.PTS-first.PTS != want {
			t.Fatalf("frame %d: PTS %v after the first, want %v (presentation order kept)", i, d.PTS-first.PTS, want)
		}
		ts := int64(int32(d.Packets[0].Timestamp - first.Packets[0].Timestamp))
		if ts != toTicks90k(want) {
			t.Fatalf("frame %d: RTP timestamp %d ticks after the first, want %d", i, ts, toTicks90k(want))
		}
		if d.DTS > d.PTS {
			t.Fatalf("frame %d: DTS %v after PTS %v", i, d.DTS, d.PTS)
		}
		if i > 0 && d.DTS <= got[i-1].DTS {
			t.Fatalf("frame %d: DTS %v not after %v", i, d.DTS, got[i-1].DTS)
		}
	}
	// a P frame sent before the B frames it anchors decodes well before
	// it is shown
	if got[1].PTS-got[1].DTS < 2*clipFrame {
		t.Fatalf("the first P frame: PTS %v, DTS %v", got[1].PTS, got[1].DTS)
	}
}

// A camera whose SPS does not say (no VUI restriction) but whose PTS goes
// back: the WebRTC reader that was watching ends with ErrBFrames, the RTSP
// reader keeps every frame.
func TestBFramesFoundByTimestamps(t *testing.T) {
	s := newTestStream(t, 64)
	if err := s.CameraConnected([]Track{h264Track}); err != nil {
		t.Fatal(err)
	}
	web, _ := s.AddReader(ReaderConf{Protocol: "webrtc", RefuseBFrames: true})
	rtsp, _ := s.AddReader(ReaderConf{Protocol: "rtsp"})
	defer rtsp.Close()
	for _, u := range []Unit{
		{PTS: 0, AU: [][]byte{testSPS, testPPS, idr(100)}},
		{PTS: 120 * time.Millisecond, AU: [][]byte{pslice(100)}},
	} {
		if err := s.WriteUnit(u); err != nil {
			t.Fatal(err)
		}
	}
	if d := next(t, web); !d.Key {
		t.Fatal("webrtc reader did not start on the keyframe")
	}
	if err := s.WriteUnit(Unit{PTS: 40 * time.Millisecond, AU: [][]byte{pslice(100)}}); err != nil {
		t.Fatalf("a reordered frame: %v", err)
	}
	<-web.Done()
	if !errors.Is(web.Err(), ErrBFrames) {
		t.Fatalf("webrtc reader ended with %v", web.Err())
	}
	var pts []time.Duration
	for range 3 {
		pts = append(pts, next(t, rtsp).PTS)
	}
	if pts[1]-pts[0] != 120*time.Millisecond || pts[2]-pts[0] != 40*time.Millisecond {
		t.Fatalf("rtsp PTS %v", pts)
	}
	if _, err := s.AddReader(ReaderConf{Protocol: "webrtc", RefuseBFrames: true}); !errors.Is(err, ErrBFrames) {
		t.Fatalf("AddReader after reordering: %v", err)
	}
}

// A new reader of a B-frame stream starts on the cached keyframe with the
// GOP's own timestamps (a squeeze would break presentation order); the
// operator fixing the camera (an SPS without reordering at the next
// connection) lets WebRTC readers in again.
func TestBFramesPrimingAndFix(t *testing.T) {
	clip, tr := bframeClip(t)
	s := newTestStream(t, 256)
	if err := s.CameraConnected([]Track{tr}); err != nil {
		t.Fatal(err)
	}
	writeClip(t, s, clip, time.Second, 10)
	r, _ := s.AddReader(ReaderConf{Protocol: "rtsp"})
	defer r.Close()
	if _, err := r.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := next(t, r)
	if !first.Key {
		t.Fatal("primed reader did not start on the keyframe")
	}
	ts0 := first.Packets[0].Timestamp
	for i := 1; i < 10; i++ {
		d := next(t, r)
		want := toTicks90k(time.Duration(clip.AUs[i].PTS) * clipFrame)
		if got := int64(int32(d.Packets[0].Timestamp - ts0)); got != want {
			t.Fatalf("primed frame %d at %d ticks, want %d", i, got, want)
		}
	}
	s.CameraDisconnected(nil)
	if err := s.CameraConnected([]Track{h264Track}); err != nil {
		t.Fatal(err)
	}
	web, err := s.AddReader(ReaderConf{Protocol: "webrtc", RefuseBFrames: true})
	if err != nil {
		t.Fatalf("webrtc reader after the fix: %v", err)
	}
	web.Close()
	if s.Info().BFrames {
		t.Fatal("still reported as B-frames")
	}
}
