package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"cordon/internal/testtool"
)

func readClip(t testing.TB, c *Clip) []byte {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != c.Size {
		t.Fatalf("read %d bytes of a %d-byte clip", len(b), c.Size)
	}
	return b
}

func TestPlaybackClip(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	first := wall0.Add(50 * time.Millisecond)
	audit := r.Auditor.(*memAudit)

	// 7.3 s in: the keyframe at or before it is at 6 s; 5 s of window
	req := PlaybackRequest{Camera: "gate", Start: first.Add(7300 * time.Millisecond), Duration: 5 * time.Second, Principal: "alice"}
	c, err := r.Playback(req)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := c.Start.Sub(first); d < 5990*time.Millisecond || d > 6010*time.Millisecond {
		t.Fatalf("clip starts %s after the recording, want the keyframe at 6 s", d)
	}
	data := readClip(t, c)
	path := filepath.Join(t.TempDir(), c.Name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	streams := ffprobe(t, path)
	// frames from 6.0 s to 12.3 s (the window's end), at 15 fps
	if len(streams) != 2 || streams[0].frames(t) != 95 || streams[1].CodecName != "pcm_mulaw" {
		t.Fatalf("clip streams %+v", streams)
	}
	ffmpegDecode(t, path)

	// the same request gives the same bytes; Range reads match
	c2, err := r.Playback(req)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if !bytes.Equal(readClip(t, c2), data) || c2.ETag() != c.ETag() {
		t.Fatal("the same request gave different bytes")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		off := rng.Int64N(c.Size)
		n := rng.Int64N(min(c.Size-off, 200_000)) + 1
		buf := make([]byte, n)
		if _, err := c2.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+n]) {
			t.Fatalf("range %d+%d differs", off, n)
		}
	}
	// audited once for both requests
	if len(audit.playbacks) != 1 || audit.playbacks[0].Principal != "alice" || !audit.playbacks[0].Start.Equal(c.Start) {
		t.Fatalf("audit lines %+v", audit.playbacks)
	}
	// a window starting before the recording returns what exists
	early, err := r.Playback(PlaybackRequest{Camera: "gate", Start: wall0.Add(-30 * time.Second), Duration: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	early.Close()
	if !early.Start.Equal(first) || !near(early.End.Sub(first), 10*time.Second) {
		t.Fatalf("partly recorded window: %s .. %s", FormatTime(early.Start), FormatTime(early.End))
	}
}

func TestPlaybackErrors(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	cases := []struct {
		req  PlaybackRequest
		want error
	}{
		{PlaybackRequest{Camera: "nope", Start: wall0, Duration: time.Minute}, ErrUnknownCamera},
		{PlaybackRequest{Camera: "gate", Start: wall0.Add(-time.Hour), Duration: time.Minute}, ErrNoRecording},
		{PlaybackRequest{Camera: "gate", Start: wall0.Add(time.Minute), Duration: time.Minute}, ErrNoRecording},
		{PlaybackRequest{Camera: "gate", Start: wall0, Duration: 2 * time.Hour}, ErrBadSpan},
		{PlaybackRequest{Camera: "gate", Start: wall0, Duration: 0}, ErrBadSpan},
	}
	for _, tc := range cases {
		if c, err := r.Playback(tc.req); !errors.Is(err, tc.want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%+v: %v, want %v", tc.req, err, tc.want)
		}
	}
	// without the audit log, no playback
	r.Auditor.(*memAudit).fail = true
	if _, err := r.Playback(PlaybackRequest{Camera: "gate", Start: wall0, Duration: time.Minute, Principal: "bob"}); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("playback with a broken audit log: %v", err)
	}
}

// A damaged segment: playback ends the clip before it, or starts after
// it, and names it.
func TestPlaybackSkipsDamagedSegment(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	files := segmentFiles(t, dir, "gate")
	data, _ := os.ReadFile(files[1])
	info, _ := parseSegment(bytes.NewReader(data), int64(len(data)))
	// overwrite the type of its first movie fragment box
	copy(data[info.frags[0].off+4:], "junk")
	if err := os.WriteFile(files[1], data, 0o640); err != nil {
		t.Fatal(err)
	}
	first := wall0.Add(50 * time.Millisecond)
	c, err := r.Playback(PlaybackRequest{Camera: "gate", Start: first.Add(time.Second), Duration: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	var ce *CorruptError
	if len(c.Skipped) != 1 || !errors.As(c.Skipped[0], &ce) || !strings.HasSuffix(ce.File, filepath.Base(files[1])) {
		t.Fatalf("skipped %v", c.Skipped)
	}
	if !near(c.End.Sub(first), 6*time.Second) {
		t.Fatalf("the clip should end where the damaged segment starts: %s", c.End.Sub(first))
	}
	// starting inside it: the clip starts after it
	c, err = r.Playback(PlaybackRequest{Camera: "gate", Start: first.Add(7 * time.Second), Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !near(c.Start.Sub(first), 12*time.Second) || len(c.Skipped) != 1 {
		t.Fatalf("clip after the damaged segment starts at %s, skipped %v", c.Start.Sub(first), c.Skipped)
	}
	// only the damaged segment in the window: the error names it
	_, err = r.Playback(PlaybackRequest{Camera: "gate", Start: first.Add(7 * time.Second), Duration: 2 * time.Second})
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), filepath.Base(files[1])) {
		t.Fatalf("damaged-only window: %v", err)
	}
}

// The playback MP4 plays in headless chromium and seeks, served by
// http.ServeContent with Range like the gateway will.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestPlaybackInChromium(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	first := wall0.Add(50 * time.Millisecond)
	var ranges, served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/recording", func(w http.ResponseWriter, req *http.Request) {
		c, err := r.Playback(PlaybackRequest{Camera: "gate", Start: first, Duration: 20 * time.Second, Principal: "alice"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer c.Close()
		if req.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		w.Header().Set("ETag", c.ETag())
		cw := &countingWriter{ResponseWriter: w, n: &served}
		http.ServeContent(cw, req, c.Name, c.ModTime(), c)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><body><video id="v" muted playsinline src="/recording"></video></body></html>`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	ctx := testtool.Browser(t, 60*time.Second)
	problems := testtool.WatchPage(ctx)
	var res map[string]any
	js := `new Promise((resolve) => {
  const v = document.getElementById('v');
  const out = {};
  const fail = (why) => resolve(Object.assign(out, {error: why}));
  v.onerror = () => fail('media error ' + (v.error && v.error.code));
  // waits for playback to get somewhere (timeupdate), however loaded the
  // machine is; the test's context bounds the wait
  const until = (cond) => new Promise((r) => {
    if (cond()) return r();
    const h = () => { if (cond()) { v.removeEventListener('timeupdate', h); r(); } };
    v.addEventListener('timeupdate', h);
  });
  const go = async () => {
    out.duration = v.duration;
    try { await v.play(); } catch (e) { return fail('play: ' + e); }
    await until(() => v.currentTime > 0.2);
    out.played = v.currentTime;
    v.currentTime = 13.5;
    await new Promise(r => { v.onseeked = r; });
    out.seekedTo = v.currentTime;
    const before = v.webkitDecodedFrameCount;
    await until(() => v.currentTime > out.seekedTo + 0.2 && v.webkitDecodedFrameCount - before >= 2);
    out.after = v.currentTime;
    out.decoded = v.webkitDecodedFrameCount - before;
    out.ready = v.readyState;
    resolve(out);
  };
  if (v.readyState >= 1) go(); else v.onloadedmetadata = go;
})`
	err = chromedp.Run(ctx,
		chromedp.Navigate("http://"+ln.Addr().String()+"/"),
		chromedp.Evaluate(js, &res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chromium: %v; %d range requests, %d bytes served", res, ranges.Load(), served.Load())
	if res["error"] != nil {
		t.Fatalf("chromium: %v", res["error"])
	}
	num := func(k string) float64 { f, _ := res[k].(float64); return f }
	if d := num("duration"); d < 19.9 || d > 20.1 {
		t.Fatalf("duration %v", d)
	}
	if num("played") <= 0.1 || num("seekedTo") < 13.4 || num("seekedTo") > 13.6 || num("after") <= num("seekedTo") ||
		num("decoded") < 2 || num("ready") < 2 {
		t.Fatalf("chromium did not play and seek: %v", res)
	}
	if ranges.Load() == 0 {
		t.Fatal("chromium sent no Range request")
	}
	if p := problems.All(); len(p) > 0 {
		t.Fatalf("page problems: %v", p)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return w.ResponseWriter.Write(p)
}

// The clip's video samples are the recorded bytes: every packet of the
// playback MP4 equals the packet at the same time in the segments.
func TestPlaybackBytesAsRecorded(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	c, err := r.Playback(PlaybackRequest{Camera: "gate", Start: wall0, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path := filepath.Join(t.TempDir(), "clip.mp4")
	copyTo(t, path, c)
	got := framehashes(t, path)
	var want []string
	for _, f := range segmentFiles(t, dir, "gate") {
		want = append(want, framehashes(t, f)...)
	}
	if len(got) != 300 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("clip packets differ from the recorded ones (%d vs %d)", len(got), len(want))
	}
}

// framehashes returns the SHA-256 of every video packet, as ffmpeg reads
// it without decoding.
func framehashes(t testing.TB, path string) []string {
	t.Helper()
	out := runFFmpeg(t, "-i", path, "-map", "0:v", "-c", "copy", "-f", "framehash", "-hash", "sha256", "-")
	var hs []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		hs = append(hs, strings.TrimSpace(f[len(f)-1]))
	}
	return hs
}
