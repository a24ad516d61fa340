package sanitize

import (
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"
)

// parseSDP parses camera SDP text the way gortsplib's client does
// (sdpunmarshaler + Session.Unmarshal2; Session.Unmarshal is the deprecated
// wrapper around the same code).
func parseSDP(t *testing.T, text string) *description.Session {
	t.Helper()
	text = strings.ReplaceAll(strings.TrimLeft(text, "\n"), "\n", "\r\n")
	ssd, err := sdpunmarshaler.Unmarshal([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var d description.Session
	if err := d.Unmarshal2(ssd); err != nil {
		t.Fatal(err)
	}
	return &d
}

// Shaped like a Hikvision DS-2CD camera's DESCRIBE answer (FIELD-NOTES).
const hikvisionSDP = `
v=0
o=- 1109162014219182 1109162014219192 IN IP4 10.20.0.12
s=HIK Media Server V5.4.5
i=HIK Media Server Session Description : standard
e=NONE
c=IN IP4 0.0.0.0
t=0 0
a=control:*
b=AS:4096
a=range:npt=now-
a=Media_header:MEDIAINFO=494D4B48010200000400000100000000000000000000000000000000000000000000000000000000;
a=appversion:1.0
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:4096
a=recvonly
a=x-dimensions:1920,1080
a=control:rtsp://10.20.0.12:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwFsgAAAAwCAAAAeB4wYyw==,aOvjyyLA
a=Media_header:MEDIAINFO=494D4B48010200000400000100000000000000000000000000000000000000000000000000000000;
a=appversion:1.0
m=audio 0 RTP/AVP 0
c=IN IP4 0.0.0.0
b=AS:64
a=recvonly
a=control:rtsp://10.20.0.12:554/Streaming/Channels/101/trackID=2?transportmode=unicast&profile=Profile_1
a=rtpmap:0 PCMU/8000
m=application 0 RTP/AVP 107
c=IN IP4 0.0.0.0
b=AS:10
a=recvonly
a=control:rtsp://10.20.0.12:554/Streaming/Channels/101/trackID=3?transportmode=unicast&profile=Profile_1
a=rtpmap:107 isapi.metadata/90000
`

// Shaped like a Dahua IPC's DESCRIBE answer with ONVIF metadata and an
// audio back-channel (FIELD-NOTES).
const dahuaSDP = `
v=0
o=- 2251938202 2251938202 IN IP4 0.0.0.0
s=Media Server
c=IN IP4 0.0.0.0
t=0 0
a=control:*
a=packetization-supported:DH
a=rtppayload-supported:DH
a=x-rtppayload-supported:IV
a=range:npt=now-
m=video 0 RTP/AVP 98
a=control:trackID=0
a=framerate:25.000000
a=rtpmap:98 H265/90000
a=fmtp:98 profile-id=1;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBDllmZpJMrgEAAAAwAQAAADAeCA;sprop-pps=RAHBcrRiQA==;sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwB4mZgJ
a=recvonly
m=audio 0 RTP/AVP 8
a=control:trackID=1
a=rtpmap:8 PCMA/8000
a=recvonly
m=application 0 RTP/AVP 107
a=control:trackID=4
a=rtpmap:107 vnd.onvif.metadata/90000
a=recvonly
m=audio 0 RTP/AVP 0
a=control:trackID=5
a=rtpmap:0 PCMU/8000
a=sendonly
`

func TestSelectFormatHikvision(t *testing.T) {
	d := parseSDP(t, hikvisionSDP)
	if len(d.Medias) != 3 {
		t.Fatalf("%d medias", len(d.Medias))
	}
	f, why := SelectFormat(d.Medias[0])
	h, ok := f.(*format.H264)
	if !ok || why != "" || h.PacketizationMode != 1 || len(h.SPS) == 0 {
		t.Fatalf("video: %T %q", f, why)
	}
	f, why = SelectFormat(d.Medias[1])
	if g, ok := f.(*format.G711); !ok || !g.MULaw || why != "" {
		t.Fatalf("audio: %T %q", f, why)
	}
	if f, why = SelectFormat(d.Medias[2]); f != nil || why != "application track" {
		t.Fatalf("metadata: %T %q", f, why)
	}
	if sel := SelectTracks(d); len(sel.Kept) != 2 || len(sel.Dropped) != 1 || sel.Dropped[0] != (Dropped{TrackApplication, "application: application track"}) {
		t.Fatalf("SelectTracks = %+v", sel)
	}
}

func TestSelectFormatDahua(t *testing.T) {
	d := parseSDP(t, dahuaSDP)
	if len(d.Medias) != 4 {
		t.Fatalf("%d medias", len(d.Medias))
	}
	f, why := SelectFormat(d.Medias[0])
	if h, ok := f.(*format.H265); !ok || why != "" || len(h.VPS) == 0 {
		t.Fatalf("video: %T %q", f, why)
	}
	if g, ok := mustSelect(d.Medias[1]).(*format.G711); !ok || g.MULaw {
		t.Fatalf("audio: %T", g)
	}
	if f, why = SelectFormat(d.Medias[2]); f != nil || why != "ONVIF metadata track" {
		t.Fatalf("metadata: %T %q", f, why)
	}
	if f, why = SelectFormat(d.Medias[3]); f != nil || why != "back-channel" {
		t.Fatalf("back-channel: %T %q", f, why)
	}
	sel := SelectTracks(d)
	want := []Dropped{{TrackMetadata, "application: ONVIF metadata track"}, {TrackBackchannel, "audio: back-channel"}}
	if len(sel.Kept) != 2 || len(sel.Dropped) != 2 || sel.Dropped[0] != want[0] || sel.Dropped[1] != want[1] {
		t.Fatalf("SelectTracks = %+v", sel)
	}
}

func mustSelect(m *description.Media) format.Format {
	f, _ := SelectFormat(m)
	return f
}

func TestSelectFormatOthers(t *testing.T) {
	cases := []struct {
		name, media string
		allowed     bool
		why         string
	}{
		{"MJPEG", "m=video 0 RTP/AVP 26\na=rtpmap:26 JPEG/90000\n", false, "unsupported codec MJPEG"},
		{"MJPEG then H.264", "m=video 0 RTP/AVP 26 96\na=rtpmap:26 JPEG/90000\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1\n", true, ""},
		{"H.264 mode 0", "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n", true, ""},
		{"H.264 mode 2", "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=2\n", false, "unsupported H.264 packetization-mode 2"},
		{"MPEG-4 video", "m=video 0 RTP/AVP 96\na=rtpmap:96 MP4V-ES/90000\n", false, "unsupported codec MPEG-4 Video"},
		{"PCMA dynamic 16k", "m=audio 0 RTP/AVP 97\na=rtpmap:97 PCMA/16000\n", false, "unsupported G.711 variant 16000 Hz 1 channels"},
		{"PCMU stereo", "m=audio 0 RTP/AVP 97\na=rtpmap:97 PCMU/8000/2\n", false, "unsupported G.711 variant 8000 Hz 2 channels"},
		{"G.726", "m=audio 0 RTP/AVP 97\na=rtpmap:97 G726-32/8000\n", false, "unsupported codec G726"},
		{"Opus", "m=audio 0 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n", true, ""},
		{"AAC", "m=audio 0 RTP/AVP 104\na=rtpmap:104 mpeg4-generic/16000/1\na=fmtp:104 profile-level-id=15; streamtype=5; mode=AAC-hbr; config=1408; sizeLength=13; indexLength=3; indexDeltaLength=3\n", true, ""},
		{"L16", "m=audio 0 RTP/AVP 97\na=rtpmap:97 L16/8000/1\n", false, "unsupported codec LPCM"},
		{"H.264 in audio media", "m=audio 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n", false, "H.264 outside a video track"},
		{"PCMU in video media", "m=video 0 RTP/AVP 0\n", false, "audio format in a video track"},
		{"text media", "m=text 0 RTP/AVP 107\na=rtpmap:107 t140/1000\n", false, "not an audio or video track"},
		{"KLV application", "m=application 0 RTP/AVP 97\na=rtpmap:97 smpte336m/90000\n", false, "application track"},
	}
	for _, c := range cases {
		d := parseSDP(t, "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nt=0 0\n"+c.media)
		f, why := SelectFormat(d.Medias[0])
		if (f != nil) != c.allowed || why != c.why {
			t.Errorf("%s: %T %q, want allowed=%v %q", c.name, f, why, c.allowed, c.why)
		}
	}
	if f, why := SelectFormat(nil); f != nil || why != "no media" {
		t.Errorf("nil: %T %q", f, why)
	}
	// gortsplib refuses such SDP today; the check guards the decoder anyway
	if f, why := SelectFormat(&description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.MPEG4Audio{PayloadTyp: 97}}}); f != nil || why != "unusable AAC parameters" {
		t.Errorf("AAC without config: %T %q", f, why)
	}
	if f, why := SelectFormat(&description.Media{Type: description.MediaTypeVideo}); f != nil || why != "no formats" {
		t.Errorf("empty: %T %q", f, why)
	}
}

// Only back-channels in an SDP: gortsplib un-marks them (a camera bug it
// works around), so a lone sendonly track is a normal track.
func TestSelectFormatLoneSendonly(t *testing.T) {
	d := parseSDP(t, "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nt=0 0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=sendonly\n")
	if f, why := SelectFormat(d.Medias[0]); f == nil {
		t.Fatalf("dropped: %q", why)
	}
}

// FIELD-NOTES: some cameras announce "m=vana ... video.analysis". The SDP
// parser gortsplib uses rejects the whole description, so ingest must cope
// before SelectFormat ever runs (see the package report). This test pins
// that behaviour so a dependency upgrade that changes it is noticed.
func TestVanaMediaBreaksSDPParsing(t *testing.T) {
	text := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=vana 0 RTP/AVP 107\r\na=rtpmap:107 video.analysis/90000\r\n"
	if _, err := sdpunmarshaler.Unmarshal([]byte(text)); err == nil {
		t.Fatal("m=vana now parses: SelectFormat's \"not an audio or video track\" path is reachable from real cameras; update the notes")
	}
}
