package e2e

// Helpers of the core-pipeline, RTSP re-serve, resilience and benchmark
// tests (browser_test.go, ffmpeg_test.go, resilience_test.go,
// bench_test.go). Names carry a "core" prefix so they do not collide with
// other files of this package. Camera hosts of these tests: 127.0.0.31-60.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"cordon/democam"
	"cordon/democam/ffcam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// e2eArtifacts is where the browser tests save their screenshots
// (e2e/artifacts, gitignored).
const e2eArtifacts = "artifacts"

// coreCam starts a clean democam camera (H.264, 15 fps, GOP 2 s) on host.
func coreCam(t testing.TB, id, host string, audio bool) *democam.Camera {
	t.Helper()
	c := &democam.Camera{ID: id, Listen: host + ":0", Path: "Streaming/Channels/101",
		Username: "cam", Password: "cam-" + id + "-pw", Audio: audio}
	if err := c.Initialize(); err != nil {
		t.Fatalf("democam %s on %s: %v", id, host, err)
	}
	t.Cleanup(c.Close)
	return c
}

// coreMetric scrapes the gateway's /metrics and returns the sum of the
// samples of name whose labels contain every want pair (e.g. `camera="x"`).
// found is false when no sample matched.
func coreMetric(t testing.TB, metricsAddr, name string, want ...string) (sum float64, found bool) {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		metric, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		mname, labels, _ := strings.Cut(metric, "{")
		if mname != name {
			continue
		}
		match := true
		for _, w := range want {
			if !strings.Contains(labels, w) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	return sum, found
}

// coreCamera is one entry of GET /api/v1/cameras.
type coreCamera struct {
	ID      string `json:"id"`
	Online  bool   `json:"online"`
	Viewers int    `json:"viewers"`
}

// coreCameras returns the cameras API answer as a map by id.
func coreCameras(t testing.TB, base, token string) map[string]coreCamera {
	t.Helper()
	status, _, body := e2eutil.Do(t, http.MethodGet, base+"/api/v1/cameras", token, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/cameras: %d %s", status, body)
	}
	var list []coreCamera
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("cameras answer %s: %v", body, err)
	}
	out := map[string]coreCamera{}
	for _, c := range list {
		out[c.ID] = c
	}
	return out
}

// coreAuditEvents returns the audit log's events, in order, for camera
// ("" = all cameras).
func coreAuditEvents(t testing.TB, path, camera string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Event  string `json:"event"`
			Camera string `json:"camera"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if camera == "" || e.Camera == camera {
			out = append(out, e.Event)
		}
	}
	return out
}

// coreEncodeClip encodes a test clip with ffmpeg (lavfi testsrc2, libx264,
// no B-frames, GOP gop, 15 fps) into dir and returns its path. bitrate ""
// = quality-based (small); otherwise CBR-like at that rate with noise added
// so the encoder really spends the bits.
func coreEncodeClip(t testing.TB, dir, size string, seconds int, gop int, bitrate string) string {
	t.Helper()
	ffmpeg := testtool.Require(t, "ffmpeg")
	out := filepath.Join(dir, fmt.Sprintf("clip-%s-%s.mkv", size, bitrate))
	args := []string{"-hide_banner", "-v", "error", "-y", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=%s:rate=15:duration=%d", size, seconds)}
	if bitrate != "" {
		args = append(args, "-vf", "noise=alls=40:allf=t")
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "2",
		"-bf", "0", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0")
	if bitrate != "" {
		args = append(args, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate)
	} else {
		args = append(args, "-crf", "30")
	}
	args = append(args, out)
	cmd := exec.Command(ffmpeg, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("encode clip: %v\n%s", err, b)
	}
	return out
}

// startFFCam serves on host ffmpeg publishing clip in a loop at real time
// ("ffmpeg as the camera", democam/ffcam: cordon ingests ffmpeg's own SDP
// and RTP packetization). It returns once ffmpeg is publishing.
func startFFCam(t testing.TB, host, clip string) *ffcam.Camera {
	t.Helper()
	c := &ffcam.Camera{Listen: net.JoinHostPort(host, "0"), Clip: clip, FFmpeg: testtool.Require(t, "ffmpeg"), StartTimeout: 20 * time.Second}
	if err := c.Initialize(); err != nil {
		t.Fatalf("ffmpeg camera on %s: %v", host, err)
	}
	t.Cleanup(c.Close)
	return c
}

// coreRTSPReader is a light RTSP client of the re-serve (gortsplib) that
// counts the H.264 access units it decodes.
type coreRTSPReader struct {
	c       *gortsplib.Client
	aus     atomic.Int64
	packets atomic.Int64
	bytes   atomic.Int64
	first   atomic.Bool  // first AU carried SPS, PPS and IDR
	firstAU atomic.Value // string: NAL types of the first AU, first packet's info
	pktInfo atomic.Value
	done    chan error
}

// dialRTSP reads rtsp://user:pass@addr/camera. udp selects UDP transport.
func dialRTSP(addr, camera, user, pass string, udp bool) (*coreRTSPReader, error) {
	u, err := base.ParseURL(fmt.Sprintf("rtsp://%s:%s@%s/%s", user, pass, addr, camera))
	if err != nil {
		return nil, err
	}
	proto := gortsplib.ProtocolTCP
	if udp {
		proto = gortsplib.ProtocolUDP
	}
	r := &coreRTSPReader{done: make(chan error, 1)}
	r.c = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second}
	if err := r.c.Start(); err != nil {
		return nil, err
	}
	desc, _, err := r.c.Describe(u)
	if err != nil {
		r.c.Close()
		return nil, err
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if medi == nil {
		r.c.Close()
		return nil, fmt.Errorf("no H.264 track in the re-serve's SDP")
	}
	dec, err := h264.CreateDecoder()
	if err != nil {
		r.c.Close()
		return nil, err
	}
	if _, err := r.c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		r.c.Close()
		return nil, err
	}
	r.c.OnPacketRTP(medi, h264, func(p *rtp.Packet) {
		if r.packets.Add(1) == 1 {
			r.pktInfo.Store(fmt.Sprintf("first packet seq %d ts %d marker %v payload[0]=%#x len %d", p.SequenceNumber, p.Timestamp, p.Marker, p.Payload[0], len(p.Payload)))
		}
		r.bytes.Add(int64(len(p.Payload)))
		au, err := dec.Decode(p)
		if err != nil {
			return
		}
		// the first AU is recorded before aus counts it: a test that saw
		// aus > 0 reads a first AU that is already stored
		if r.aus.Load() == 0 {
			types := e2eutil.H264Types(au)
			r.firstAU.Store(fmt.Sprint(types))
			r.first.Store(len(types) >= 3 && types[0] == 7 && types[1] == 8 && types[len(types)-1] == 5)
		}
		r.aus.Add(1)
	})
	if _, err := r.c.Play(nil); err != nil {
		r.c.Close()
		return nil, err
	}
	go func() { r.done <- r.c.Wait() }()
	return r, nil
}

// Close ends the RTSP session.
func (r *coreRTSPReader) Close() {
	r.c.Close()
	<-r.done
	r.done <- nil // idempotent
}

// coreRun runs a program with a timeout and returns its stdout, stderr and
// exit error.
func coreRun(ctx context.Context, timeout time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = io.NopCloser(strings.NewReader(""))
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// coreCountAUs drains a viewer's access units for d and returns how many
// arrived.
func coreCountAUs(v *e2eutil.Viewer, d time.Duration) int {
	n := 0
	deadline := time.After(d)
	for {
		select {
		case <-v.AUs:
			n++
		case <-deadline:
			return n
		}
	}
}
