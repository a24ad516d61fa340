package record

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"cordon/democam"
)

// H.265 is recorded and played back as it came.
func TestRecordH265(t *testing.T) {
	dir := t.TempDir()
	r, vc := newTestRecorder(t, dir, wall0)
	src := newClipSource(t, democam.ClipH265, 120, false, vc) // two loops of the 4 s clip
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	src.waitDone(t, 30*time.Second)
	r.StopCamera("gate")
	total := 0
	for _, f := range segmentFiles(t, dir, "gate") {
		s := ffprobe(t, f)
		if s[0].CodecName != "hevc" {
			t.Fatalf("%s: %+v", f, s)
		}
		total += s[0].frames(t)
	}
	if total != 120 {
		t.Fatalf("%d frames recorded", total)
	}
	c, err := r.Playback(PlaybackRequest{Camera: "gate", Start: wall0, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path := filepath.Join(t.TempDir(), "h265.mp4")
	copyTo(t, path, c)
	if s := ffprobe(t, path); s[0].CodecName != "hevc" || s[0].frames(t) != 120 {
		t.Fatalf("playback %+v", s)
	}
	ffmpegDecode(t, path)
}

// aacSource is one feed of AAC access units (from ffmpeg's ADTS output)
// beside the H.264 clip.
type aacSource struct {
	clip *democam.Clip
	aus  [][]byte
	conf []byte
	vc   *virtualClock
	done chan struct{}
	opus bool // the frames are 20 ms Opus packets
}

func (s *aacSource) Open(ctx context.Context) (Feed, error) {
	select {
	case <-s.done:
		<-ctx.Done()
		return nil, ctx.Err()
	default:
	}
	return &aacFeed{s: s}, nil
}

type aacFeed struct {
	s    *aacSource
	v, a int
}

func (f *aacFeed) Tracks() []Track {
	audio := Track{Codec: CodecAAC, ClockRate: 48000, Channels: 1, AACConfig: f.s.conf}
	if f.s.opus {
		audio = Track{Codec: CodecOpus, ClockRate: 48000, Channels: 1}
	}
	return []Track{{Codec: CodecH264, ParamSets: [][]byte{f.s.clip.SPS, f.s.clip.PPS}}, audio}
}
func (f *aacFeed) Close() {}
func (f *aacFeed) Next(ctx context.Context) (Sample, error) {
	if f.v == 60 {
		close(f.s.done)
		<-ctx.Done()
		return Sample{}, ctx.Err()
	}
	vpts := time.Duration(f.v) * frameDur
	apts := time.Duration(f.a) * 1024 * time.Second / 48000
	if f.s.opus {
		apts = time.Duration(f.a) * 20 * time.Millisecond
	}
	var s Sample
	if f.a < len(f.s.aus) && apts < vpts {
		s = Sample{Track: 1, PTS: apts, DTS: apts, Data: [][]byte{f.s.aus[f.a]}}
		f.a++
	} else {
		au := f.s.clip.AUs[f.v]
		s = Sample{Track: 0, Key: au.Key, PTS: vpts, DTS: vpts, Data: au.NALUs}
		f.v++
	}
	f.s.vc.set(s.PTS + 50*time.Millisecond)
	return s, nil
}

// AAC (RTSP cameras) is recorded as AAC.
func TestRecordAAC(t *testing.T) {
	adts := runFFmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=5", "-ac", "1", "-c:a", "aac", "-f", "adts", "-")
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal([]byte(adts)); err != nil {
		t.Fatal(err)
	}
	conf, err := (&mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	clip, err := democam.LoadClip(democam.ClipMain)
	if err != nil {
		t.Fatal(err)
	}
	src := &aacSource{clip: clip, conf: conf, done: make(chan struct{})}
	for _, p := range pkts {
		src.aus = append(src.aus, p.AU)
	}
	file := recordAll(t, src)
	s := ffprobe(t, file)
	if len(s) != 2 || s[1].CodecName != "aac" || s[1].frames(t) < 90 {
		t.Fatalf("AAC recording %+v", s)
	}
	ffmpegDecode(t, file)
	// the AAC access units are stored as they came
	data, _ := os.ReadFile(file)
	if !bytes.Contains(data, src.aus[10]) {
		t.Fatal("an AAC access unit is not in the segment as it came")
	}
}

// recordAll records src as camera "gate" until it has sent all it has and
// returns the first segment file.
func recordAll(t *testing.T, src *aacSource) string {
	t.Helper()
	dir := t.TempDir()
	r, vc := newTestRecorder(t, dir, wall0)
	src.vc = vc
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	<-src.done
	r.StopCamera("gate")
	return segmentFiles(t, dir, "gate")[0]
}

// A codec the recorder cannot store is reported, not recorded.
func TestUnrecordableTrack(t *testing.T) {
	if _, err := newTrackDesc(1, Track{Codec: "VP8"}, nil); err == nil {
		t.Fatal("VP8 accepted")
	}
	if _, err := newTrackDesc(1, Track{Codec: CodecH264}, nil); err == nil {
		t.Fatal("H.264 without parameter sets accepted")
	}
	if _, err := newTrackDesc(1, Track{Codec: CodecAAC, AACConfig: []byte{1}}, nil); err == nil {
		t.Fatal("bad AAC config accepted")
	}
}

// oggPackets returns the packets of an Ogg stream (RFC 3533), without the
// two Opus header packets.
func oggPackets(t *testing.T, b []byte) [][]byte {
	var out [][]byte
	var cur []byte
	for len(b) >= 27 {
		if string(b[:4]) != "OggS" {
			t.Fatal("not an Ogg page")
		}
		n := int(b[26])
		lacing := b[27 : 27+n]
		body := b[27+n:]
		for _, l := range lacing {
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				out = append(out, cur)
				cur = nil
			}
		}
		b = body
	}
	return out[2:]
}

// Opus is recorded as Opus, each packet one sample of its own duration.
func TestRecordOpus(t *testing.T) {
	ogg := runFFmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=5", "-ac", "1", "-c:a", "libopus", "-frame_duration", "20", "-f", "ogg", "-")
	pkts := oggPackets(t, []byte(ogg))
	clip, err := democam.LoadClip(democam.ClipMain)
	if err != nil {
		t.Fatal(err)
	}
	src := &aacSource{clip: clip, aus: pkts, done: make(chan struct{}), opus: true}
	file := recordAll(t, src)
	s := ffprobe(t, file)
	if len(s) != 2 || s[1].CodecName != "opus" || s[1].frames(t) < 190 {
		t.Fatalf("Opus recording %+v", s)
	}
	ffmpegDecode(t, file)
}
