package testtool

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ProbeVideo plays an RTSP URI (over TCP) with ffprobe and returns
// "codec,width,height" of its first video stream; an error fails the test.
func ProbeVideo(t testing.TB, uri string) string {
	t.Helper()
	ffprobe := Require(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "20000000",
		"-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", uri)
	cmd.Stderr = &stderr
	out, err := cmd.Output() // stdout only: a decoder joining mid-GOP may warn on stderr
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", uri, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// EncodeClip encodes a test pattern (lavfi testsrc2) of size ("320x240")
// at rate fps for seconds with libx264 (no B-frames, a keyframe every
// rate frames) into path (.mkv or .mp4), failing the test on an error.
func EncodeClip(t testing.TB, path, size string, rate, seconds int) {
	t.Helper()
	ffmpeg := Require(t, "ffmpeg")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-v", "error", "-y", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=%s:rate=%d:duration=%d", size, rate, seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0", "-g", strconv.Itoa(rate), path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("encode %s: %v\n%s", path, err, b)
	}
}
