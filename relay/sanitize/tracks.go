package sanitize

import (
	"strconv"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
)

// SelectFormat returns the first format of a camera media that may be
// ingested, or nil and a short reason for dropping the whole media. The
// reason is built only from gortsplib's parsed values, never from camera
// text, so it is safe to log and to show to admins.
//
// Allowed: H.264 (packetization-mode 0 or 1) and H.265 in video media;
// G.711 PCMU/PCMA at 8 kHz mono, Opus (mono or stereo) and AAC
// (MPEG-4 Audio, mpeg4-generic; the relay re-serves it over RTSP only) in
// audio media. Back-channels (a=sendonly audio the camera would play) and
// application media (ONVIF metadata, vendor analytics) are always dropped.
func SelectFormat(m *description.Media) (format.Format, string) {
	switch {
	case m == nil:
		return nil, "no media"
	case m.IsBackChannel:
		return nil, "back-channel"
	case m.Type == description.MediaTypeApplication:
		for _, f := range m.Formats {
			if g, ok := f.(*format.Generic); ok && g.RTPMap() == "vnd.onvif.metadata/90000" {
				return nil, "ONVIF metadata track"
			}
		}
		return nil, "application track"
	case m.Type != description.MediaTypeVideo && m.Type != description.MediaTypeAudio:
		return nil, "not an audio or video track"
	}
	reason := "no formats"
	for _, f := range m.Formats {
		r := formatReason(m.Type, f)
		if r == "" {
			return f, ""
		}
		if reason == "no formats" {
			reason = r
		}
	}
	return nil, reason
}

// formatReason is "" for an allowed format, else why it is not.
func formatReason(mt description.MediaType, f format.Format) string {
	video := mt == description.MediaTypeVideo
	switch f := f.(type) {
	case *format.H264:
		switch {
		case !video:
			return "H.264 outside a video track"
		case f.PacketizationMode != 0 && f.PacketizationMode != 1:
			return "unsupported H.264 packetization-mode " + strconv.Itoa(f.PacketizationMode)
		}
		return ""
	case *format.H265:
		if !video {
			return "H.265 outside a video track"
		}
		return ""
	case *format.G711:
		switch {
		case video:
			return "audio format in a video track"
		case f.SampleRate != 8000 || f.ChannelCount != 1:
			return "unsupported G.711 variant " + strconv.Itoa(f.SampleRate) + " Hz " + strconv.Itoa(f.ChannelCount) + " channels"
		}
		return ""
	case *format.Opus:
		switch {
		case video:
			return "audio format in a video track"
		case f.ChannelCount > 2:
			return "unsupported codec multiopus"
		}
		return ""
	case *format.MPEG4Audio:
		if video {
			return "audio format in a video track"
		}
		return ""
	}
	return "unsupported codec " + formatName(f)
}

func formatName(f format.Format) string {
	switch f.(type) {
	case *format.MJPEG:
		return "MJPEG"
	case *format.MPEG4Video:
		return "MPEG-4 Video"
	case *format.MPEG1Video:
		return "MPEG-1/2 Video"
	case *format.VP8:
		return "VP8"
	case *format.VP9:
		return "VP9"
	case *format.AV1:
		return "AV1"
	case *format.MPEGTS:
		return "MPEG-TS"
	case *format.G722:
		return "G722"
	case *format.G726:
		return "G726"
	case *format.LPCM:
		return "LPCM"
	case *format.MPEG1Audio:
		return "MPEG-1/2 Audio"
	case *format.MPEG4AudioLATM:
		return "AAC LATM"
	case *format.AC3:
		return "AC-3"
	case *format.Speex:
		return "Speex"
	case *format.Vorbis:
		return "Vorbis"
	case *format.KLV:
		return "KLV"
	}
	return "(unknown format)"
}

// DescribeDropped returns, for each media of a camera description that
// SelectFormat drops, a line "media N (type): reason" (N counts from 1), for
// a log line or the admin view.
func DescribeDropped(d *description.Session) []string {
	if d == nil {
		return nil
	}
	var lines []string
	for i, m := range d.Medias {
		if f, reason := SelectFormat(m); f == nil {
			lines = append(lines, "media "+strconv.Itoa(i+1)+" ("+safeType(m)+"): "+reason)
		}
	}
	return lines
}

// safeType names a media type without echoing arbitrary camera text.
func safeType(m *description.Media) string {
	if m == nil {
		return "none"
	}
	switch m.Type {
	case description.MediaTypeVideo, description.MediaTypeAudio, description.MediaTypeApplication:
		return string(m.Type)
	}
	return "other"
}
