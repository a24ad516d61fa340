package democam

import (
	"bufio"
	"bytes"
	"context"
	"cordon/internal/testtool"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startCamera(t *testing.T, c *Camera) *Camera {
	t.Helper()
	if c.Listen == "" {
		c.Listen = "127.0.0.2:0"
	}
	if c.Path == "" {
		c.Path = "live"
	}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func withCreds(u, user, pass string) string {
	return strings.Replace(u, "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
}

func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func TestFFprobeSeesH264AndPCMU(t *testing.T) {
	t.Parallel()
	ffprobe := testtool.Require(t, "ffprobe")
	c := startCamera(t, &Camera{ID: "probe", Audio: true, Path: "Streaming/Channels/101"})
	out, stderr, err := run(t, 15*time.Second, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-show_entries", "stream=codec_name,width,height", "-of", "json", c.URL())
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, stderr)
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	codecs := map[string]int{}
	for _, s := range res.Streams {
		codecs[s.CodecName] = s.Width
	}
	if codecs["h264"] != 320 {
		t.Fatalf("no 320-wide h264 stream: %s", out)
	}
	if _, ok := codecs["pcm_mulaw"]; !ok {
		t.Fatalf("no PCMU stream: %s", out)
	}
}

func TestFFmpegDecodesCleanly(t *testing.T) {
	t.Parallel()
	ffmpeg := testtool.Require(t, "ffmpeg")
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			c := startCamera(t, &Camera{ID: "dec-" + transport, Audio: true, Username: "u", Password: "p w"})
			_, stderr, err := run(t, 20*time.Second, ffmpeg, "-v", "error", "-rtsp_transport", transport,
				"-i", withCreds(c.URL(), "u", "p%20w"), "-frames:v", "30", "-f", "null", "-")
			if err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, stderr)
			}
			if bad := decodeProblems(stderr); bad != "" {
				t.Fatalf("decode errors:\n%s", bad)
			}
		})
	}
}

// joinMidGOP are the messages ffmpeg prints when it starts on the P-frames
// before the camera's next keyframe: a camera has no GOP cache, so a
// client that joins mid-GOP sees them, as with real cameras (cordon's own
// outputs start on a keyframe and are held to zero errors in e2e).
var joinMidGOP = []string{
	"reference picture missing during reorder",
	"missing reference picture",
	"decode_slice_header error",
	"no frame!",
	"last message repeated",
}

// decodeProblems returns ffmpeg's error lines other than the mid-GOP join
// ones.
func decodeProblems(stderr string) string {
	var bad []string
	for _, line := range strings.Split(stderr, "\n") {
		l := strings.ToLower(strings.TrimSpace(line))
		if l == "" {
			continue
		}
		known := false
		for _, k := range joinMidGOP {
			if strings.Contains(l, k) {
				known = true
				break
			}
		}
		if !known {
			bad = append(bad, line)
		}
	}
	return strings.Join(bad, "\n")
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	ffprobe := testtool.Require(t, "ffprobe")
	c := startCamera(t, &Camera{ID: "auth", Username: "viewer", Password: "secret", Quirks: Quirks{HikvisionSDP: true}})
	_, stderr, err := run(t, 10*time.Second, ffprobe, "-v", "error", "-rtsp_transport", "tcp", c.URL())
	if err == nil || !strings.Contains(stderr, "401") {
		t.Fatalf("ffprobe without credentials: err=%v stderr=%s", err, stderr)
	}
	_, stderr, err = run(t, 10*time.Second, ffprobe, "-v", "error", "-rtsp_transport", "tcp", withCreds(c.URL(), "viewer", "wrong"))
	if err == nil {
		t.Fatalf("ffprobe with a wrong password succeeded: %s", stderr)
	}
	res := rawDescribe(t, c)
	if res.StatusCode != base.StatusUnauthorized {
		t.Fatalf("status %d", res.StatusCode)
	}
	www := strings.Join(res.Header["WWW-Authenticate"], " | ")
	if !strings.Contains(www, `realm="hikvision"`) || !strings.Contains(www, "Digest") || !strings.Contains(www, "Basic") {
		t.Fatalf("WWW-Authenticate: %s", www)
	}
	// gortsplib client with credentials (Digest) gets the quirky SDP
	u, _ := base.ParseURL(withCreds(c.URL(), "viewer", "secret"))
	cl := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, dres, err := cl.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dres.Body, []byte("a=Media_header:MEDIAINFO=494D4B48")) {
		t.Fatalf("SDP:\n%s", dres.Body)
	}
}

// rawDescribe sends an unauthenticated DESCRIBE over a plain socket.
func rawDescribe(t *testing.T, c *Camera) *base.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", c.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n", c.URL())
	var res base.Response
	if err := res.Unmarshal(bufio.NewReader(conn)); err != nil {
		t.Fatal(err)
	}
	return &res
}

// capture is what a gortsplib client received from a camera.
type capture struct {
	mu     sync.Mutex
	sdp    []byte
	server string
	pkts   map[string][]*rtp.Packet // by media type
}

func (cp *capture) video() []*rtp.Packet {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]*rtp.Packet(nil), cp.pkts["video"]...)
}

// frames counts the video frames (distinct RTP timestamps) captured.
func (cp *capture) frames() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	n := 0
	for i, p := range cp.pkts["video"] {
		if i == 0 || p.Timestamp != cp.pkts["video"][i-1].Timestamp {
			n++
		}
	}
	return n
}

// play reads from a camera with gortsplib (TCP), skipping back channels,
// until it has captured frames video frames (plus the packets of the one
// in progress).
func play(t *testing.T, c *Camera, frames int) *capture {
	t.Helper()
	u, err := base.ParseURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	proto := gortsplib.ProtocolTCP
	cl := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	desc, res, err := cl.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	cp := &capture{sdp: res.Body, pkts: map[string][]*rtp.Packet{}}
	if s := res.Header["Server"]; len(s) > 0 {
		cp.server = s[0]
	}
	var medias []*description.Media
	for _, m := range desc.Medias {
		if !m.IsBackChannel {
			medias = append(medias, m)
		}
	}
	if err := cl.SetupAll(desc.BaseURL, medias); err != nil {
		t.Fatal(err)
	}
	cl.OnPacketRTPAny(func(m *description.Media, _ format.Format, p *rtp.Packet) {
		cp.mu.Lock()
		cp.pkts[string(m.Type)] = append(cp.pkts[string(m.Type)], p.Clone())
		cp.mu.Unlock()
	})
	if _, err := cl.Play(nil); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, 20*time.Second, fmt.Sprintf("%d video frames", frames), func() bool { return cp.frames() > frames })
	return cp
}

// aus depacketizes H.264 video packets into access units (mode 0 or 1).
func aus(t *testing.T, pkts []*rtp.Packet) [][][]byte {
	t.Helper()
	dec := &rtph264.Decoder{PacketizationMode: 1}
	if err := dec.Init(); err != nil {
		t.Fatal(err)
	}
	var out [][][]byte
	for _, p := range pkts {
		au, err := dec.Decode(p)
		if err == nil {
			out = append(out, au)
		}
	}
	return out
}

func TestContinuousTimestampsAndRestart(t *testing.T) {
	t.Parallel()
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			t.Parallel()
			c := startCamera(t, &Camera{ID: "restart", Quirks: Quirks{TimestampResetOnReconnect: reset, BFrames: false}})
			before := play(t, c, FPS*3/2).video()
			if len(before) == 0 {
				t.Fatal("no video before restart")
			}
			for i := 1; i < len(before); i++ {
				if before[i].SequenceNumber != before[i-1].SequenceNumber+1 {
					t.Fatalf("sequence gap %d -> %d", before[i-1].SequenceNumber, before[i].SequenceNumber)
				}
				if d := before[i].Timestamp - before[i-1].Timestamp; d != 0 && d != frameTicks {
					t.Fatalf("timestamp step %d", d)
				}
				if before[i-1].Marker != (before[i].Timestamp != before[i-1].Timestamp) {
					t.Fatalf("packet %d: marker %v but next timestamp step %d", i-1, before[i-1].Marker, before[i].Timestamp-before[i-1].Timestamp)
				}
			}
			if err := c.Restart(); err != nil {
				t.Fatal(err)
			}
			after := play(t, c, FPS*6/10).video()
			if len(after) == 0 {
				t.Fatal("no video after restart")
			}
			last, first := before[len(before)-1], after[0]
			if reset {
				if first.Timestamp > 10*frameTicks || first.SequenceNumber > 100 {
					t.Fatalf("after restart ts=%d seq=%d, want near 0", first.Timestamp, first.SequenceNumber)
				}
			} else {
				dt := first.Timestamp - last.Timestamp
				if dt == 0 || dt > 60*frameTicks {
					t.Fatalf("timestamp not continuous across restart: %d -> %d", last.Timestamp, first.Timestamp)
				}
			}
		})
	}
}

func TestMarkersAndClipLoop(t *testing.T) {
	// Markers are on the last packet of every access unit only; the clip
	// is the looped one, so timestamps are checked across a loop by
	// arithmetic (a full 60 s loop is too long for a test).
	c := &Camera{ID: "loop"}
	c.Listen = "127.0.0.2:0"
	clip, err := LoadClip(ClipMain)
	if err != nil {
		t.Fatal(err)
	}
	c.clip = clip
	e, err := newEmitter(c)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(clip.AUs))
	if e.videoPTS(n) != n || e.videoPTS(n-1) != n-1 || e.videoPTS(3*n+5) != 3*n+5 {
		t.Fatal("PTS not continuous across loops")
	}
	pkts, err := e.packetize(clip.AUs[0].NALUs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if p.Marker != (i == len(pkts)-1) {
			t.Fatalf("packet %d/%d marker=%v", i, len(pkts), p.Marker)
		}
	}
}

func h264Types(au [][]byte) map[int]int {
	m := map[int]int{}
	for _, n := range au {
		m[int(n[0]&0x1f)]++
	}
	return m
}

func TestQuirkKit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		q     Quirks
		audio bool
		check func(t *testing.T, c *Camera, cp *capture)
	}{
		{"HikvisionSDP", Quirks{HikvisionSDP: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			for _, want := range []string{"s=HIK Media Server V5", "a=Media_header:MEDIAINFO=494D4B48", "a=appversion:1.0", "a=x-dimensions:320,180"} {
				if !bytes.Contains(cp.sdp, []byte(want)) {
					t.Errorf("SDP lacks %q:\n%s", want, cp.sdp)
				}
			}
			if cp.server != "Hikvision-Webs" {
				t.Errorf("Server %q", cp.server)
			}
		}},
		{"DahuaTracks", Quirks{DahuaTracks: true}, true, func(t *testing.T, c *Camera, cp *capture) {
			for _, want := range []string{"s=Media Server", "a=packetization-supported:DH", "a=x-rtppayload-supported:IV", "vnd.onvif.metadata/90000", "a=sendonly"} {
				if !bytes.Contains(cp.sdp, []byte(want)) {
					t.Errorf("SDP lacks %q:\n%s", want, cp.sdp)
				}
			}
			if cp.server != "Dahua Rtsp Server" {
				t.Errorf("Server %q", cp.server)
			}
			if !strings.HasPrefix(c.realm, "Login to ") {
				t.Errorf("realm %q", c.realm)
			}
			cp.mu.Lock()
			meta := cp.pkts["application"]
			cp.mu.Unlock()
			if len(meta) == 0 || !bytes.Contains(meta[0].Payload, []byte("tt:MetadataStream")) {
				t.Errorf("no ONVIF metadata packets (%d)", len(meta))
			}
		}},
		{"SEI+AUD+filler", Quirks{PrivateSEI: true, SignedSEI: true, AUDAndFiller: true}, false, func(t *testing.T, c *Camera, cp *capture) {
			units := aus(t, cp.video())
			if len(units) < 5 {
				t.Fatalf("%d access units", len(units))
			}
			axis, priv := AxisSignedVideoUUID(), c.PrivateSEIUUID()
			for _, au := range units {
				ty := h264Types(au)
				if ty[6] != 2 || ty[9] != 1 || ty[12] != 1 || au[0][0]&0x1f != 9 {
					t.Fatalf("NAL types %v", ty)
				}
				joined := bytes.Join(au, nil)
				if !bytes.Contains(joined, axis[:]) || !bytes.Contains(joined, priv[:]) {
					t.Fatal("SEI UUIDs missing")
				}
				if !bytes.Contains(joined, []byte{0x06, 0x80}) || !bytes.Contains(joined, []byte{0xf0}) {
					t.Fatal("SEI payload types 128/240 missing")
				}
			}
		}},
		{"HeaderExtensions", Quirks{HeaderExtensions: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			var onvif, oneByte int
			for _, p := range cp.video() {
				if len(p.CSRC) != 2 || !p.Padding {
					t.Fatalf("CSRC %v padding %v", p.CSRC, p.Padding)
				}
				switch p.ExtensionProfile {
				case 0xABAC:
					onvif++
					if len(p.GetExtension(0)) != 12 {
						t.Fatal("ONVIF extension is not 3 words")
					}
				case rtp.ExtensionProfileOneByte:
					oneByte++
				}
			}
			if onvif == 0 || oneByte == 0 {
				t.Fatalf("onvif=%d one-byte=%d", onvif, oneByte)
			}
			if len(aus(t, cp.video())) < 5 {
				t.Fatal("stream does not depacketize")
			}
		}},
		{"ParamsOnlyInSDP", Quirks{ParamsOnlyInSDP: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			if !bytes.Contains(cp.sdp, []byte("sprop-parameter-sets=")) {
				t.Fatalf("SDP:\n%s", cp.sdp)
			}
			idr := 0
			for _, au := range aus(t, cp.video()) {
				ty := h264Types(au)
				if ty[7] > 0 || ty[8] > 0 {
					t.Fatal("SPS/PPS in band")
				}
				idr += ty[5]
			}
			if idr == 0 {
				t.Fatal("no IDR seen")
			}
		}},
		{"MarkerOnParamSets", Quirks{MarkerOnParamSets: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			pkts := cp.video()
			found := false
			for i := 0; i+2 < len(pkts); i++ {
				if pkts[i].Payload[0]&0x1f == 7 && pkts[i].Marker {
					if pkts[i+1].Payload[0]&0x1f != 8 || !pkts[i+1].Marker {
						t.Fatal("PPS not a marked single-NAL packet after SPS")
					}
					if pkts[i+2].Timestamp != pkts[i].Timestamp {
						t.Fatal("IDR timestamp differs from SPS")
					}
					found = true
				}
			}
			if !found {
				t.Fatal("no marked SPS packet")
			}
		}},
		{"PacketizationMode0", Quirks{PacketizationMode0: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			if !bytes.Contains(cp.sdp, []byte("packetization-mode=0")) {
				t.Fatalf("SDP:\n%s", cp.sdp)
			}
			for _, p := range cp.video() {
				if ty := p.Payload[0] & 0x1f; ty < 1 || ty > 23 {
					t.Fatalf("NAL type %d packet in mode 0", ty)
				}
			}
		}},
		{"BFrames", Quirks{BFrames: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			pkts := cp.video()
			back := false
			for i := 1; i < len(pkts); i++ {
				if int32(pkts[i].Timestamp-pkts[i-1].Timestamp) < 0 {
					back = true
				}
			}
			if !back {
				t.Fatal("timestamps never go backwards: no B-frames")
			}
		}},
		{"H265", Quirks{H265: true, PrivateSEI: true}, false, func(t *testing.T, _ *Camera, cp *capture) {
			if !bytes.Contains(cp.sdp, []byte("H265/90000")) || !bytes.Contains(cp.sdp, []byte("sprop-vps")) {
				t.Fatalf("SDP:\n%s", cp.sdp)
			}
			if len(cp.video()) == 0 {
				t.Fatal("no packets")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startCamera(t, &Camera{ID: strings.ToLower(tc.name), Audio: tc.audio, Quirks: tc.q})
			cp := play(t, c, FPS*5/2)
			tc.check(t, c, cp)
		})
	}
}

func TestDemoCameras(t *testing.T) {
	t.Parallel()
	cams := DemoCameras(2, "127.0.0.1", "", "", nil)
	for _, c := range cams {
		startCamera(t, c)
	}
	if cams[0].URL() == cams[1].URL() || !strings.HasPrefix(cams[0].URL(), "rtsp://127.0.0.1:") {
		t.Fatalf("URLs %s %s", cams[0].URL(), cams[1].URL())
	}
	if res := rawDescribe(t, cams[1]); res.StatusCode != base.StatusOK || !bytes.Contains(res.Body, []byte("sprop-parameter-sets=")) {
		t.Fatalf("DESCRIBE: %d\n%s", res.StatusCode, res.Body)
	}
}

// The camera counts the RTSP sessions it serves: open now, opened in all,
// the most at once. A DESCRIBE alone opens none.
func TestSessionsCounted(t *testing.T) {
	t.Parallel()
	c := startCamera(t, &Camera{ID: "slots"})
	rawDescribe(t, c)
	if c.Sessions() != 0 || c.SessionsOpened() != 0 {
		t.Fatalf("a DESCRIBE opened a session: %d open, %d opened", c.Sessions(), c.SessionsOpened())
	}
	closed := func() bool { return c.Sessions() == 0 }
	play(t, c, 2) // closes its client when done; the camera sees the close a little later
	testtool.WaitFor(t, 5*time.Second, "the first session to close", closed)
	play(t, c, 2)
	testtool.WaitFor(t, 5*time.Second, "the second session to close", closed)
	if c.SessionsOpened() != 2 || c.MaxSessions() != 1 {
		t.Fatalf("opened %d (want 2), at most %d at once (want 1)", c.SessionsOpened(), c.MaxSessions())
	}
	c.ResetMaxSessions()
	if c.MaxSessions() != 0 {
		t.Fatal("ResetMaxSessions kept the old peak")
	}
}
