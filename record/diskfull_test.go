package record

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/democam"
	"cordon/internal/testtool"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "512k") on a new
// directory and unmounts it when the test ends. It needs root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testtool.Missing(t, "the disk-full test mounts a size-limited tmpfs, which needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		testtool.Missing(t, "cannot mount a tmpfs: "+string(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// The disk fills up while recording: the stream is still read at full
// speed (live viewing never waits for the recorder), the error is counted,
// what was recorded stays playable, and recording resumes once there is
// room again.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "400k")
	clock, vc := newVirtualClock(time.Now().UTC().Add(-time.Hour))
	reg := prometheus.NewRegistry()
	r := &Recorder{Path: dir, Clock: clock, SegmentDuration: 10 * time.Second, QueueSamples: 1 << 16,
		Log: quietLog(), Metrics: NewMetrics(reg), Auditor: &memAudit{}}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := newClipSource(t, democam.ClipMain, 1500, false, vc) // 100 s of clip, several times the disk
	src.pauseAt, src.paused, src.resume = 1200, make(chan struct{}), make(chan struct{})
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.paused:
	case <-time.After(60 * time.Second):
		t.Fatal("the recorder stopped reading the stream when the disk filled")
	}
	full := func() float64 { return testutil.ToFloat64(r.Metrics.errors.WithLabelValues("gate", "disk_full")) }
	// the recorder's queue has no change notification
	testtool.WaitFor(t, 30*time.Second, "the recorder to catch up with the stream", func() bool { return queueLen(r, "gate") == 0 })
	// 35 s of stream after the disk filled: retries at 1, 2, 4, 8... s
	if full() < 3 {
		t.Fatalf("disk_full errors: %v", full())
	}
	spans, _ := r.Spans("gate", time.Now().Add(-2*time.Hour), time.Now())
	if len(spans) == 0 {
		t.Fatal("nothing recorded before the disk filled")
	}
	c, err := r.Playback(PlaybackRequest{Camera: "gate", Start: spans[0].Start, Duration: 5 * time.Second})
	if err != nil {
		t.Fatalf("what was recorded before the disk filled does not play: %v", err)
	}
	c.Close()

	// room again: recording resumes at a keyframe
	if out, err := exec.Command("mount", "-o", "remount,size=16m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	close(src.resume)
	src.waitDone(t, 60*time.Second)
	r.StopCamera("gate")
	after, _ := r.Spans("gate", time.Now().Add(-2*time.Hour), time.Now())
	end := after[len(after)-1].End
	want := clock.anchorWall.Add(100 * time.Second)
	if end.Before(want.Add(-2*time.Second)) || end.After(want.Add(time.Second)) {
		t.Fatalf("recording did not resume: spans %v, want one ending near %s", after, FormatTime(want))
	}
	t.Logf("disk_full errors: %v; spans %d", full(), len(after))
}

func queueLen(r *Recorder, cam string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cams[cam].cam.q)
}
