package record

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/democam"
	"cordon/internal/testtool"
)

// wall0 is where test recordings start: recent, so that retention (31
// days by default, against the real clock) keeps them.
var wall0 = time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)

// record20s records 20 s of the democam clip with PCMU audio on camera
// "gate" (fast, on a virtual clock starting at wall) and returns the
// recorder, stopped camera included.
func record20s(t testing.TB, dir string, wall time.Time) *Recorder {
	t.Helper()
	r, vc := newTestRecorder(t, dir, wall)
	src := newClipSource(t, democam.ClipMain, 300, true, vc)
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	src.waitDone(t, 30*time.Second)
	r.StopCamera("gate")
	return r
}

// near reports whether d is within 2 ms of want (segment starts are kept
// in milliseconds, frame times in 90 kHz ticks).
func near(d, want time.Duration) bool {
	return d >= want-2*time.Millisecond && d <= want+2*time.Millisecond
}

func segmentFiles(t testing.TB, dir, cam string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, cam, "*", "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRecordSegmentsAndSpans(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	files := segmentFiles(t, dir, "gate")
	// 6 s segments cut at the 2 s keyframes: 6 + 6 + 6 + 2 s
	if len(files) != 4 {
		t.Fatalf("%d segments: %v", len(files), files)
	}
	total := 0
	for _, f := range files {
		streams := ffprobe(t, f)
		if len(streams) != 2 || streams[0].CodecName != "h264" || streams[1].CodecName != "pcm_mulaw" {
			t.Fatalf("%s: %+v", f, streams)
		}
		total += streams[0].frames(t)
		ffmpegDecode(t, f)
	}
	if total != 300 {
		t.Fatalf("%d frames recorded, 300 sent", total)
	}
	first := wall0.Add(50 * time.Millisecond)
	if got := filepath.Base(files[0]); got != first.Format(segNameLayout)+".mp4" {
		t.Fatalf("first segment %s, want it named after its UTC start %s", got, first)
	}
	spans, err := r.Spans("gate", wall0.Add(-time.Hour), wall0.Add(time.Hour))
	if err != nil || len(spans) != 1 {
		t.Fatalf("spans %v %v", spans, err)
	}
	if !spans[0].Start.Equal(first) || !near(spans[0].End.Sub(first), 20*time.Second) {
		t.Fatalf("span %s .. %s", FormatTime(spans[0].Start), FormatTime(spans[0].End))
	}
	// a window inside clips the span
	in, _ := r.Spans("gate", first.Add(5*time.Second), first.Add(7*time.Second))
	if len(in) != 1 || !near(in[0].End.Sub(in[0].Start), 2*time.Second) {
		t.Fatalf("clipped spans %v", in)
	}
	if q := spans[0].PlaybackQuery(); !strings.Contains(q, "duration=19.99") || !strings.Contains(q, "start="+strings.ReplaceAll(FormatTime(first), ":", "%3A")) {
		t.Fatalf("playback query %q", q)
	}
	// listing survives a restart (the index is on disk)
	r.Close()
	r2 := &Recorder{Path: dir, Log: quietLog()}
	if err := r2.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	again, _ := r2.Spans("gate", wall0.Add(-time.Hour), wall0.Add(time.Hour))
	if len(again) != 1 || again[0] != spans[0] {
		t.Fatalf("after restart %v, before %v", again, spans)
	}
	if _, err := r2.Spans("nope", wall0, wall0.Add(time.Hour)); !errors.Is(err, ErrUnknownCamera) {
		t.Fatalf("unknown camera: %v", err)
	}
	if _, err := r2.Spans("gate", wall0, wall0); !errors.Is(err, ErrBadSpan) {
		t.Fatalf("empty window: %v", err)
	}
}

// A pause of the stream (camera offline while the relay keeps the reader)
// splits the span; a short one does not.
func TestGapSplitsSpan(t *testing.T) {
	for _, tc := range []struct {
		gap   time.Duration
		spans int
	}{{5 * time.Second, 2}, {1500 * time.Millisecond, 1}} {
		dir := t.TempDir()
		r, vc := newTestRecorder(t, dir, wall0)
		src := newClipSource(t, democam.ClipMain, 150, false, vc)
		src.gapAt, src.gap = 75, tc.gap // after 5 s
		if err := r.StartCamera("gate", src); err != nil {
			t.Fatal(err)
		}
		src.waitDone(t, 30*time.Second)
		r.StopCamera("gate")
		spans, _ := r.Spans("gate", wall0, wall0.Add(time.Hour))
		if len(spans) != tc.spans {
			t.Fatalf("gap %s: spans %v", tc.gap, spans)
		}
		if tc.spans == 2 {
			if d := spans[1].Start.Sub(spans[0].End); d < tc.gap-time.Second || d > tc.gap+time.Second {
				t.Fatalf("gap between spans %s, want about %s", d, tc.gap)
			}
		}
	}
}

// The wall clock is an hour behind when recording starts (a box without a
// real-time clock), NTP corrects it at 6 s, and an operator sets it back
// 30 s at 14 s. Recording times follow the wall clock from the next
// segment boundary after each step (segments are cut every 4 s): the
// forward step splits the span; the step back cannot be followed without
// overlapping what was recorded, so the timeline continues; no segment
// holds a jump; the re-anchors are logged and counted.
func TestClockStepReanchorsAtSegmentBoundary(t *testing.T) {
	dir := t.TempDir()
	vc := &virtualClock{}
	clock := &Clock{Mono: vc.Mono, Wall: func() time.Time {
		m := vc.Mono()
		switch {
		case m >= 14*time.Second:
			return wall0.Add(m - 30*time.Second)
		case m >= 6*time.Second:
			return wall0.Add(m)
		}
		return wall0.Add(m - time.Hour)
	}}
	logs := &testtool.SyncBuffer{}
	reg := prometheus.NewRegistry()
	r := &Recorder{Path: dir, Clock: clock, SegmentDuration: 4 * time.Second, QueueSamples: 1 << 16,
		Log: slog.New(slog.NewTextHandler(logs, nil)), Metrics: NewMetrics(reg)}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := newClipSource(t, democam.ClipMain, 300, false, vc)
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	src.waitDone(t, 30*time.Second)
	r.StopCamera("gate")
	behind := wall0.Add(-time.Hour)
	spans, _ := r.Spans("gate", behind.Add(-time.Hour), wall0.Add(time.Hour))
	// (5 ms: starts are kept in whole milliseconds, once per segment)
	about := func(d, want time.Duration) bool { return d >= want-5*time.Millisecond && d <= want+5*time.Millisecond }
	if len(spans) != 2 ||
		!about(spans[0].Start.Sub(behind), 50*time.Millisecond) || !about(spans[0].End.Sub(behind), 8050*time.Millisecond) ||
		!about(spans[1].Start.Sub(wall0), 8050*time.Millisecond) || !about(spans[1].End.Sub(wall0), 20050*time.Millisecond) {
		t.Fatalf("spans %v; want [%s, +8.05s] on the old clock and [%s, +20.05s] from the re-anchor at 8.05 s",
			spans, FormatTime(behind.Add(50*time.Millisecond)), FormatTime(wall0.Add(8050*time.Millisecond)))
	}
	ci := r.index("gate")
	for i := 1; i < len(ci.segs); i++ {
		if ci.segs[i].Start.Before(ci.segs[i-1].End.Add(-SpanGap)) {
			t.Fatalf("overlapping segments %v and %v", ci.segs[i-1], ci.segs[i])
		}
	}
	if len(ci.segs) != 5 {
		t.Fatalf("%d segments, want 5 (cut every 4 s)", len(ci.segs))
	}
	if n := testutil.ToFloat64(r.Metrics.clockSteps); n != 2 {
		t.Fatalf("%v re-anchors, want 2", n)
	}
	out := logs.String()
	if strings.Count(out, "wall clock stepped") != 2 || !strings.Contains(out, "step=1h0m0s") || !strings.Contains(out, "step=-30s") ||
		!strings.Contains(out, "continue from its end") {
		t.Fatalf("log:\n%s", out)
	}
	r.enforce()
	if off := testutil.ToFloat64(r.Metrics.clockOffset); off != 0 {
		t.Fatalf("clock offset %v after the re-anchor", off)
	}
}

// The retention pass exports the offset and warns once per anchor when
// it exceeds 2 s; a segment boundary then re-anchors.
func TestClockOffsetWarning(t *testing.T) {
	var mu sync.Mutex
	step := time.Duration(0)
	vc := &virtualClock{}
	clock := &Clock{Mono: vc.Mono, Wall: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return wall0.Add(vc.Mono() + step)
	}}
	logs := &testtool.SyncBuffer{}
	r := &Recorder{Path: t.TempDir(), Clock: clock, Log: slog.New(slog.NewTextHandler(logs, nil))}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mu.Lock()
	step = 1500 * time.Millisecond // within bounds: nothing to say
	mu.Unlock()
	r.watchClock()
	if r.checkClock(clock.Stamp()) || logs.String() != "" {
		t.Fatalf("a 1.5 s offset re-anchored or warned: %s", logs)
	}
	mu.Lock()
	step = -5 * time.Second
	mu.Unlock()
	r.watchClock()
	r.watchClock()
	if got := testutil.ToFloat64(r.Metrics.clockOffset); got != -5 || strings.Count(logs.String(), "wall clock differs") != 1 {
		t.Fatalf("offset %v, log %s", got, logs)
	}
	if !r.checkClock(clock.Stamp()) || !r.clock.Now().Equal(clock.wall()) {
		t.Fatal("no re-anchor at the boundary")
	}
	r.watchClock()
	if got := testutil.ToFloat64(r.Metrics.clockOffset); got != 0 {
		t.Fatalf("offset %v after the re-anchor", got)
	}
}

// A restart with the clock set back an hour: new recordings continue the
// timeline instead of overlapping the old ones.
func TestRestartWithClockBehind(t *testing.T) {
	dir := t.TempDir()
	r, vc := newTestRecorder(t, dir, wall0)
	src := newClipSource(t, democam.ClipMain, 300, false, vc)
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	src.waitDone(t, 30*time.Second)
	r.StopCamera("gate")
	r.Close()
	clock2, vc2 := newVirtualClock(wall0.Add(-time.Hour))
	r2 := &Recorder{Path: dir, Clock: clock2, SegmentDuration: 4 * time.Second, QueueSamples: 1 << 16, Log: quietLog()}
	if err := r2.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	src2 := newClipSource(t, democam.ClipMain, 60, false, vc2)
	if err := r2.StartCamera("gate", src2); err != nil {
		t.Fatal(err)
	}
	src2.waitDone(t, 30*time.Second)
	r2.StopCamera("gate")
	all, _ := r2.Spans("gate", wall0.Add(-2*time.Hour), wall0.Add(2*time.Hour))
	// 24 s, less what the clamped starts lose to millisecond rounding
	if d := all[0].End.Sub(all[0].Start); len(all) != 1 || d < 24*time.Second-10*time.Millisecond || d > 24*time.Second {
		t.Fatalf("spans after a restart with the clock behind: %v", all)
	}
	ci := r2.index("gate")
	for i := 1; i < len(ci.segs); i++ {
		if ci.segs[i].Start.Before(ci.segs[i-1].End.Add(-SpanGap)) {
			t.Fatalf("overlapping segments %v and %v", ci.segs[i-1], ci.segs[i])
		}
	}
}

// What a crash leaves: a segment with a torn last fragment, one with only
// part of its header, and a torn index line.
func TestStartupRepair(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	r.Close()
	files := segmentFiles(t, dir, "gate")
	dayDir := filepath.Dir(files[0])
	data, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	// an unindexed copy of a segment, cut in the middle of its last fragment
	info, err := parseSegment(strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	last := info.frags[len(info.frags)-1]
	torn := data[:last.off+(last.end-last.off)/2]
	tornName := wall0.Add(10*time.Minute).Format(segNameLayout) + ".mp4"
	if err := os.WriteFile(filepath.Join(dayDir, tornName), torn, 0o640); err != nil {
		t.Fatal(err)
	}
	// one with only part of its init: nothing playable
	headName := wall0.Add(20*time.Minute).Format(segNameLayout) + ".mp4"
	if err := os.WriteFile(filepath.Join(dayDir, headName), data[:40], 0o640); err != nil {
		t.Fatal(err)
	}
	// a torn index line (the crash hit while appending)
	f, _ := os.OpenFile(filepath.Join(dayDir, indexName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seg":"2026`)
	f.Close()

	r2 := &Recorder{Path: dir, Log: testLog(t)}
	if err := r2.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	fi, err := os.Stat(filepath.Join(dayDir, tornName))
	if err != nil {
		t.Fatalf("torn segment removed: %v", err)
	}
	if fi.Size() != last.off {
		t.Fatalf("torn segment not cut at its last complete fragment: size %d want %d", fi.Size(), last.off)
	}
	ffmpegDecode(t, filepath.Join(dayDir, tornName))
	if _, err := os.Stat(filepath.Join(dayDir, headName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unplayable leftover kept: %v", err)
	}
	ci := r2.index("gate")
	var repaired *segment
	for _, s := range ci.segs {
		if s.Name == tornName {
			repaired = s
		}
	}
	if len(ci.segs) != 5 || repaired == nil || !repaired.Repaired || repaired.Bytes != last.off {
		t.Fatalf("index after repair: %d segments, repaired %+v", len(ci.segs), repaired)
	}
	// the repaired segment's line follows the torn one and is readable
	r2.Close()
	segs, err := loadDay(dayDir, filepath.Base(dayDir), func(int, error) {})
	if err != nil || segs[tornName] == nil {
		t.Fatalf("index line of the repaired segment unreadable: %v", err)
	}
}
