package ingest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"

	"cordon/relay"
	"cordon/relay/sanitize"
)

func parseSDP(t *testing.T, s string) *description.Session {
	t.Helper()
	body, _ := stripUnknownMedia([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
	ssd, err := sdpunmarshaler.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var d description.Session
	if err := d.Unmarshal2(ssd); err != nil {
		t.Fatal(err)
	}
	return &d
}

// Dahua-style: H.264, ONVIF metadata, G.711A audio and an audio back-channel.
const dahuaSDP = `v=0
o=- 2251938200 2251938200 IN IP4 0.0.0.0
s=Media Server
c=IN IP4 0.0.0.0
t=0 0
a=control:*
a=packetization-supported:DH
a=rtppayload-supported:DH
a=range:npt=now-
m=video 0 RTP/AVP 96
a=control:trackID=0
a=framerate:25.000000
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=640020;sprop-parameter-sets=Z2QADKw7ULBLQgAAAwACAAADAD0I,aO48gA==
a=recvonly
m=application 0 RTP/AVP 107
a=control:trackID=4
a=rtpmap:107 vnd.onvif.metadata/90000
a=recvonly
m=audio 0 RTP/AVP 8
a=control:trackID=1
a=rtpmap:8 PCMA/8000
a=recvonly
m=audio 0 RTP/AVP 8
a=control:trackID=5
a=rtpmap:8 PCMA/8000
a=sendonly
`

// Hikvision-style H.265 with AAC, a second video, a private "vana" track and
// a TP-LINK application track.
const mixedSDP = `v=0
o=- 1109162014219182 1109162014219182 IN IP4 0.0.0.0
s=HIK Media Server V3.4.106
i=HIK Media Server Session Description : standard
c=IN IP4 0.0.0.0
t=0 0
a=control:*
a=Media_header:MEDIAINFO=494D4B48010300000400050000000000000000000000000000000000000000000000000000000000;
a=appversion:1.0
m=video 0 RTP/AVP 96
a=rtpmap:96 H265/90000
a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVmkkyvAQEAAAAMAQAAABkI=;sprop-pps=RAHBcrRiQA==
a=control:trackID=1
m=video 0 RTP/AVP 26
a=rtpmap:26 JPEG/90000
a=control:trackID=2
m=audio 0 RTP/AVP 97
a=rtpmap:97 mpeg4-generic/16000/1
a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1408; sizeLength=13; indexLength=3; indexDeltaLength=3
a=control:trackID=3
m=audio 0 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=control:trackID=4
m=vana 0 RTP/AVP 98
a=rtpmap:98 video.analysis/90000
a=control:trackID=5
m=application 0 RTP/AVP 99
a=rtpmap:99 TP-LINK/90000
a=control:trackID=6
`

func TestSelectDahua(t *testing.T) {
	sel := selectTracks(parseSDP(t, dahuaSDP))
	if len(sel.kept) != 2 {
		t.Fatalf("kept %d", len(sel.kept))
	}
	v, a := sel.kept[0].track, sel.kept[1].track
	if v.Codec != relay.CodecH264 || len(v.ParamSets) != 2 || !bytes.Equal(v.ParamSets[0], testSPS) || !bytes.Equal(v.ParamSets[1], testPPS) {
		t.Fatalf("video %+v", v)
	}
	if a.Codec != relay.CodecPCMA || a.ClockRate != 8000 || a.Channels != 1 {
		t.Fatalf("audio %+v", a)
	}
	if sel.kept[1].media.IsBackChannel {
		t.Fatal("kept the back-channel")
	}
	kinds := map[string]int{}
	for _, d := range sel.dropped {
		kinds[d.Kind]++
	}
	if kinds[sanitize.TrackMetadata] != 1 || kinds[sanitize.TrackBackchannel] != 1 || len(sel.dropped) != 2 {
		t.Fatalf("dropped %+v", sel.dropped)
	}
	for _, d := range sel.dropped {
		if strings.Contains(d.Label, "DH") || strings.Contains(d.Label, "trackID") {
			t.Fatalf("camera text in label %q", d.Label)
		}
	}
}

func TestSelectMixed(t *testing.T) {
	sel := selectTracks(parseSDP(t, mixedSDP))
	if len(sel.kept) != 2 {
		t.Fatalf("kept %+v", sel.kept)
	}
	v, a := sel.kept[0].track, sel.kept[1].track
	if v.Codec != relay.CodecH265 || len(v.ParamSets) != 3 || v.ParamSets[0][0]>>1 != 32 || v.ParamSets[1][0]>>1 != 33 || v.ParamSets[2][0]>>1 != 34 {
		t.Fatalf("video %+v", v)
	}
	if a.Codec != relay.CodecAAC || a.ClockRate != 16000 || a.Channels != 1 || !bytes.Equal(a.AACConfig, []byte{0x14, 0x08}) {
		t.Fatalf("audio %+v", a)
	}
	var labels []string
	for _, d := range sel.dropped {
		labels = append(labels, d.Kind+"="+d.Label)
	}
	got := strings.Join(labels, "|")
	for _, want := range []string{"video=video: unsupported codec MJPEG", "audio=audio: extra audio track", "application=application: application track"} {
		if !strings.Contains(got, want) {
			t.Errorf("dropped %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "TP-LINK") || strings.Contains(got, "vana") || strings.Contains(got, "HIK") {
		t.Fatalf("camera text in %q", got)
	}
	vc, ac := sel.codecs()
	if vc != "H265" || ac != "AAC" {
		t.Fatal(vc, ac)
	}
}

func TestRedact(t *testing.T) {
	u := mustURL(t, "rtsp://admin:Pa%3Ass%40word@10.0.0.5:554/Streaming/Channels/101?token=x")
	r := redactorFor(nil, u)
	msg := `bad URL rtsp://admin:Pa:ss@word@10.0.0.5/ and "Pa:ss@word" and Pa%3Ass%40word, http://x:y@h/p`
	got := r.Redact(msg)
	for _, bad := range []string{"Pa:ss@word", "Pa%3Ass%40word", "x:y@"} {
		if strings.Contains(got, bad) {
			t.Fatalf("%q still in %q", bad, got)
		}
	}
	p := &Puller{ID: "a", URL: u}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	if s := p.SafeURL(); s != "rtsp://10.0.0.5:554/Streaming/Channels/101" {
		t.Fatal(s)
	}
	// a wrapped error keeps errors.Is and hides the original text
	orig := &testErr{"dial rtsp://admin:Pa:ss@word@10.0.0.5 failed"}
	err := p.wrap(orig)
	if strings.Contains(err.Error(), "Pa:ss") || !errors.Is(err, orig) {
		t.Fatal(err)
	}
	if p.wrap(nil) != nil {
		t.Fatal("nil")
	}
}

type testErr struct{ s string }

func (e *testErr) Error() string { return e.s }

func TestStripUnknownMedia(t *testing.T) {
	in := strings.ReplaceAll(mixedSDP, "\n", "\r\n")
	out, n := stripUnknownMedia([]byte(in))
	if n != 1 || bytes.Contains(out, []byte("vana")) || bytes.Contains(out, []byte("video.analysis")) {
		t.Fatalf("%d removed:\n%s", n, out)
	}
	if !bytes.Contains(out, []byte("TP-LINK")) || !bytes.HasSuffix(out, []byte("a=control:trackID=6\r\n")) {
		t.Fatalf("too much removed:\n%s", out)
	}
	if _, n := stripUnknownMedia([]byte(dahuaSDP)); n != 0 {
		t.Fatal(n)
	}
}
