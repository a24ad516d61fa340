package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"cordon/config"
	"cordon/internal/testtool"
	"cordon/record"
	"cordon/relay"
)

// A real x264 SPS/PPS (the sanitizer drops parameter sets that do not
// parse), and slices of the given size.
var (
	recTestSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48}
	recTestPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

func recTestSlice(idr bool, size int) []byte {
	b := make([]byte, size)
	b[0], b[1] = 0x41, 0x9a
	if idr {
		b[0], b[1] = 0x65, 0x88
	}
	return b
}

func recTestStream(t *testing.T) *relay.Stream {
	t.Helper()
	s := &relay.Stream{Camera: "cam", QueueFrames: 32, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var recTestTracks = []relay.Track{
	{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{recTestSPS, recTestPPS}},
	{Kind: relay.KindAudio, Codec: relay.CodecPCMU, ClockRate: 8000, Channels: 1},
}

// The recorder's feed is a non-viewer reader: it waits for the camera,
// maps the tracks, hands over the sanitized access units as they are
// (DTS = PTS), and ends when the codecs change.
func TestStreamSourceFeed(t *testing.T) {
	st := recTestStream(t)
	src := streamSource{stream: func() *relay.Stream { return st }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opened := make(chan record.Feed, 1)
	go func() {
		f, err := src.Open(ctx)
		if err != nil {
			t.Errorf("Open: %v", err)
			close(opened)
			return
		}
		opened <- f
	}()
	testtool.WaitFor(t, 10*time.Second, "the recorder's reader attached", func() bool { return st.Info().Consumers["record"] == 1 })
	if in := st.Info(); in.Viewers() != 0 {
		t.Fatalf("the recorder counts as a viewer: %+v", in)
	}
	if err := st.CameraConnected(recTestTracks); err != nil {
		t.Fatal(err)
	}
	feed := testtool.Recv(t, opened, 10*time.Second, "the feed")
	defer feed.Close()
	tr := feed.Tracks()
	if len(tr) != 2 || tr[0].Codec != record.CodecH264 || tr[1].Codec != record.CodecPCMU || tr[1].ClockRate != 8000 || len(tr[0].ParamSets) != 2 {
		t.Fatalf("tracks %+v", tr)
	}
	key := recTestSlice(true, 500)
	if err := st.WriteUnit(relay.Unit{Track: 0, PTS: time.Second, AU: [][]byte{recTestSPS, recTestPPS, key}}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteUnit(relay.Unit{Track: 1, PTS: time.Second + 20*time.Millisecond, AU: [][]byte{make([]byte, 160)}}); err != nil {
		t.Fatal(err)
	}
	s, err := feed.Next(ctx)
	if err != nil || s.Track != 0 || !s.Key || s.PTS != s.DTS || len(s.Data) != 3 || s.Data[2][0] != 0x65 || len(s.Data[2]) != 500 {
		t.Fatalf("video sample %+v, %v", s, err)
	}
	a, err := feed.Next(ctx)
	if err != nil || a.Track != 1 || len(a.Data) != 1 || len(a.Data[0]) != 160 || a.DTS-s.DTS != 20*time.Millisecond {
		t.Fatalf("audio sample %+v, %v", a, err)
	}
	// a reconnect with other codecs ends the feed; the recorder reopens
	st.CameraDisconnected(errors.New("gone"))
	if err := st.CameraConnected(recTestTracks[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := feed.Next(ctx); !errors.Is(err, relay.ErrTracksChanged) {
		t.Fatalf("after a codec change: %v", err)
	}
}

// A recorder that does not read never holds up the stream: its reader
// drops (counted) and a viewer keeps every frame.
func TestStreamSourceNeverStallsTheStream(t *testing.T) {
	st := recTestStream(t)
	if err := st.CameraConnected(recTestTracks[:1]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	feed, err := streamSource{stream: func() *relay.Stream { return st }}.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	viewer, err := st.AddReader(relay.ReaderConf{Protocol: "webrtc", QueueFrames: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	if _, err := viewer.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		au := [][]byte{recTestSlice(false, 200)}
		if i%30 == 0 {
			au = [][]byte{recTestSPS, recTestPPS, recTestSlice(true, 200)}
		}
		if err := st.WriteUnit(relay.Unit{Track: 0, PTS: time.Duration(i) * 66 * time.Millisecond, AU: au}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if _, err := viewer.Next(ctx); err != nil {
			t.Fatalf("viewer frame %d: %v", i, err)
		}
	}
	dropped, _ := feed.(*streamFeed).r.Stats()
	if dropped == 0 {
		t.Fatal("the recorder's reader never dropped although nobody read it")
	}
}

// The attachment follows `record` on reload and the node's ownership, and
// stops with the unit.
func TestRecordingAttachmentFollowsConfig(t *testing.T) {
	rec := &record.Recorder{Path: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := rec.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	st := recTestStream(t)
	a := &Recording{rec: rec, id: "cam", stream: func() *relay.Stream { return st }, local: true, log: rec.Log}
	check := func(step string, want bool) {
		t.Helper()
		if rec.Recording("cam") != want || a.Active() != want {
			t.Fatalf("%s: recording %v, want %v", step, rec.Recording("cam"), want)
		}
		consumers := 0
		testtool.WaitFor(t, 10*time.Second, step+": the recorder's reader", func() bool {
			consumers = st.Info().Consumers["record"]
			return (consumers == 1) == want
		})
	}
	a.Reload(config.Camera{ID: "cam"})
	check("record: false", false)
	a.Reload(config.Camera{ID: "cam", Record: true})
	check("record: true", true)
	a.SetLocal(false)
	check("owned by another node", false)
	a.SetLocal(true)
	check("owned again", true)
	a.Close()
	check("unit closed", false)
	a.Reload(config.Camera{ID: "cam", Record: true})
	check("reload after close", false)
}
