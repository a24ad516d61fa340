package record

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/democam"
)

// paddedSource is a real-time camera: the democam clip at 15 fps, its
// access units padded with an extra NAL unit to a target bitrate, plus
// 20 ms PCMU frames. Its own cost is kept low (no allocation per sample)
// so that the benchmark measures the recorder.
type paddedSource struct {
	clip   *democam.Clip
	pad    []byte // extra NAL unit per frame (nil: the clip as it is)
	audio  []byte
	frames []accessUnit
}

// accessUnit is one prepared frame.
type accessUnit struct {
	key   bool
	nalus [][]byte
}

func newPaddedSource(b *testing.B, bitrate int) *paddedSource {
	clip, err := democam.LoadClip(democam.ClipMain)
	if err != nil {
		b.Fatal(err)
	}
	s := &paddedSource{clip: clip, audio: make([]byte, 160)}
	total := 0
	for _, au := range clip.AUs {
		for _, n := range au.NALUs {
			total += len(n)
		}
	}
	perFrame := bitrate / 8 / democam.FPS
	if extra := perFrame - total/len(clip.AUs); bitrate > 0 && extra > 0 {
		s.pad = make([]byte, extra)
		s.pad[0] = 0x01 // a non-IDR slice NAL header; the recorder never decodes it
	}
	for _, au := range clip.AUs {
		n := au.NALUs
		if s.pad != nil {
			n = append(append([][]byte{}, n...), s.pad)
		}
		s.frames = append(s.frames, accessUnit{au.Key, n})
	}
	return s
}

func (s *paddedSource) Open(ctx context.Context) (Feed, error) {
	return &paddedFeed{s: s, start: time.Now(), data: make([][]byte, 1)}, nil
}

type paddedFeed struct {
	s     *paddedSource
	start time.Time
	i, a  int
	data  [][]byte
}

func (f *paddedFeed) Tracks() []Track {
	return []Track{{Codec: CodecH264, ParamSets: [][]byte{f.s.clip.SPS, f.s.clip.PPS}}, {Codec: CodecPCMU, ClockRate: 8000}}
}
func (f *paddedFeed) Close() {}

func (f *paddedFeed) Next(ctx context.Context) (Sample, error) {
	vpts := time.Duration(f.i) * frameDur
	apts := time.Duration(f.a) * 20 * time.Millisecond
	var s Sample
	if apts < vpts {
		f.data[0] = f.s.audio
		s = Sample{Track: 1, PTS: apts, DTS: apts, Data: f.data}
		f.a++
	} else {
		fr := f.s.frames[f.i%len(f.s.frames)]
		s = Sample{Track: 0, Key: fr.key, PTS: vpts, DTS: vpts, Data: fr.nalus}
		f.i++
	}
	if wait := time.Until(f.start.Add(s.PTS)); wait > 0 {
		t := time.NewTimer(wait) // real-time pacing, as a camera sends
		select {
		case <-ctx.Done():
			t.Stop()
			return Sample{}, ctx.Err()
		case <-t.C:
		}
	}
	return s, nil
}

// BenchmarkRecord50Cameras records 50 real-time cameras for 10 s (one
// iteration) and reports the recorder's cost per camera: CPU, allocations
// per recorded frame (video and audio), and write bandwidth, with
// fdatasync after every fragment as in production.
//
//	go test -run '^$' -bench Record50Cameras -benchtime=1x ./record/
func BenchmarkRecord50Cameras(b *testing.B) {
	for _, tc := range []struct {
		name    string
		bitrate int
	}{{"clip-70kbps", 0}, {"2Mbps", 2_000_000}} {
		b.Run(tc.name, func(b *testing.B) {
			src := newPaddedSource(b, tc.bitrate)
			for range b.N {
				benchRun(b, src, 50, 10*time.Second)
			}
		})
	}
}

func benchRun(b *testing.B, src *paddedSource, cams int, d time.Duration) {
	r := &Recorder{Path: b.TempDir(), Log: quietLog(), Auditor: &memAudit{}}
	if err := r.Initialize(); err != nil {
		b.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.ReadMemStats(&ms0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	ids := make([]string, cams)
	for i := range cams {
		ids[i] = "cam-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		if err := r.StartCamera(ids[i], src); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(d) // the benchmark is a fixed stretch of real time
	r.Close()
	elapsed := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	var bytes int64
	var frames, dropped float64
	for _, id := range ids {
		dropped += testutil.ToFloat64(r.Metrics.dropped.WithLabelValues(id))
		ci := r.index(id)
		ci.mu.Lock()
		bytes += ci.bytes
		for _, s := range ci.segs {
			frames += float64(s.Frames)
		}
		ci.mu.Unlock()
	}
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	camSeconds := float64(cams) * elapsed.Seconds()
	samples := frames * (1 + 50.0/democam.FPS) // video frames plus their audio frames
	b.ReportMetric(cpu.Seconds()*1000/camSeconds, "cpu-ms/camera-s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/samples, "allocs/sample")
	b.ReportMetric(float64(bytes)*8/camSeconds/1e6, "Mbit/s-per-camera")
	b.ReportMetric(float64(bytes)/elapsed.Seconds()/1e6, "MB/s-written")
	b.ReportMetric(frames/camSeconds, "frames/s-per-camera")
	b.ReportMetric(dropped, "dropped-samples")
}
