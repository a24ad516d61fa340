package whep

import (
	"testing"

	"cordon/relay"
)

const chromeOffer = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 102 127 108\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
	"a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"

// FuzzOffer feeds arbitrary offers to the WHEP offer parser and codec
// choice: a malformed offer must be a 400-class error, never a panic, and a
// successful choice must name only codecs the offer listed.
func FuzzOffer(f *testing.F) {
	f.Add([]byte(chromeOffer))
	f.Add([]byte("v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n"))
	f.Add([]byte("v=0\r\nm=audio 9 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\r\nm=video 9 RTP/AVP 96\r\na=fmtp:96 ;;;=;profile-level-id=zz\r\na=rtpmap:96 H264/90000/9/9\r\n"))
	cams := [][]relay.OutTrack{
		{{Track: relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000}, PayloadType: 96, ProfileLevelID: "42c01e"},
			{Track: relay.Track{Kind: relay.KindAudio, Codec: relay.CodecPCMU, ClockRate: 8000}, Index: 1}},
		{{Track: relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH265, ClockRate: 90000}, PayloadType: 96},
			{Track: relay.Track{Kind: relay.KindAudio, Codec: relay.CodecAAC, ClockRate: 16000}, Index: 1}},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseOffer(body)
		if err != nil {
			return
		}
		for _, tracks := range cams {
			picks, err := chooseCodecs(o, tracks)
			if err != nil {
				continue
			}
			if len(picks) == 0 {
				t.Fatal("no error and no codec chosen")
			}
		}
	})
}
