package e2e

// Quirky cameras end to end (issue "Strip every vendor trace from the
// media path", item 4): for each democam quirk, camera -> gateway -> pion
// WHEP viewer, asserting on what the viewer RECEIVES that only pictures
// arrive: allowed NAL units, cordon's own RTP headers, no camera SDP, and
// video that still decodes. Each case also checks, on a direct tap of the
// camera, that the camera really shows the quirk (so a test cannot pass
// because the quirk silently stopped being produced).

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/epb"
	"cordon/internal/testtool"
)

const (
	opUser = "operator"
	opPass = "operator-pw-sanitize"
	adUser = "admin1"
	adPass = "admin-pw-sanitize"
)

func axisUUIDString() string {
	u := democam.AxisSignedVideoUUID()
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func quirkCamCfg(c *democam.Camera) config.Camera {
	return config.Camera{ID: c.ID, Name: c.ID, URL: c.URL(), Username: c.Username, Password: c.Password, Transport: "tcp"}
}

// quirkGateway starts a gateway for one camera with an operator and an admin.
func quirkGateway(t *testing.T, cam *democam.Camera, allowAxis bool, allowOther ...string) *e2eutil.Gateway {
	t.Helper()
	cfg := tcpOnlyRTSP(e2eutil.Config(t, []e2eutil.Account{
		{Name: opUser, Password: opPass, Cameras: []string{"*"}},
		{Name: adUser, Password: adPass, Cameras: []string{"*"}, Admin: true},
	}, []config.Camera{quirkCamCfg(cam)}))
	if allowAxis {
		cfg.Sanitize.AllowSEIUUIDs = []string{axisUUIDString()}
	}
	cfg.Sanitize.AllowSEIUUIDs = append(cfg.Sanitize.AllowSEIUUIDs, allowOther...)
	return e2eutil.Start(t, cfg)
}

type quirkCase struct {
	name      string
	host      string
	q         democam.Quirks
	allowAxis bool // sanitize.allow_sei_uuids = [Axis]
	// allowOther: an allow-listed UUID the camera does not send (so that a
	// filter that ignored the UUIDs would be caught)
	allowOther string
	wantSEI    bool // the Axis SEI must reach the viewer
	rtsp       bool // also check the RTSP re-serve
	// control asserts the camera really shows the quirk (direct tap).
	control func(t *testing.T, cam *democam.Camera, tap *rtspTap)
}

// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestSanitizeQuirkyCameras(t *testing.T) {
	testtool.Require(t, "ffmpeg")
	axis := democam.AxisSignedVideoUUID()
	cases := []quirkCase{
		{name: "HikvisionSDP", host: "127.0.0.5", q: democam.Quirks{HikvisionSDP: true}, rtsp: true,
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				mustContain(t, "camera SDP", tap.SDP(), "a=Media_header:", "a=x-dimensions", "a=appversion", "s=HIK")
				mustContain(t, "camera RTSP headers", tap.Responses(), "Hikvision-Webs")
			}},
		{name: "DahuaTracks", host: "127.0.0.6", q: democam.Quirks{DahuaTracks: true}, rtsp: true,
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				mustContain(t, "camera SDP", tap.SDP(), "a=packetization-supported:DH", "a=x-rtppayload-supported:IV",
					"m=application", "vnd.onvif.metadata", "a=sendonly")
				mustContain(t, "camera RTSP headers", tap.Responses(), "Dahua Rtsp Server")
			}},
		{name: "PrivateSEI", host: "127.0.0.7", q: democam.Quirks{PrivateSEI: true},
			control: func(t *testing.T, cam *democam.Camera, tap *rtspTap) {
				u := cam.PrivateSEIUUID()
				mustHaveBytes(t, tap, u[:], []byte("HIK-IVS"))
			}},
		{name: "SignedSEIAllowListed", host: "127.0.0.8", q: democam.Quirks{SignedSEI: true}, allowAxis: true, wantSEI: true,
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) { mustHaveBytes(t, tap, axis[:]) }},
		{name: "SignedSEINotAllowListed", host: "127.0.0.9", q: democam.Quirks{SignedSEI: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) { mustHaveBytes(t, tap, axis[:]) }},
		{name: "SignedSEIOtherUUIDAllowListed", host: "127.0.0.22", q: democam.Quirks{SignedSEI: true}, allowOther: "0123456789abcdef0123456789abcdef",
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) { mustHaveBytes(t, tap, axis[:]) }},
		{name: "PrivateAndSignedSEIAllowListed", host: "127.0.0.10", q: democam.Quirks{PrivateSEI: true, SignedSEI: true}, allowAxis: true, wantSEI: true,
			control: func(t *testing.T, cam *democam.Camera, tap *rtspTap) {
				u := cam.PrivateSEIUUID()
				mustHaveBytes(t, tap, u[:], axis[:])
			}},
		{name: "AUDAndFiller", host: "127.0.0.11", q: democam.Quirks{AUDAndFiller: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) { mustHaveTypes(t, tap, 9, 12) }},
		{name: "HeaderExtensions", host: "127.0.0.12", q: democam.Quirks{HeaderExtensions: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				if ext, csrc, pad := tap.headerQuirks(); ext == 0 || csrc == 0 || pad == 0 {
					t.Errorf("control: camera packets with extensions %d, CSRCs %d, padding %d; want all > 0", ext, csrc, pad)
				}
			}},
		{name: "ParamsOnlyInSDP", host: "127.0.0.13", q: democam.Quirks{ParamsOnlyInSDP: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				aus := tap.AUs()
				if hasNALType("H264", aus, 7) || hasNALType("H264", aus, 8) || !hasNALType("H264", aus, 5) {
					t.Errorf("control: camera sent SPS/PPS in band or no IDR")
				}
				mustContain(t, "camera SDP", tap.SDP(), "sprop-parameter-sets=")
			}},
		{name: "MarkerOnParamSets", host: "127.0.0.14", q: democam.Quirks{MarkerOnParamSets: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				// the camera's own marker bits split SPS/PPS from their IDR
				for _, au := range tap.AUs() {
					if !hasSlice("H264", au) {
						return
					}
				}
				t.Errorf("control: no access unit of parameter sets only at the camera")
			}},
		{name: "PacketizationMode0", host: "127.0.0.15", q: democam.Quirks{PacketizationMode0: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				mustContain(t, "camera SDP", tap.SDP(), "packetization-mode=0")
			}},
		{name: "H265", host: "127.0.0.16", q: democam.Quirks{H265: true},
			control: func(t *testing.T, _ *democam.Camera, tap *rtspTap) {
				if tap.codec != "H265" {
					t.Errorf("control: camera codec %s", tap.codec)
				}
			}},
		{name: "H265AllMediaQuirks", host: "127.0.0.17", q: democam.Quirks{H265: true, PrivateSEI: true, SignedSEI: true, AUDAndFiller: true,
			HeaderExtensions: true, MarkerOnParamSets: true, HikvisionSDP: true}, allowAxis: true, wantSEI: true,
			control: func(t *testing.T, cam *democam.Camera, tap *rtspTap) {
				u := cam.PrivateSEIUUID()
				mustHaveBytes(t, tap, u[:], axis[:])
				mustHaveTypes(t, tap, 35, 38)
			}},
		{name: "H264AllQuirks", host: "127.0.0.18", q: democam.Quirks{HikvisionSDP: true, DahuaTracks: true, PrivateSEI: true, SignedSEI: true,
			AUDAndFiller: true, HeaderExtensions: true, ParamsOnlyInSDP: true, PacketizationMode0: true}, rtsp: true,
			control: func(t *testing.T, cam *democam.Camera, tap *rtspTap) {
				u := cam.PrivateSEIUUID()
				mustHaveBytes(t, tap, u[:], axis[:])
				mustHaveTypes(t, tap, 9, 12)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runQuirkCase(t, c)
		})
	}
}

func mustContain(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("control: %s lacks %q:\n%s", what, s, text)
		}
	}
}

func mustHaveBytes(t *testing.T, tap *rtspTap, subs ...[]byte) {
	t.Helper()
	var all [][]byte
	for _, au := range tap.AUs() {
		all = append(all, au...)
	}
	joined := bytes.Join(all, nil)
	for _, s := range subs {
		if !bytes.Contains(epb.Remove(joined), s) {
			t.Errorf("control: camera stream lacks %x", s)
		}
	}
}

func mustHaveTypes(t *testing.T, tap *rtspTap, types ...int) {
	t.Helper()
	for _, typ := range types {
		if !hasNALType(tap.codec, tap.AUs(), typ) {
			t.Errorf("control: camera sent no NAL unit of type %d", typ)
		}
	}
}

// sdpForCheck drops the lines whose values are random (ICE credentials,
// fingerprints, track ids) and the base64 parameter sets, so that short
// vendor markers such as "DH" cannot match by chance.
func sdpForCheck(sdp string) string {
	var keep []string
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"), strings.HasPrefix(l, "a=ice-pwd:"), strings.HasPrefix(l, "a=fingerprint:"),
			strings.HasPrefix(l, "a=msid"), strings.HasPrefix(l, "a=ssrc"), strings.HasPrefix(l, "a=candidate:"):
			continue
		}
		if i := strings.Index(l, "sprop-"); i >= 0 {
			l = l[:i]
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// (Function over 80 lines: one quirk case: camera tap, gateway, viewer and their checks in order.)
func runQuirkCase(t *testing.T, c quirkCase) {
	cam := quirkyCam(t, "cam-"+strings.ToLower(c.name), c.host, c.q)
	var other []string
	if c.allowOther != "" {
		other = append(other, c.allowOther)
	}
	g := quirkGateway(t, cam, c.allowAxis, other...)
	tap := tapCamera(t, cam)
	codec := tap.codec
	tok := e2eutil.Login(t, g.Base, opUser, opPass)

	if codec == "H265" {
		// a viewer that cannot take H.265 is refused with 400, not sent video it cannot decode
		st, _, body := e2eutil.Do(t, http.MethodPost, g.Base+"/whep/"+cam.ID, tok, "application/sdp", h264OnlyOffer(t))
		// CONTRACT: "400 ... no codec in common"; the sentence is the product's
		var e struct {
			Error string `json:"error"`
		}
		if st != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "H.265") {
			t.Errorf("H.264-only viewer of an H.265 camera: %d %s; want 400 with an error naming H.265", st, body)
		}
	}
	v, st, body := e2eutil.Dial(t, g.Base, cam.ID, tok, e2eutil.ViewerOptions{H265: codec == "H265"})
	if v == nil {
		t.Fatalf("POST /whep/%s: %d %s", cam.ID, st, body)
	}

	// collect ~3 s (a 2 s GOP is always included), sampling the sequence
	// numbers of the viewer and of the camera at the same instants
	var aus []e2eutil.AU
	var seq seqSampler
	for range 12 {
		aus = append(aus, collect(v, 250*time.Millisecond)...)
		seq.sample(v, tap)
	}
	if len(aus) < 20 {
		t.Fatalf("viewer got %d access units in 3 s, want >= 20", len(aus))
	}
	if c.control != nil {
		c.control(t, cam, tap)
	}

	if vc, _ := v.Codecs(); !strings.EqualFold(vc, "video/"+codec) {
		t.Errorf("viewer codec %q, want video/%s", vc, codec)
	}

	// NAL units: only what the contract allows
	var allow [][]byte
	if c.allowAxis {
		u := democam.AxisSignedVideoUUID()
		allow = append(allow, u[:])
	}
	seenSEI, keys := 0, 0
	ct := &capped{T: t, left: 12}
	for i, au := range aus {
		if !hasSlice(codec, au.NALUs) {
			ct.Errorf("AU %d has no picture: types %v", i, typesOf(codec, au.NALUs))
		}
		if isKeyAU(codec, au.NALUs) {
			keys++
			if err := paramSetsFirst(codec, au.NALUs); err != nil {
				ct.Errorf("AU %d: %v", i, err)
			}
		}
		for _, n := range au.NALUs {
			if err := allowedNAL(codec, n, allow); err != nil {
				ct.Errorf("AU %d (types %v): %v", i, typesOf(codec, au.NALUs), err)
			}
			if isSEI(codec, n) {
				seenSEI++
			}
		}
	}
	if !isKeyAU(codec, aus[0].NALUs) {
		t.Errorf("first AU is not a keyframe: types %v", typesOf(codec, aus[0].NALUs))
	}
	if keys == 0 {
		t.Errorf("no keyframe in %d AUs", len(aus))
	}
	if c.wantSEI && seenSEI == 0 {
		t.Errorf("the allow-listed Axis signed-video SEI did not reach the viewer")
	}
	if !c.wantSEI && seenSEI > 0 {
		t.Errorf("%d SEI NAL units reached the viewer", seenSEI)
	}

	// bytes: the vendor payloads are nowhere in what arrived
	stream := e2eutil.AnnexB(aus)
	raw := epb.Remove(stream)
	priv := cam.PrivateSEIUUID()
	axis := democam.AxisSignedVideoUUID()
	banned := map[string][]byte{"private SEI UUID": priv[:], "vendor SEI text": []byte("HIK-IVS"), "vendor telemetry": []byte("vendor-private telemetry")}
	if !c.allowAxis {
		banned["Axis UUID (not allow-listed)"] = axis[:]
	}
	for what, b := range banned {
		if bytes.Contains(raw, b) {
			t.Errorf("the viewer received the %s", what)
		}
	}

	// RTP: cordon's own headers and numbering
	checkHeaders(t, v.Headers(), tap.SSRCs())
	seq.check(t)
	if gaps, back := v.Continuity(); gaps != 0 || back != 0 {
		t.Errorf("%d sequence gaps, %d timestamp steps back", gaps, back)
	}

	// SDP answer: nothing of the camera's
	checkNoVendor(t, "WHEP answer", sdpForCheck(v.Answer))
	if strings.Contains(v.Answer, "m=application") {
		t.Errorf("WHEP answer has an application m-line:\n%s", v.Answer)
	}
	for _, l := range strings.Split(tap.SDP(), "\r\n") {
		if (strings.HasPrefix(l, "o=") || strings.HasPrefix(l, "s=") || strings.HasPrefix(l, "i=")) && strings.Contains(v.Answer, l) {
			t.Errorf("WHEP answer carries the camera's %q", l)
		}
	}

	// pictures still decode
	requireDecodes(t, codec, stream)

	if c.rtsp {
		checkRTSPReserve(t, g, cam, tap)
	}
}

// h264OnlyOffer is a browser-like recvonly offer with H.264 only.
func h264OnlyOffer(t *testing.T) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// checkRTSPReserve checks the RTSP re-serve of the camera: raw DESCRIBE
// (challenge and answer), a gortsplib client's packets, and ffprobe.
func checkRTSPReserve(t *testing.T, g *e2eutil.Gateway, cam *democam.Camera, camTap *rtspTap) {
	t.Helper()
	addr := g.RTSPAddr()
	u := "rtsp://" + addr + "/" + cam.ID
	challenge := rawRTSP(t, addr, "DESCRIBE", u, map[string]string{"Accept": "application/sdp"})
	if !strings.HasPrefix(challenge, "RTSP/1.0 401") || !strings.Contains(challenge, "Server: cordon\r\n") || !strings.Contains(challenge, `realm="cordon"`) {
		t.Errorf("unauthenticated DESCRIBE: want 401, Server: cordon, realm cordon:\n%s", challenge)
	}
	checkNoVendor(t, "RTSP 401", challenge)
	answer := rawRTSP(t, addr, "DESCRIBE", u, map[string]string{"Accept": "application/sdp", "Authorization": basicAuth(opUser, opPass)})
	if !strings.HasPrefix(answer, "RTSP/1.0 200") || !strings.Contains(answer, "Server: cordon\r\n") {
		t.Errorf("DESCRIBE with Basic: want 200 and Server: cordon:\n%s", answer)
	}
	checkNoVendor(t, "RTSP DESCRIBE answer", sdpForCheck(answer))
	if strings.Count(answer, "m=") != 1 || strings.Contains(answer, "a=sendonly") {
		t.Errorf("RTSP DESCRIBE answer: want the video track only (no metadata, no back-channel):\n%s", answer)
	}

	// an RTSP client's view of the media
	tp := tapRTSP(t, u, opUser, opPass)
	if strings.Contains(tp.Responses(), "Server: ") && !strings.Contains(tp.Responses(), "Server: cordon") {
		t.Errorf("re-serve Server header:\n%s", tp.Responses())
	}
	checkNoVendor(t, "re-serve responses", sdpForCheck(tp.Responses()))
	e2eutil.WaitFor(t, 5*time.Second, "RTSP re-serve video", func() bool { return len(tp.AUs()) >= 15 })
	camSSRCs := camTap.SSRCs()
	for s := range tp.SSRCs() {
		if camSSRCs[s] {
			t.Errorf("RTSP re-serve carries the camera's SSRC %08x", s)
		}
	}
	if ext, csrc, pad := tp.headerQuirks(); ext+csrc+pad > 0 {
		t.Errorf("RTSP re-serve packets: %d with extensions, %d with CSRCs, %d with padding", ext, csrc, pad)
	}
	bad := 0
	for i, au := range tp.AUs() {
		for _, n := range au {
			if err := allowedNAL(tp.codec, n, nil); err != nil {
				if bad++; bad <= 8 {
					t.Errorf("RTSP AU %d: %v", i, err)
				}
			}
		}
	}

	// ffprobe as a VMS would connect
	testtool.Require(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-v", "error", "-rtsp_transport", "tcp",
		"-show_entries", "stream=codec_type,codec_name:format_tags", "-of", "default",
		"rtsp://"+opUser+":"+opPass+"@"+addr+"/"+cam.ID).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "codec_name=h264") {
		t.Errorf("ffprobe over the re-serve: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "codec_type=data") {
		t.Errorf("ffprobe sees a data stream:\n%s", out)
	}
	checkNoVendor(t, "ffprobe output", string(out))
}

// The camera resets its RTP timestamps and sequence numbers when it
// reboots: the same viewer keeps playing, numbering continuous, time
// non-decreasing, without reconnecting.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestSanitizeTimestampResetOnReconnect(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "ffmpeg")
	cam := quirkyCam(t, "cam-tsreset", "127.0.0.19", democam.Quirks{TimestampResetOnReconnect: true})
	g := quirkGateway(t, cam, false)
	tok := e2eutil.Login(t, g.Base, opUser, opPass)
	v, st, body := e2eutil.Dial(t, g.Base, cam.ID, tok, e2eutil.ViewerOptions{})
	if v == nil {
		t.Fatalf("POST /whep: %d %s", st, body)
	}
	var before []e2eutil.AU
	for end := time.Now().Add(6 * time.Second); len(before) < 20 && time.Now().Before(end); {
		before = append(before, collect(v, 100*time.Millisecond)...)
	}
	if len(before) < 20 {
		t.Fatalf("%d AUs before the restart", len(before))
	}
	preHdrs := v.Headers()
	restarted := time.Now()
	if err := cam.Restart(); err != nil {
		t.Fatal(err)
	}
	// the camera really restarted its numbering
	tap := tapCamera(t, cam)
	e2eutil.WaitFor(t, 5*time.Second, "camera packets", func() bool { return tap.Packets() > 0 })
	if s := tap.LastSeq(); s > 2000 {
		t.Errorf("control: camera sequence %d after restart, want near 0", s)
	}

	var after []e2eutil.AU
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		after = append(after, collect(v, 250*time.Millisecond)...)
		n := 0
		for _, au := range after {
			if au.At.Sub(restarted) > 300*time.Millisecond {
				n++
			}
		}
		if n >= 30 {
			break
		}
	}
	n := 0
	for _, au := range after {
		if au.At.Sub(restarted) > 300*time.Millisecond {
			n++
		}
	}
	if n < 30 {
		t.Fatalf("only %d AUs reached the viewer after the camera restarted", n)
	}
	if s := v.PC.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
		t.Errorf("viewer connection %s after the camera restart", s)
	}
	gaps, back := v.Continuity()
	if gaps != 0 || back != 0 {
		t.Errorf("across the camera restart: %d sequence gaps, %d timestamp steps back", gaps, back)
	}
	hdrs := v.Headers()
	if len(hdrs) <= len(preHdrs) || hdrs[0].SSRC != hdrs[len(hdrs)-1].SSRC {
		t.Errorf("the viewer's stream changed SSRC or stopped: %d headers before, %d after", len(preHdrs), len(hdrs))
	}
	// camera timestamps went back to ~0: the viewer's did not follow
	last := hdrs[len(hdrs)-1].Timestamp
	if int32(last-preHdrs[len(preHdrs)-1].Timestamp) <= 0 {
		t.Errorf("viewer timestamp went from %d to %d", preHdrs[len(preHdrs)-1].Timestamp, last)
	}
	// and after the restart the viewer's clock runs at real speed (not a
	// clamped crawl, not the camera's jump)
	var post []e2eutil.AU
	for _, au := range after {
		if au.At.Sub(restarted) > 300*time.Millisecond {
			post = append(post, au)
		}
	}
	media := time.Duration(post[len(post)-1].TS-post[0].TS) * time.Second / 90000
	wall := post[len(post)-1].At.Sub(post[0].At)
	if media < wall*6/10 || media > wall*14/10 {
		t.Errorf("after the restart the viewer's timestamps advanced %v in %v of wall time", media, wall)
	}
	checkHeaders(t, hdrs, tap.SSRCs())
	for i, au := range after {
		for _, nal := range au.NALUs {
			if err := allowedNAL("H264", nal, nil); err != nil {
				t.Errorf("AU %d after restart: %v", i, err)
			}
		}
	}
	// only one session, the original one
	_, _, sess := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/admin/sessions", e2eutil.Login(t, g.Base, adUser, adPass), "", "")
	var ss []map[string]any
	_ = json.Unmarshal([]byte(sess), &ss)
	if len(ss) != 1 || !strings.HasSuffix(v.Location, ss[0]["id"].(string)) {
		t.Errorf("admin sessions %s, want only %s", sess, v.Location)
	}
	requireDecodes(t, "H264", e2eutil.AnnexB(append(before, after...)))
}
