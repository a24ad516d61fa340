package democam

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"cordon/internal/soap"
	"cordon/internal/testtool"
)

func startPTZ(t *testing.T, c *PTZCamera) *PTZCamera {
	t.Helper()
	if c.Listen == "" {
		c.Listen = "127.0.0.5:0"
	}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// soapCall posts one operation with an optional WS-Security token.
func soapCall(t *testing.T, c *PTZCamera, path string, body soap.Node, tok *soap.UsernameToken) (*http.Response, *soap.Envelope) {
	t.Helper()
	m := &soap.Message{Body: []soap.Node{body}}
	if tok != nil {
		m.Header = []soap.Node{tok.Node()}
	}
	res, err := http.Post("http://"+c.httpAddr+path, soap.SOAP12.ContentType(), bytes.NewReader(m.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusUnauthorized {
		return res, nil
	}
	env, err := soap.ParseEnvelope(res.Body, soap.Limits{})
	if err != nil {
		t.Fatalf("%s: answer is not SOAP: %v", body.Name, err)
	}
	return res, env
}

func TestPTZCameraONVIFAuth(t *testing.T) {
	c := startPTZ(t, &PTZCamera{ID: "dome-auth", Username: "admin", Password: "pw"})
	// GetSystemDateAndTime needs no credentials
	_, env := soapCall(t, c, DevicePath, soap.El("tds:GetSystemDateAndTime"), nil)
	if env.Payload().Path("SystemDateAndTime", "UTCDateTime", "Date", "Year") == nil {
		t.Fatalf("%+v", env.Payload())
	}
	// no credentials: 401 with a Digest challenge
	res, _ := soapCall(t, c, DevicePath, soap.El("tds:GetDeviceInformation"), nil)
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Digest ") {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	// a wrong password: ter:NotAuthorized
	bad, _ := soap.NewUsernameToken("admin", "nope", time.Now())
	res, env = soapCall(t, c, DevicePath, soap.El("tds:GetDeviceInformation"), &bad)
	if f := soap.FaultOf(env); res.StatusCode != 400 || f == nil || !f.Has(soap.NsError, "NotAuthorized") {
		t.Fatalf("%d %v", res.StatusCode, f)
	}
	good, _ := soap.NewUsernameToken("admin", "pw", time.Now())
	_, env = soapCall(t, c, DevicePath, soap.El("tds:GetDeviceInformation"), &good)
	if env.Payload().TextOf("SerialNumber") != "dome-auth" {
		t.Fatalf("%+v", env.Payload())
	}
	// the same token again is a replay
	_, env = soapCall(t, c, DevicePath, soap.El("tds:GetDeviceInformation"), &good)
	if f := soap.FaultOf(env); f == nil {
		t.Fatal("replayed token accepted")
	}
	// unknown operations: ActionNotSupported
	tok, _ := soap.NewUsernameToken("admin", "pw", time.Now())
	res, env = soapCall(t, c, DevicePath, soap.El("tds:SystemReboot"), &tok)
	if f := soap.FaultOf(env); res.StatusCode != 500 || f == nil || !f.Has(soap.NsError, "ActionNotSupported") {
		t.Fatalf("%d %v", res.StatusCode, f)
	}
	calls := c.Calls()
	if len(calls) != 6 || calls[1] != "GetDeviceInformation (refused)" || calls[3] != "GetDeviceInformation" {
		t.Fatalf("%q", calls)
	}
}

func TestPTZStateMechanics(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newPTZState(func() time.Time { return now })
	s.continuousMove(ptzAxes{1, -0.5, 0}, time.Second)
	now = now.Add(500 * time.Millisecond)
	if p, m := s.position(); !m || p != (ptzAxes{0.25, -0.125, 0}) {
		t.Fatalf("%v %v", p, m)
	}
	now = now.Add(10 * time.Second) // the timeout stopped it at 1 s
	if p, m := s.position(); m || p != (ptzAxes{0.5, -0.25, 0}) {
		t.Fatalf("%v %v", p, m)
	}
	s.continuousMove(ptzAxes{0, 0, 1}, 0) // no timeout: until Stop; clamped at the end
	now = now.Add(10 * time.Second)
	if p, m := s.position(); !m || p[2] != 1 {
		t.Fatalf("%v %v", p, m)
	}
	s.stop()
	s.gotoPosition(ptzAxes{-0.5, 0.25, 0.5})
	now = now.Add(500 * time.Millisecond)
	if p, m := s.position(); !m || p != (ptzAxes{0, 0.25, 0.5}) {
		t.Fatalf("%v %v", p, m)
	}
	now = now.Add(time.Second)
	if p, m := s.position(); m || p != (ptzAxes{-0.5, 0.25, 0.5}) {
		t.Fatalf("%v %v", p, m)
	}
}

func TestParseXSDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT1.5S": 1500 * time.Millisecond, "PT1M": time.Minute, "PT0H0M2S": 2 * time.Second, "P0DT0.5S": 500 * time.Millisecond,
	} {
		if got, err := parseXSDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1S", "PT", "PTS", "PT-1S", "P1DT1S", "PT25H", "PT1X"} {
		if _, err := parseXSDuration(in); err == nil && in != "PT" {
			t.Errorf("%q accepted", in)
		}
	}
}

// grabFrame decodes one frame of the camera's RTSP stream with ffmpeg; any
// decoder message fails the test.
func grabFrame(t *testing.T, c *PTZCamera) []byte {
	t.Helper()
	ff := testtool.Require(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u := strings.Replace(c.URL(), "rtsp://", "rtsp://"+c.Username+":"+c.Password+"@", 1)
	cmd := exec.CommandContext(ctx, ff, "-v", "error", "-analyzeduration", "500000", "-rtsp_transport", "tcp", "-i", u,
		"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("ffmpeg: %v: %s", err, errb.String())
	}
	if out.Len() != ptzWidth*ptzHeight*3/2 {
		t.Fatalf("frame of %d bytes", out.Len())
	}
	return out.Bytes()
}

// redCentroidX is the mean x of the red landmark's pixels (Cr high, Cb
// low), or -1 when none is in view.
func redCentroidX(f []byte) float64 {
	cb := f[ptzWidth*ptzHeight:]
	cr := cb[ptzWidth*ptzHeight/4:]
	sum, n := 0.0, 0
	for y := 20; y < ptzHeight/2; y++ { // below the readout
		for x := 0; x < ptzWidth/2; x++ {
			if cr[y*ptzWidth/2+x] > 220 && cb[y*ptzWidth/2+x] < 110 {
				sum += float64(2*x) + 1
				n++
			}
		}
	}
	if n < 20 {
		return -1
	}
	return sum / float64(n)
}

func TestPTZCameraPictureFollowsPan(t *testing.T) {
	testtool.Require(t, "ffprobe")
	c := startPTZ(t, &PTZCamera{ID: "dome-pic", Username: "admin", Password: "pw"})
	out, err := exec.Command("ffprobe", "-v", "error", "-analyzeduration", "500000", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name,width,height",
		"-of", "csv=p=0", strings.Replace(c.URL(), "rtsp://", "rtsp://admin:pw@", 1)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "h264,320,180" {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	before := grabFrame(t, c)
	x0 := redCentroidX(before)
	if x0 < 150 || x0 > 170 {
		t.Fatalf("red landmark at x=%.1f at home, want the centre", x0)
	}
	// pan right for 0.3 s (the camera's own timeout ends the move)
	c.state.continuousMove(ptzAxes{1, 0, 0}, 300*time.Millisecond)
	testtool.WaitFor(t, 5*time.Second, "the dome to stop", func() bool { // its mechanics have no event to wait on
		_, _, _, moving := c.Position()
		return !moving
	})
	pan, _, _, _ := c.Position()
	after := grabFrame(t, c)
	x1 := redCentroidX(after)
	want := x0 - pan*worldSpanX/2
	if pan < 0.1 || x1 < 0 || x1 < want-2 || x1 > want+2 {
		t.Fatalf("pan %.3f: red landmark at x=%.1f, want %.1f", pan, x1, want)
	}
	diff := 0
	for i := 0; i < ptzWidth*ptzHeight; i++ {
		if before[i] != after[i] {
			diff++
		}
	}
	if diff < ptzWidth*ptzHeight/4 {
		t.Fatalf("only %d luma samples changed", diff)
	}
}
