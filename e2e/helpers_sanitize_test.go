package e2e

// Helpers of the quirky-camera and secret tests: a direct RTSP tap on a
// camera (or on the gateway's re-serve), an independent NAL/SEI checker
// (deliberately not cordon/relay/sanitize: the test must not trust the code
// it checks), decoding with ffmpeg, and byte-level searches.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/epb"
	"cordon/internal/testtool"
)

// vendorSDPStrings must never reach an operator (FIELD-NOTES: Hikvision and
// Dahua SDP, ONVIF metadata).
var vendorSDPStrings = []string{
	"Media_header", "MEDIAINFO", "x-dimensions", "appversion", "HIK", "Hikvision",
	"packetization-supported", "x-rtppayload", "DH", "Dahua", "onvif", "ONVIF",
	"Media Server", "democam", "Login to",
}

// quirkyCam starts a democam with credentials on host (one of .5-.30).
func quirkyCam(t *testing.T, id, host string, q democam.Quirks) *democam.Camera {
	t.Helper()
	c := &democam.Camera{ID: id, Listen: host + ":0", Path: "Streaming/Channels/101",
		Username: "admin", Password: "cam-" + id + "-pw", Quirks: q, DisableUDP: true}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// tcpOnlyRTSP turns off the re-serve's UDP ports, which parallel gateways
// cannot share (e2eutil.Config now does the same; kept explicit here).
func tcpOnlyRTSP(cfg *config.Config) *config.Config {
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = "", ""
	return cfg
}

// rtspTap is a gortsplib client pulling the video of an RTSP URL over TCP,
// recording the DESCRIBE answer, every response header, and every video
// packet (header, arrival) and access unit.
type rtspTap struct {
	client *gortsplib.Client
	codec  string // "H264" / "H265"

	mu        sync.Mutex
	sdp       string
	responses []string // status line + headers of every response
	ssrcs     map[uint32]bool
	lastSeq   uint16
	npkts     int
	ext, csrc int
	padding   int
	aus       [][][]byte
}

// tapRTSP connects to rawURL (with user and password) and plays its video.
// (Function over 80 lines: one RTSP client setup (tracks, callbacks, play) read as a whole.)
func tapRTSP(t *testing.T, rawURL, user, pass string) *rtspTap {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	tcp := gortsplib.ProtocolTCP
	tp := &rtspTap{ssrcs: map[uint32]bool{}}
	tp.client = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	tp.client.OnResponse = func(res *base.Response) {
		var b strings.Builder
		fmt.Fprintf(&b, "RTSP/1.0 %d %s\r\n", res.StatusCode, res.StatusMessage)
		for k, vs := range res.Header {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
		tp.mu.Lock()
		defer tp.mu.Unlock()
		tp.responses = append(tp.responses, b.String())
		if ct := res.Header["Content-Type"]; len(ct) == 1 && ct[0] == "application/sdp" {
			tp.sdp = string(res.Body)
		}
	}
	if err := tp.client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.client.Close)
	desc, _, err := tp.client.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE %s: %v", u.Host, err)
	}
	var media *description.Media
	var forma format.Format
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264:
				media, forma, tp.codec = m, f, "H264"
			case *format.H265:
				media, forma, tp.codec = m, f, "H265"
			}
		}
		if media != nil {
			break
		}
	}
	if media == nil {
		t.Fatalf("%s: no H.264/H.265 video in %q", u.Host, tp.sdp)
	}
	var decode func(*rtp.Packet) ([][]byte, error)
	switch f := forma.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		decode = d.Decode
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		decode = d.Decode
	}
	if _, err := tp.client.Setup(desc.BaseURL, media, 0, 0); err != nil {
		t.Fatalf("SETUP: %v", err)
	}
	tp.client.OnPacketRTP(media, forma, func(p *rtp.Packet) {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		tp.ssrcs[p.SSRC] = true
		tp.lastSeq = p.SequenceNumber
		tp.npkts++
		if p.Extension {
			tp.ext++
		}
		if len(p.CSRC) > 0 {
			tp.csrc++
		}
		if p.Padding {
			tp.padding++
		}
		if au, err := decode(p); err == nil && len(tp.aus) < 2000 {
			c := make([][]byte, len(au))
			for i, n := range au {
				c[i] = bytes.Clone(n)
			}
			tp.aus = append(tp.aus, c)
		}
	})
	if _, err := tp.client.Play(nil); err != nil {
		t.Fatalf("PLAY: %v", err)
	}
	return tp
}

// tapCamera pulls a democam directly, as the gateway does.
func tapCamera(t *testing.T, c *democam.Camera) *rtspTap {
	t.Helper()
	return tapRTSP(t, c.URL(), c.Username, c.Password)
}

func (tp *rtspTap) AUs() [][][]byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([][][]byte(nil), tp.aus...)
}

func (tp *rtspTap) Packets() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.npkts
}

func (tp *rtspTap) SDP() string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.sdp
}

func (tp *rtspTap) Responses() string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return strings.Join(tp.responses, "\r\n")
}

func (tp *rtspTap) SSRCs() map[uint32]bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	m := map[uint32]bool{}
	for k := range tp.ssrcs {
		m[k] = true
	}
	return m
}

func (tp *rtspTap) LastSeq() uint16 {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.lastSeq
}

// headerQuirks returns how many packets had extensions, CSRCs, padding.
func (tp *rtspTap) headerQuirks() (ext, csrc, pad int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.ext, tp.csrc, tp.padding
}

// nalType returns the NAL unit type for the codec.
func nalType(codec string, n []byte) int {
	if len(n) == 0 {
		return -1
	}
	if codec == "H265" {
		return int(n[0]>>1) & 0x3f
	}
	return int(n[0] & 0x1f)
}

// hasNALType reports whether any access unit holds a NAL unit of type typ.
func hasNALType(codec string, aus [][][]byte, typ int) bool {
	for _, au := range aus {
		for _, n := range au {
			if nalType(codec, n) == typ {
				return true
			}
		}
	}
	return false
}

// seiMsg is one parsed SEI message.
type seiMsg struct {
	typ  int
	uuid []byte // user data unregistered only
}

// parseSEI parses an SEI NAL unit (header included) independently of the
// product's parser.
func parseSEI(codec string, nal []byte) ([]seiMsg, error) {
	hdr := 1
	if codec == "H265" {
		hdr = 2
	}
	if len(nal) <= hdr {
		return nil, fmt.Errorf("SEI of %d bytes", len(nal))
	}
	r := epb.Remove(nal[hdr:])
	var msgs []seiMsg
	i := 0
	for i < len(r) && !(r[i] == 0x80 && i == len(r)-1) {
		typ, size := 0, 0
		for i < len(r) && r[i] == 0xff {
			typ += 255
			i++
		}
		if i >= len(r) {
			return nil, fmt.Errorf("SEI truncated in type")
		}
		typ += int(r[i])
		i++
		for i < len(r) && r[i] == 0xff {
			size += 255
			i++
		}
		if i >= len(r) {
			return nil, fmt.Errorf("SEI truncated in size")
		}
		size += int(r[i])
		i++
		if i+size > len(r) {
			return nil, fmt.Errorf("SEI message type %d of %d bytes runs past the NAL unit", typ, size)
		}
		m := seiMsg{typ: typ}
		if typ == 5 && size >= 16 {
			m.uuid = bytes.Clone(r[i : i+16])
		}
		msgs = append(msgs, m)
		i += size
	}
	return msgs, nil
}

// allowedNAL reports whether NAL unit n may leave the gateway per the
// contract (parameter sets and coded slices; SEI only when every message is
// user data unregistered with an allowed UUID).
func allowedNAL(codec string, n []byte, allow [][]byte) error {
	typ := nalType(codec, n)
	if codec == "H265" {
		if len(n) < 2 {
			return fmt.Errorf("truncated NAL unit")
		}
		if layer := (int(n[0]&1) << 5) | int(n[1]>>3); layer != 0 {
			return fmt.Errorf("NAL unit type %d with nuh_layer_id %d", typ, layer)
		}
		switch {
		case typ <= 9, typ >= 16 && typ <= 21, typ >= 32 && typ <= 34:
			return nil
		case typ == 39 || typ == 40:
		default:
			return fmt.Errorf("H.265 NAL unit type %d", typ)
		}
	} else {
		switch typ {
		case 1, 5, 7, 8:
			return nil
		case 6:
		default:
			return fmt.Errorf("H.264 NAL unit type %d", typ)
		}
	}
	msgs, err := parseSEI(codec, n)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return fmt.Errorf("empty SEI")
	}
	for _, m := range msgs {
		if m.typ != 5 || m.uuid == nil {
			return fmt.Errorf("SEI payload type %d", m.typ)
		}
		ok := false
		for _, a := range allow {
			ok = ok || bytes.Equal(a, m.uuid)
		}
		if !ok {
			return fmt.Errorf("SEI user data with UUID %x (not allow-listed)", m.uuid)
		}
	}
	return nil
}

func isSEI(codec string, n []byte) bool {
	t := nalType(codec, n)
	if codec == "H265" {
		return t == 39 || t == 40
	}
	return t == 6
}

// isKeyAU reports whether an AU holds an IDR/IRAP slice.
func isKeyAU(codec string, au [][]byte) bool {
	for _, n := range au {
		t := nalType(codec, n)
		if codec == "H265" && t >= 16 && t <= 21 || codec == "H264" && t == 5 {
			return true
		}
	}
	return false
}

// hasSlice reports whether an AU holds a coded slice.
func hasSlice(codec string, au [][]byte) bool {
	for _, n := range au {
		t := nalType(codec, n)
		if codec == "H265" && (t <= 9 || t >= 16 && t <= 21) || codec == "H264" && (t == 1 || t == 5) {
			return true
		}
	}
	return false
}

// paramSetsFirst checks that a keyframe AU starts with its parameter sets.
func paramSetsFirst(codec string, au [][]byte) error {
	want := []int{7, 8}
	if codec == "H265" {
		want = []int{32, 33, 34}
	}
	if len(au) < len(want) {
		return fmt.Errorf("keyframe of %d NAL units", len(au))
	}
	for i, w := range want {
		if got := nalType(codec, au[i]); got != w {
			return fmt.Errorf("keyframe NAL %d is type %d, want %d (types %v)", i, got, w, typesOf(codec, au))
		}
	}
	return nil
}

func typesOf(codec string, au [][]byte) []int {
	out := make([]int, len(au))
	for i, n := range au {
		out[i] = nalType(codec, n)
	}
	return out
}

// collect drains a viewer's access units for d.
func collect(v *e2eutil.Viewer, d time.Duration) []e2eutil.AU {
	var out []e2eutil.AU
	deadline := time.After(d)
	for {
		select {
		case au := <-v.AUs:
			out = append(out, au)
		case <-deadline:
			return out
		}
	}
}

// requireDecodes writes the AUs as Annex-B and decodes them with ffmpeg,
// failing on any error output.
func requireDecodes(t *testing.T, codec string, annexB []byte) {
	t.Helper()
	testtool.Require(t, "ffmpeg")
	f := filepath.Join(t.TempDir(), "received."+strings.ToLower(codec))
	if err := os.WriteFile(f, annexB, 0o600); err != nil {
		t.Fatal(err)
	}
	demux := "h264"
	if codec == "H265" {
		demux = "hevc"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", demux, "-i", f, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg cannot decode what the viewer received (%d bytes): %v\n%s", len(annexB), err, out)
	}
}

// checkNoVendor fails when text contains a vendor string.
func checkNoVendor(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range vendorSDPStrings {
		if strings.Contains(text, s) {
			t.Errorf("%s contains camera/vendor text %q:\n%s", what, s, text)
		}
	}
}

// checkHeaders asserts the viewer's video RTP headers are cordon's own.
func checkHeaders(t *testing.T, hdrs []rtp.Header, camSSRCs map[uint32]bool) {
	t.Helper()
	if len(hdrs) == 0 {
		t.Fatal("no video packets received")
	}
	var ext, csrc, pad, ssrc int
	for _, h := range hdrs {
		if h.Extension || len(h.Extensions) > 0 {
			ext++
		}
		if len(h.CSRC) > 0 {
			csrc++
		}
		if h.Padding {
			pad++
		}
		if camSSRCs[h.SSRC] {
			ssrc++
		}
	}
	if ext+csrc+pad+ssrc > 0 {
		t.Errorf("of %d video packets: %d with header extensions, %d with CSRCs, %d with padding, %d with the camera's SSRC %v",
			len(hdrs), ext, csrc, pad, ssrc, camSSRCs)
	}
}

// seqSampler samples (viewer seq - camera seq) at the same instants: a
// gateway that passed the camera's sequence numbers through would keep the
// difference near 0; re-originated numbers start at a random offset.
type seqSampler struct{ deltas []int }

func (s *seqSampler) sample(v *e2eutil.Viewer, tap *rtspTap) {
	h := v.Headers()
	if len(h) == 0 || tap.Packets() == 0 {
		return
	}
	s.deltas = append(s.deltas, int(int16(h[len(h)-1].SequenceNumber-tap.LastSeq())))
}

func (s *seqSampler) check(t *testing.T) {
	t.Helper()
	if len(s.deltas) < 3 {
		t.Errorf("only %d sequence samples", len(s.deltas))
		return
	}
	for _, d := range s.deltas {
		if d < -24 || d > 24 {
			return
		}
	}
	t.Errorf("viewer sequence numbers track the camera's: deltas %v", s.deltas)
}

// rawRTSP sends one RTSP request on a new TCP connection and returns the
// whole response (headers and body).
func rawRTSP(t *testing.T, addr, method, rawURL string, hdr map[string]string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: e2e\r\n", method, rawURL)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var resp strings.Builder
	clen := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: reading response: %v (so far %q)", method, err, resp.String())
		}
		resp.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	resp.Write(body)
	return resp.String()
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// capped is a *testing.T whose Errorf reports at most left messages (the
// test still fails on every one): a broken filter fails every AU.
type capped struct {
	*testing.T
	left int
}

func (c *capped) Errorf(format string, args ...any) {
	c.T.Helper()
	if c.left--; c.left >= 0 {
		c.T.Errorf(format, args...)
	} else {
		c.T.Fail()
	}
}
