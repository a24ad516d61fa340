package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// TestRecordingSurvivesKill9: `cordon serve` (a subprocess) records a
// camera; it is killed with SIGKILL mid-segment. The next start repairs
// the segment left open (cut after its last complete fragment, indexed,
// logged), the recording up to at most one second before the kill is
// listed and plays, and the repaired file reads cleanly with ffprobe.
func TestRecordingSurvivesKill9(t *testing.T) {
	bin := drBuildCordon(t)
	dir := t.TempDir()
	_, cam := recCam(t, "rec-k", "127.0.0.142", true, true)
	cfg := recConfig(t, dir, []config.Camera{cam})
	path := filepath.Join(dir, "cordon.yaml")
	drWriteConfig(t, path, cfg)

	first := recServe(t, bin, path)
	tok := e2eutil.Login(t, first.base, "olivia", "olivia-pw")
	span := recWaitRecorded(t, first.base, tok, "rec-k", 3*time.Second, 60*time.Second)
	// kill at the worst moment: just before the next fragment is written.
	// A fragment is written every 0.7 s: wait for the listed end to move
	// (a fragment was just written), then 0.6 s more.
	e2eutil.WaitFor(t, 10*time.Second, "the next fragment", func() bool {
		s := recSpans(t, first.base, tok, "rec-k", "")
		return len(s) > 0 && s[len(s)-1].End.After(span.End)
	})
	time.Sleep(600 * time.Millisecond) // a point in time, not a condition: nothing to wait on
	killed := time.Now()
	first.kill(t)
	before := recIndex(t, cfg.Recording.Path, "rec-k")
	if segs := recSegments(t, cfg.Recording.Path, "rec-k"); len(segs) != len(before)+1 {
		t.Fatalf("after the kill: segments %v, index %+v (want one open, unindexed segment)", segs, before)
	}

	// restart without recording: the repaired tail is the newest recording
	cfg.Cameras[0].Record = false
	drWriteConfig(t, path, cfg)
	second := recServe(t, bin, path)
	if !strings.Contains(second.logs.String(), "repaired a segment left open by a crash") {
		t.Fatalf("the restart did not report a repair:\n%s", second.logs.String())
	}
	idx := recIndex(t, cfg.Recording.Path, "rec-k")
	if len(idx) != len(before)+1 || !idx[len(idx)-1].Repaired || idx[len(idx)-1].Frames == 0 {
		t.Fatalf("index after the restart: %+v", idx)
	}
	repaired := idx[len(idx)-1]
	tok = e2eutil.Login(t, second.base, "olivia", "olivia-pw")
	spans := recSpans(t, second.base, tok, "rec-k", "")
	if len(spans) == 0 {
		t.Fatal("nothing listed after the restart")
	}
	last := spans[len(spans)-1]
	lost := killed.Sub(last.End)
	t.Logf("killed at %s, recording ends at %s: %s lost", killed.UTC().Format(time.RFC3339Nano), last.End.Format(time.RFC3339Nano), lost)
	if lost > time.Second || lost < -500*time.Millisecond {
		t.Fatalf("the recording ends %s before the kill (at most 1 s may be lost)", lost)
	}

	// the repaired file and the last seconds play
	var seg string
	for _, f := range recSegments(t, cfg.Recording.Path, "rec-k") {
		if filepath.Base(f) == repaired.Seg {
			seg = f
		}
	}
	if p := recFFprobe(t, seg); p.Codec != "h264" || p.Frames != repaired.Frames {
		t.Fatalf("repaired segment %s: %+v, index says %d frames", seg, p, repaired.Frames)
	}
	status, _, clip := recGet(t, recPlaybackURL(second.base, "rec-k", last.End.Add(-2*time.Second), 2*time.Second), tok, nil)
	if status != 200 {
		t.Fatalf("playback of the last seconds: %d", status)
	}
	file := filepath.Join(dir, "tail.mp4")
	if err := os.WriteFile(file, clip, 0o600); err != nil {
		t.Fatal(err)
	}
	recDecode(t, file)
	second.stop(t)
}

// recProcess is a `cordon serve` subprocess.
type recProcess struct {
	cmd  *exec.Cmd
	base string
	logs *testtool.SyncBuffer
	done chan struct{}
}

// recServe starts `cordon serve --config path` and waits for its
// "cordon serving" line (which names the HTTP address it bound).
func recServe(t *testing.T, bin, path string) *recProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", path, "--log-format", "json")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &recProcess{cmd: cmd, logs: &testtool.SyncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			var m struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "cordon serving" {
				addr <- m.HTTP
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(t) })
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.done:
		t.Fatalf("cordon serve exited before serving:\n%s", p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("cordon serve did not start within 60 s:\n%s", p.logs.String())
	}
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *recProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop ends the process with SIGTERM (a clean shutdown) and waits.
func (p *recProcess) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("cordon serve did not stop within 30 s of SIGTERM")
		p.kill(t)
	}
}

// TestRecordingRetentionThroughConfig: retention by age and by quota as
// configured, at start and after a reload, through the real gateway.
// A camera's old recordings are laid out on disk as record writes them
// (day directories, index lines; the quota counts the sizes the index
// holds, so two sparse 600 MB files stand for real ones): at start
// (retain 31d, max_disk_gb 1) the 40-day-old segment goes by age and the
// oldest of the rest by quota; a reload to retain 240h removes the last
// old one; the live camera keeps recording and an export stays.
func TestRecordingRetentionThroughConfig(t *testing.T) {
	dir := t.TempDir()
	_, live := recCam(t, "rec-r", "127.0.0.143", false, true)
	_, old := recCam(t, "rec-s", "127.0.0.144", false, false)
	cfg := recConfig(t, dir, []config.Camera{live, old})
	cfg.Recording.Retain, cfg.Recording.MaxDiskGB = "31d", 1
	now := time.Now().UTC()
	aged := recFakeSegment(t, cfg.Recording.Path, "rec-s", now.Add(-40*24*time.Hour), 1000)
	quota := recFakeSegment(t, cfg.Recording.Path, "rec-s", now.Add(-20*24*time.Hour), 600e6)
	kept := recFakeSegment(t, cfg.Recording.Path, "rec-s", now.Add(-10*24*time.Hour-time.Hour), 600e6)
	path := filepath.Join(dir, "cordon.yaml")
	g := drStart(t, cfg, path)
	tok := e2eutil.Login(t, g.Base, "olivia", "olivia-pw")
	window := "start=" + now.Add(-60*24*time.Hour).Format(time.RFC3339) + "&end=" + now.Add(time.Hour).Format(time.RFC3339)

	spans := recSpans(t, g.Base, tok, "rec-s", window)
	if len(spans) != 1 || !spans[0].Start.Equal(kept) {
		t.Fatalf("after start with retain 31d and a 1 GB quota: %+v (want only the segment of %s)", spans, kept)
	}
	for when, want := range map[time.Time]bool{aged: false, quota: false, kept: true} {
		if got := recFileExists(cfg.Recording.Path, "rec-s", when); got != want {
			t.Fatalf("segment of %s on disk: %v, want %v", when, got, want)
		}
	}
	m := g.MetricsAddr()
	if n, _ := coreMetric(t, m, "cordon_recording_deleted_segments_total", `camera="rec-s"`, `reason="age"`); n != 1 {
		t.Fatalf("deleted by age: %v", n)
	}
	if n, _ := coreMetric(t, m, "cordon_recording_deleted_segments_total", `camera="rec-s"`, `reason="quota"`); n != 1 {
		t.Fatalf("deleted by quota: %v", n)
	}
	if n, _ := coreMetric(t, m, "cordon_recording_disk_bytes", `camera="rec-s"`); n != 600e6 {
		t.Fatalf("disk bytes of rec-s: %v", n)
	}

	// the live camera records; an export of it is never touched
	span := recWaitRecorded(t, g.Base, tok, "rec-r", 2*time.Second, 60*time.Second)
	status, ans, body := recExport(t, g.Base, tok, map[string]string{"camera": "rec-r",
		"start": span.Start.Format(time.RFC3339Nano), "end": span.End.Format(time.RFC3339Nano), "reason": "retention test"})
	if status != 201 {
		t.Fatalf("export: %d %s", status, body)
	}

	// reload: retain 240h removes the segment that ended 10 days ago
	cfg.Recording.Retain = "240h"
	drWriteConfig(t, path, cfg)
	e2eutil.WaitFor(t, 30*time.Second, "rec-s's last old segment deleted after the reload", func() bool {
		return len(recSpans(t, g.Base, tok, "rec-s", window)) == 0
	})
	if recFileExists(cfg.Recording.Path, "rec-s", kept) {
		t.Fatal("the segment is listed no more but still on disk")
	}
	if n, _ := coreMetric(t, m, "cordon_recording_deleted_segments_total", `camera="rec-s"`, `reason="age"`); n != 2 {
		t.Fatalf("deleted by age after the reload: %v", n)
	}
	if s, _, _ := recGet(t, g.Base+ans["url"], tok, nil); s != 200 {
		t.Fatalf("the export after retention ran: %d", s)
	}
	recWaitRecorded(t, g.Base, tok, "rec-r", span.Duration()+time.Second, 60*time.Second)
}

// recFakeSegment lays out a segment of camera starting at start (10 min
// long, size bytes, sparse) with its index line, as record writes them;
// returns its start rounded to the millisecond.
func recFakeSegment(t *testing.T, root, camera string, start time.Time, size int64) time.Time {
	t.Helper()
	start = start.UTC().Truncate(time.Millisecond)
	day := filepath.Join(root, camera, start.Format("2006-01-02"))
	if err := os.MkdirAll(day, 0o750); err != nil {
		t.Fatal(err)
	}
	name := start.Format("20060102T150405.000Z") + ".mp4"
	f, err := os.Create(filepath.Join(day, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	line, _ := json.Marshal(map[string]any{"seg": name, "start": start.Format(time.RFC3339Nano),
		"end": start.Add(10 * time.Minute).Format(time.RFC3339Nano), "bytes": size,
		"sha256": strings.Repeat("ab", 32), "frames": 9000})
	idx, err := os.OpenFile(filepath.Join(day, "index.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if _, err := idx.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	return start
}

// recFileExists reports whether the segment of camera starting at start
// is on disk.
func recFileExists(root, camera string, start time.Time) bool {
	_, err := os.Stat(filepath.Join(root, camera, start.Format("2006-01-02"), start.Format("20060102T150405.000Z")+".mp4"))
	return err == nil
}
