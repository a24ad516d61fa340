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
