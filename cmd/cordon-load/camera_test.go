package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cordon/internal/testtool"
)

// The bench camera serves ffmpeg's looping clip at /live and /live/1..N;
// an RTSP reader of /live/2 decodes frames, a path past N is refused.
func TestBenchCamera(t *testing.T) {
	ffmpeg := testtool.Require(t, "ffmpeg")
	clip := filepath.Join(t.TempDir(), "clip.mkv")
	testtool.EncodeClip(t, clip, "320x240", 25, 2)
	ctx, cancel := context.WithCancel(context.Background())
	var out testtool.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- serveCamera(ctx, "127.0.0.1:0", clip, ffmpeg, 3, &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testtool.WaitFor(t, 30*time.Second, "the camera ready line", func() bool { return strings.Contains(out.String(), "camera ready") })
	line := out.String()
	base := strings.Fields(line[strings.Index(line, "rtsp://"):])[0]
	var rep bytes.Buffer
	if code := run([]string{"--rtsp-url", base + "/2", "--viewers", "1", "--duration", "2s", "--quiet"}, &rep, &rep); code != 0 ||
		!strings.Contains(rep.String(), "1 connected") {
		t.Fatalf("reading /live/2: exit %d\n%s", code, rep.String())
	}
	if describes(base + "/4") {
		t.Fatal("/live/4 served with --paths 3")
	}
}
