package democam

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"cordon/internal/testtool"
)

// The dome's sub stream: its own RTSP path, 160x90, the same view scaled
// down (the red landmark at the centre at home, as on the main stream),
// and the ONVIF sub profile points at it.
func TestPTZCameraSubStream(t *testing.T) {
	ff := testtool.Require(t, "ffmpeg")
	c := startPTZ(t, &PTZCamera{ID: "dome-sub", Username: "admin", Password: "pw", SubPath: "ptz/sub"})
	if !strings.HasSuffix(c.SubURL(), "/ptz/sub") || !strings.HasSuffix(c.URL(), "/ptz") {
		t.Fatalf("URL %s, SubURL %s", c.URL(), c.SubURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u := strings.Replace(c.SubURL(), "rtsp://", "rtsp://admin:pw@", 1)
	cmd := exec.CommandContext(ctx, ff, "-v", "error", "-analyzeduration", "500000", "-rtsp_transport", "tcp", "-i", u,
		"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("ffmpeg: %v: %s", err, errb.String())
	}
	const w, h = ptzSubWidth, ptzSubHeight
	if out.Len() != w*h*3/2 {
		t.Fatalf("sub frame of %d bytes, want %dx%d", out.Len(), w, h)
	}
	f := out.Bytes()
	cb := f[w*h:]
	cr := cb[w*h/4:]
	sum, n := 0.0, 0
	for y := 12; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			if cr[y*w/2+x] > 220 && cb[y*w/2+x] < 110 {
				sum += float64(2*x) + 1
				n++
			}
		}
	}
	if n < 5 || sum/float64(n) < 72 || sum/float64(n) > 88 {
		t.Fatalf("red landmark on the sub stream: %d pixels at x=%.1f, want the centre", n, sum/float64(max(n, 1)))
	}
}
