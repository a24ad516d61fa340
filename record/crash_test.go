package record

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the recorder in a child process (this test binary,
// re-executed), lets it record a real democam camera over RTSP, kills it
// with SIGKILL, and checks what a new recorder finds on disk.

const crashChildEnv = "CORDON_RECORD_CRASH_CHILD"

// crashChild records the camera at $CORDON_RECORD_CAMERA into the
// directory named by crashChildEnv until killed.
func crashChild() {
	r := &Recorder{Path: os.Getenv(crashChildEnv), Log: quietLog(), Auditor: &memAudit{}}
	if err := r.Initialize(); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	if err := r.StartCamera("crash", rtspSource{url: os.Getenv("CORDON_RECORD_CAMERA")}); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	ci := r.index("crash")
	// report each fragment written (the parent kills us after a few); the
	// child polls its own index: it only talks through stdout
	poll := time.NewTicker(50 * time.Millisecond)
	for range poll.C {
		ci.mu.Lock()
		var end time.Time
		if n := len(ci.segs); n > 0 {
			end = ci.segs[n-1].End
		}
		ci.mu.Unlock()
		if !end.IsZero() {
			fmt.Println("END", end.Format(time.RFC3339Nano))
		}
	}
}

// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestCrashLosesAtMostOneSecond(t *testing.T) {
	cam := startDemoCamera(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "CORDON_RECORD_CAMERA="+cam.URL())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// wait until the child has recorded 3.5 s, at an arbitrary moment
	// within a fragment
	sc := bufio.NewScanner(out)
	var first time.Time
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERROR") {
			t.Fatal(line)
		}
		end, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "END "))
		if err != nil {
			continue
		}
		if first.IsZero() {
			first = end
		}
		if end.Sub(first) > 3500*time.Millisecond {
			break
		}
	}
	// The worst moment to die is just before the next fragment is due: a
	// fragment was written when the line above was printed (within 50 ms),
	// and the next one is written once its first sample is FragmentMax old.
	// Nothing in the child can signal "almost due", so wait that long.
	time.Sleep(DefaultFragmentMax - 60*time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()

	files, _ := filepath.Glob(filepath.Join(dir, "crash", "*", "*.mp4"))
	if len(files) != 1 {
		t.Fatalf("segment files after the crash: %v", files)
	}
	if idx, _ := filepath.Glob(filepath.Join(dir, "crash", "*", indexName)); len(idx) != 0 {
		t.Fatalf("the open segment was indexed before the crash: %v", idx)
	}
	before, _ := os.Stat(files[0])

	// the next start repairs the tail and indexes the segment
	r := &Recorder{Path: dir, Log: quietLog(), Auditor: &memAudit{}}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ci := r.index("crash")
	if ci == nil || len(ci.segs) != 1 || !ci.segs[0].Repaired {
		t.Fatalf("index after restart: %+v", ci)
	}
	seg := ci.segs[0]
	lastFrame := seg.End.Add(-frameDur)
	lost := killed.Sub(lastFrame)
	t.Logf("killed %s after the first frame; last playable frame %s before the kill; file %d -> %d bytes",
		killed.Sub(seg.Start).Round(time.Millisecond), lost.Round(time.Millisecond), before.Size(), seg.Bytes)
	if lost > time.Second {
		t.Fatalf("the last playable frame is %s older than the kill", lost)
	}
	streams := ffprobe(t, files[0])
	if streams[0].frames(t) != seg.Frames {
		t.Fatalf("ffprobe counts %d frames, the index %d", streams[0].frames(t), seg.Frames)
	}
	ffmpegDecode(t, files[0])
	after, _ := os.Stat(files[0])
	if after.Size() != seg.Bytes {
		t.Fatalf("file %d bytes, index %d", after.Size(), seg.Bytes)
	}
	// a second start finds it indexed: nothing more to repair
	r.Close()
	r2 := &Recorder{Path: dir, Log: quietLog()}
	if err := r2.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if s := r2.index("crash").segs; len(s) != 1 || s[0].SHA256 != seg.SHA256 {
		t.Fatalf("after a second start: %+v", s)
	}
}
