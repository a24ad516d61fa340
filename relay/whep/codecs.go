package whep

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"cordon/relay"
)

// offeredCodec is one payload type of an offer's m-line.
type offeredCodec struct {
	pt       uint8
	name     string // lower case, e.g. "h264"
	clock    uint32
	channels uint16
	fmtp     string
}

type offer struct {
	video, audio []offeredCodec // of the first active video / audio m-line
	hasVideo     bool
	hasAudio     bool
}

// parseOffer checks that body is an SDP offer with a video m-line and lists
// the codecs offered. Errors are client errors (400).
func parseOffer(body []byte) (*offer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("the offer is not valid SDP: %v", err)
	}
	o := &offer{}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue
		}
		switch md.MediaName.Media {
		case "video":
			if !o.hasVideo {
				o.hasVideo = true
				o.video = mediaCodecs(md)
			}
		case "audio":
			if !o.hasAudio {
				o.hasAudio = true
				o.audio = mediaCodecs(md)
			}
		}
	}
	if !o.hasVideo {
		return nil, errors.New("the offer has no video m-line: add a recvonly video transceiver")
	}
	return o, nil
}

func mediaCodecs(md *sdp.MediaDescription) []offeredCodec {
	rtpmap := map[string]string{}
	fmtp := map[string]string{}
	for _, a := range md.Attributes {
		pt, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		switch a.Key {
		case "rtpmap":
			rtpmap[pt] = strings.TrimSpace(rest)
		case "fmtp":
			fmtp[pt] = strings.TrimSpace(rest)
		}
	}
	var out []offeredCodec
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		c := offeredCodec{pt: uint8(n), fmtp: fmtp[f]}
		if m, ok := rtpmap[f]; ok {
			parts := strings.Split(m, "/")
			c.name = strings.ToLower(parts[0])
			if len(parts) > 1 {
				v, _ := strconv.ParseUint(parts[1], 10, 32)
				c.clock = uint32(v)
			}
			if len(parts) > 2 {
				v, _ := strconv.ParseUint(parts[2], 10, 16)
				c.channels = uint16(v)
			}
		} else { // static payload types without rtpmap
			switch n {
			case 0:
				c.name, c.clock = "pcmu", 8000
			case 8:
				c.name, c.clock = "pcma", 8000
			default:
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

func fmtpParams(line string) map[string]string {
	out := map[string]string{}
	for p := range strings.SplitSeq(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		out[strings.ToLower(k)] = v
	}
	return out
}

// errNoCommonCodec is a 400: the browser and the camera share no codec.
type errNoCommonCodec struct{ msg string }

func (e errNoCommonCodec) Error() string { return e.msg }

// pick is the codec chosen for one out-track.
type pick struct {
	track relay.OutTrack
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecParameters
}

// preferredH264 is the order in which H.264 profile-level-ids are taken when
// none matches the camera's profile: constrained baseline first, which every
// WebRTC decoder takes.
var preferredH264 = [...]string{"42e01f", "42001f", "4d001f", "640032"}

// chooseH264 picks among the offered packetization-mode=1 H.264 formats the
// one whose profile matches the camera's (pion matches profile_idc and the
// constraint byte), then the same profile_idc, then the preferred list, then
// any. Offered formats are answered with the browser's own fmtp line, so
// pion's matcher accepts exactly that one.
func chooseH264(offered []offeredCodec, cameraPLID string) (offeredCodec, bool) {
	cam, _ := hex.DecodeString(cameraPLID)
	best, bestScore := offeredCodec{}, 0
	for _, c := range offered {
		if c.name != "h264" || c.clock != 90000 {
			continue
		}
		p := fmtpParams(c.fmtp)
		if p["packetization-mode"] != "1" {
			continue
		}
		plid, err := hex.DecodeString(p["profile-level-id"])
		if err != nil || len(plid) != 3 {
			continue
		}
		score := 1
		if len(cam) == 3 && plid[0] == cam[0] && plid[1] == cam[1] {
			score = 10
		} else if len(cam) == 3 && plid[0] == cam[0] {
			score = 8
		} else {
			for i, pref := range preferredH264 {
				if strings.EqualFold(p["profile-level-id"], pref) {
					score = 7 - i
				}
			}
		}
		if score > bestScore {
			best, bestScore = c, score
		}
	}
	return best, bestScore > 0
}

// chooseCodecs matches the camera's out-tracks against the offer: the first
// video track (required) and the first WebRTC audio track (optional; AAC is
// skipped, the relay already logged it).
func chooseCodecs(o *offer, tracks []relay.OutTrack) ([]pick, error) {
	var picks []pick
	var video, audio *relay.OutTrack
	for i := range tracks {
		t := &tracks[i]
		if t.Kind == relay.KindVideo && video == nil {
			video = t
		}
		if t.Kind == relay.KindAudio && audio == nil && t.Codec.WebRTC() {
			audio = t
		}
	}
	if video == nil && audio == nil {
		return nil, errNoCommonCodec{"the camera has no track WebRTC can carry"}
	}
	nack := []webrtc.RTCPFeedback{{Type: "nack"}}
	if video != nil {
		switch video.Codec {
		case relay.CodecH264:
			c, ok := chooseH264(o.video, video.ProfileLevelID)
			if !ok {
				return nil, errNoCommonCodec{"the camera sends H.264 but the offer has no H.264 with packetization-mode=1"}
			}
			picks = append(picks, pick{track: *video, kind: webrtc.RTPCodecTypeVideo, codec: webrtc.RTPCodecParameters{
				PayloadType:        webrtc.PayloadType(c.pt),
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: c.fmtp, RTCPFeedback: nack},
			}})
		case relay.CodecH265:
			var found *offeredCodec
			for i, c := range o.video {
				if (c.name == "h265" || c.name == "hevc") && c.clock == 90000 {
					found = &o.video[i]
					break
				}
			}
			if found == nil {
				return nil, errNoCommonCodec{"the camera sends H.265, which this browser did not offer (set the camera to H.264 for WebRTC viewers)"}
			}
			picks = append(picks, pick{track: *video, kind: webrtc.RTPCodecTypeVideo, codec: webrtc.RTPCodecParameters{
				PayloadType:        webrtc.PayloadType(found.pt),
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000, SDPFmtpLine: found.fmtp, RTCPFeedback: nack},
			}})
		default:
			return nil, errNoCommonCodec{fmt.Sprintf("the camera's video codec %s cannot be sent over WebRTC", video.Codec)}
		}
	}
	if audio != nil && o.hasAudio {
		var name, mime string
		switch audio.Codec {
		case relay.CodecPCMU:
			name, mime = "pcmu", webrtc.MimeTypePCMU
		case relay.CodecPCMA:
			name, mime = "pcma", webrtc.MimeTypePCMA
		case relay.CodecOpus:
			name, mime = "opus", webrtc.MimeTypeOpus
		}
		for _, c := range o.audio {
			if c.name == name && int(c.clock) == audio.ClockRate {
				picks = append(picks, pick{track: *audio, kind: webrtc.RTPCodecTypeAudio, codec: webrtc.RTPCodecParameters{
					PayloadType:        webrtc.PayloadType(c.pt),
					RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: c.clock, Channels: c.channels, SDPFmtpLine: c.fmtp},
				}})
				break
			}
		}
	}
	if len(picks) == 0 {
		return nil, errNoCommonCodec{"the offer has no codec in common with the camera"}
	}
	return picks, nil
}
