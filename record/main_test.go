package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/democam"
	"cordon/internal/testtool"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // never returns
	}
	goleak.VerifyTestMain(m)
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testLog logs through t.Log (shown for failed or -v tests).
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// virtualClock is a recording clock driven by the test source: it moves
// with the samples delivered, so a source can deliver minutes of media in
// milliseconds and the recorder still sees them arrive on time.
type virtualClock struct {
	mu sync.Mutex
	t  time.Duration
}

func (v *virtualClock) Mono() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.t
}

func (v *virtualClock) set(t time.Duration) {
	v.mu.Lock()
	if t > v.t {
		v.t = t
	}
	v.mu.Unlock()
}

// newVirtualClock returns a Clock anchored at wall and its driver.
func newVirtualClock(wall time.Time) (*Clock, *virtualClock) {
	v := &virtualClock{}
	return &Clock{Wall: func() time.Time { return wall.Add(v.Mono()) }, Mono: v.Mono}, v
}

// clipSource delivers democam clip access units (and, with audio, 20 ms
// PCMU frames) as one Feed, then reports done and waits for the recorder
// to stop. With a virtualClock it runs as fast as the recorder reads;
// otherwise in real time.
type clipSource struct {
	clip    *democam.Clip
	frames  int  // video frames to deliver
	audio   bool // add PCMU 8 kHz
	vclock  *virtualClock
	offset  time.Duration // added to every PTS
	gapAt   int           // if > 0: after this many frames, jump the clock by gap (a stall)
	gap     time.Duration
	done    chan struct{}
	once    sync.Once
	opened  int
	openMu  sync.Mutex
	maxOpen int // Open fails after this many feeds (0 = one feed)
	// pauseAt > 0: before frame pauseAt, close paused and wait for resume
	pauseAt int
	paused  chan struct{}
	resume  chan struct{}
}

func newClipSource(t testing.TB, name democam.ClipName, frames int, audio bool, vc *virtualClock) *clipSource {
	t.Helper()
	c, err := democam.LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	return &clipSource{clip: c, frames: frames, audio: audio, vclock: vc, done: make(chan struct{})}
}

func (s *clipSource) Open(ctx context.Context) (Feed, error) {
	s.openMu.Lock()
	s.opened++
	n := s.opened
	s.openMu.Unlock()
	if n > max(s.maxOpen, 1) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tracks := []Track{{Codec: CodecH264, ParamSets: [][]byte{s.clip.SPS, s.clip.PPS}}}
	if s.clip.Codec == democam.CodecH265 {
		tracks[0] = Track{Codec: CodecH265, ParamSets: [][]byte{s.clip.VPS, s.clip.SPS, s.clip.PPS}}
	}
	if s.audio {
		tracks = append(tracks, Track{Codec: CodecPCMU, ClockRate: 8000, Channels: 1})
	}
	return &clipFeed{src: s, tracks: tracks, start: time.Now()}, nil
}

type clipFeed struct {
	src      *clipSource
	tracks   []Track
	start    time.Time
	i        int // next video frame
	a        int // next audio frame
	jumped   time.Duration
	didPause bool
}

func (f *clipFeed) Tracks() []Track { return f.tracks }
func (f *clipFeed) Close()          {}

const frameDur = time.Second / democam.FPS

func (f *clipFeed) Next(ctx context.Context) (Sample, error) {
	s := f.src
	if f.i >= s.frames {
		s.once.Do(func() { close(s.done) })
		<-ctx.Done()
		return Sample{}, ctx.Err()
	}
	if s.pauseAt > 0 && f.i == s.pauseAt && !f.didPause {
		f.didPause = true
		close(s.paused)
		select {
		case <-s.resume:
		case <-ctx.Done():
			return Sample{}, ctx.Err()
		}
	}
	if s.gapAt > 0 && f.i == s.gapAt && f.jumped == 0 {
		f.jumped = s.gap
	}
	vpts := time.Duration(f.i)*frameDur + s.offset + f.jumped
	apts := time.Duration(f.a)*20*time.Millisecond + s.offset + f.jumped
	var smp Sample
	if s.audio && apts < vpts {
		frame := bytes.Repeat([]byte{0xff - byte(f.a%7)}, 160)
		smp = Sample{Track: 1, PTS: apts, DTS: apts, Data: [][]byte{frame}}
		f.a++
	} else {
		au := s.clip.AUs[f.i%len(s.clip.AUs)]
		smp = Sample{Track: 0, Key: au.Key, PTS: vpts, DTS: vpts, Data: au.NALUs}
		f.i++
	}
	if s.vclock != nil {
		s.vclock.set(smp.PTS - s.offset + 50*time.Millisecond)
	} else if wait := time.Until(f.start.Add(smp.PTS - s.offset)); wait > 0 {
		select {
		case <-ctx.Done():
			return Sample{}, ctx.Err()
		case <-time.After(wait): // real-time pacing of a synthetic camera
		}
	}
	return smp, nil
}

// waitDone waits until the source delivered everything.
func (s *clipSource) waitDone(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		t.Fatalf("the source was not read to the end within %s", d)
	}
}

// newTestRecorder starts a recorder on dir with a virtual clock at wall.
func newTestRecorder(t testing.TB, dir string, wall time.Time) (*Recorder, *virtualClock) {
	t.Helper()
	clock, vc := newVirtualClock(wall)
	// the queue holds everything a fast test source can send at once
	r := &Recorder{Path: dir, Clock: clock, SegmentDuration: 6 * time.Second, QueueSamples: 1 << 16, Log: quietLog(), Auditor: &memAudit{}}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, vc
}

// memAudit keeps audit lines in memory.
type memAudit struct {
	mu        sync.Mutex
	playbacks []PlaybackAudit
	exports   []ExportAudit
	fail      bool
	onExport  func(ExportAudit) // called after an export line is kept
}

func (m *memAudit) Playback(a PlaybackAudit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("audit log unwritable")
	}
	m.playbacks = append(m.playbacks, a)
	return nil
}

func (m *memAudit) Export(a ExportAudit) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return 0, errors.New("audit log unwritable")
	}
	m.exports = append(m.exports, a)
	seq := uint64(100 + len(m.exports))
	if m.onExport != nil {
		m.onExport(a)
	}
	return seq, nil
}

// probeStream is what ffprobe says about one stream.
type probeStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	NbFrames  string `json:"nb_read_frames"`
	Duration  string `json:"duration"`
	StartTime string `json:"start_time"`
}

// ffprobe counts the frames of every stream of a file, failing the test
// on any error ffprobe reports.
func ffprobe(t testing.TB, path string) []probeStream {
	t.Helper()
	bin := testtool.Require(t, "ffprobe")
	cmd := exec.Command(bin, "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,codec_name,nb_read_frames,duration,start_time", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var res struct{ Streams []probeStream }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res.Streams
}

func (p probeStream) frames(t testing.TB) int {
	n, err := strconv.Atoi(p.NbFrames)
	if err != nil {
		t.Fatalf("nb_read_frames %q", p.NbFrames)
	}
	return n
}

// ffmpegDecode decodes a whole file and fails on any error message.
func ffmpegDecode(t testing.TB, path string) {
	t.Helper()
	bin := testtool.Require(t, "ffmpeg")
	cmd := exec.Command(bin, "-v", "error", "-xerror", "-i", path, "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("ffmpeg decoding %s: %v: %s", path, err, stderr.String())
	}
}

func copyTo(t testing.TB, path string, r io.Reader) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// runFFmpeg runs ffmpeg quietly and returns its standard output.
func runFFmpeg(t testing.TB, args ...string) string {
	t.Helper()
	bin := testtool.Require(t, "ffmpeg")
	cmd := exec.Command(bin, append([]string{"-v", "error"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, stderr.String())
	}
	return string(out)
}
