package testtool

import (
	"bytes"
	"context"
	"os/exec"
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
