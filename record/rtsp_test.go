package record

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"cordon/democam"
)

// rtspSource reads a camera with a real gortsplib client (TCP), like the
// gateway's ingest, and hands the recorder H.264 access units and PCMU
// frames. It stands in for the relay reader the wiring will adapt.
type rtspSource struct {
	url string
}

func (s rtspSource) Open(ctx context.Context) (Feed, error) {
	u, err := base.ParseURL(s.url)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.ProtocolTCP
	cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 5 * time.Second}
	if err := cl.Start(); err != nil {
		return nil, err
	}
	f := &rtspFeed{cl: cl, ch: make(chan Sample, 4096), done: make(chan struct{})}
	if err := f.setup(u); err != nil {
		cl.Close()
		return nil, err
	}
	go func() {
		_ = cl.Wait()
		close(f.done)
	}()
	return f, nil
}

type rtspFeed struct {
	cl     *gortsplib.Client
	tracks []Track
	ch     chan Sample
	done   chan struct{}
}

func (f *rtspFeed) setup(u *base.URL) error {
	desc, _, err := f.cl.Describe(u)
	if err != nil {
		return err
	}
	var h *format.H264
	vm := desc.FindFormat(&h)
	if vm == nil {
		return errors.New("no H.264")
	}
	dec, err := h.CreateDecoder()
	if err != nil {
		return err
	}
	f.tracks = []Track{{Codec: CodecH264, ParamSets: [][]byte{h.SPS, h.PPS}}}
	if _, err := f.cl.Setup(desc.BaseURL, vm, 0, 0); err != nil {
		return err
	}
	f.cl.OnPacketRTP(vm, h, func(p *rtp.Packet) {
		// PTS of every packet (gortsplib's decoder starts on a keyframe
		// packet), then the access unit when complete
		pts, ok := f.cl.PacketPTS(vm, p)
		au, err := dec.Decode(p)
		if err != nil || !ok {
			return
		}
		d := fromTicks(pts, 90000)
		f.put(Sample{Track: 0, Key: h264.IsRandomAccess(au), PTS: d, DTS: d, Data: au})
	})
	var g *format.G711
	if am := desc.FindFormat(&g); am != nil {
		f.tracks = append(f.tracks, Track{Codec: CodecPCMU, ClockRate: 8000, Channels: 1})
		if _, err := f.cl.Setup(desc.BaseURL, am, 0, 0); err != nil {
			return err
		}
		f.cl.OnPacketRTP(am, g, func(p *rtp.Packet) {
			pts, ok := f.cl.PacketPTS(am, p)
			if !ok {
				return
			}
			d := fromTicks(pts, 8000)
			f.put(Sample{Track: 1, PTS: d, DTS: d, Data: [][]byte{append([]byte(nil), p.Payload...)}})
		})
	}
	_, err = f.cl.Play(nil)
	return err
}

func (f *rtspFeed) put(s Sample) {
	select {
	case f.ch <- s:
	default: // a stalled test reader: drop, as a relay reader would
	}
}

func (f *rtspFeed) Tracks() []Track { return f.tracks }

func (f *rtspFeed) Next(ctx context.Context) (Sample, error) {
	select {
	case s := <-f.ch:
		return s, nil
	case <-f.done:
		return Sample{}, errors.New("camera connection ended")
	case <-ctx.Done():
		return Sample{}, ctx.Err()
	}
}

func (f *rtspFeed) Close() { f.cl.Close() }

// startDemoCamera starts a democam camera with PCMU audio on loopback.
func startDemoCamera(t testing.TB) *democam.Camera {
	t.Helper()
	c := &democam.Camera{ID: "rec", Listen: "127.0.0.1:0", DisableUDP: true, Audio: true, Path: "Streaming/Channels/101"}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRecordDemoCameraOverRTSP records a real democam camera through a
// real RTSP client for a few seconds in real time, then checks every
// segment with ffprobe.
func TestRecordDemoCameraOverRTSP(t *testing.T) {
	cam := startDemoCamera(t)
	dir := t.TempDir()
	closed := make(chan string, 16)
	r := &Recorder{Path: dir, SegmentDuration: 2 * time.Second, Log: quietLog(), Auditor: &memAudit{},
		segmentClosed: func(cam string) { closed <- cam }}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	began := time.Now()
	if err := r.StartCamera("gate", rtspSource{url: cam.URL()}); err != nil {
		t.Fatal(err)
	}
	// three closed segments: about 6 s of recording
	for range 3 {
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("no segment closed within 30 s")
		}
	}
	r.StopCamera("gate")
	stopped := time.Now()

	files, _ := filepath.Glob(filepath.Join(dir, "gate", "*", "*.mp4"))
	if len(files) < 3 {
		t.Fatalf("%d segment files", len(files))
	}
	totalVideo, totalAudio := 0, 0
	for _, f := range files {
		streams := ffprobe(t, f)
		if len(streams) != 2 || streams[0].CodecName != "h264" || streams[1].CodecName != "pcm_mulaw" {
			t.Fatalf("%s: streams %+v", f, streams)
		}
		n := streams[0].frames(t)
		if n < 1 {
			t.Fatalf("%s: %+v", f, streams)
		}
		if streams[1].NbFrames != "" { // the last segment may end before its first audio frame
			totalAudio += streams[1].frames(t)
		}
		totalVideo += n
		ffmpegDecode(t, f)
	}
	if totalAudio < 100 { // 50 G.711 frames a second
		t.Fatalf("%d audio frames", totalAudio)
	}
	spans, err := r.Spans("gate", began.Add(-time.Minute), stopped.Add(time.Minute))
	if err != nil || len(spans) != 1 {
		t.Fatalf("spans %v %v", spans, err)
	}
	rec := spans[0].End.Sub(spans[0].Start)
	// the camera sends 15 fps; the recording has every frame of its span
	want := int(rec.Seconds() * democam.FPS)
	if totalVideo < want-2 || totalVideo > want+2 {
		t.Fatalf("%d frames in %s of recording, want about %d", totalVideo, rec, want)
	}
	if spans[0].Start.Before(began) || spans[0].End.After(stopped.Add(time.Second)) {
		t.Fatalf("span %v..%v outside %v..%v", spans[0].Start, spans[0].End, began, stopped)
	}
	t.Logf("recorded %d frames in %d segments, span %s", totalVideo, len(files), rec)
	if _, err := os.Stat(filepath.Join(dir, "gate", spans[0].Start.Format(dayLayout), indexName)); err != nil {
		t.Fatal(err)
	}
}
