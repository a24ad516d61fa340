package whepclient

import (
	"strconv"
	"strings"

	"github.com/pion/webrtc/v4"
)

// videoPTs lists the payload types of an SDP's first video m-line.
func videoPTs(sdp string) []uint8 {
	for line := range strings.SplitSeq(sdp, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "m=video" {
			continue
		}
		var out []uint8
		for _, p := range f[3:] {
			if n, err := strconv.ParseUint(p, 10, 7); err == nil {
				out = append(out, uint8(n))
			}
		}
		return out
	}
	return nil
}

func isKey(nalus [][]byte, h265 bool) bool {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		if h265 {
			if t := n[0] >> 1 & 0x3f; t >= 16 && t <= 21 {
				return true
			}
		} else if n[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

// browserCodecs is what a typical browser offers: VP8, H.264 in several
// profiles, Opus, PCMU, PCMA; H.265 only where the browser has it.
func browserCodecs(h265 bool) (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	h264 := func(pt uint8, profile string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile}, PayloadType: webrtc.PayloadType(pt)}
	}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96},
		h264(102, "42001f"), h264(106, "42e01f"), h264(112, "4d001f"), h264(114, "640032"),
	}
	if h265 {
		video = append(video, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000}, PayloadType: 116})
	}
	for _, c := range video {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	return me, nil
}
