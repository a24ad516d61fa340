package sanitize

import (
	"strconv"
	"strings"

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
// (MPEG-4 Audio, mpeg4-generic, with its config and AU sizes; the relay
// re-serves it over RTSP only) in audio media. This is the only place these
// rules live: ingest builds its tracks from what SelectTracks keeps. Back-channels (a=sendonly audio the camera would play) and
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
		switch {
		case video:
			return "audio format in a video track"
		case f.Config == nil || f.SizeLength == 0:
			return "unusable AAC parameters"
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

// Kinds of dropped tracks (metric label values; a closed set).
const (
	TrackBackchannel = "backchannel"
	TrackMetadata    = "metadata"
	TrackApplication = "application"
	TrackVideo       = "video"
	TrackAudio       = "audio"
	TrackOther       = "other"
)

// Selection is what cordon does with each media of a camera description.
type Selection struct {
	Kept    []Kept
	Dropped []Dropped
}

// Kept is a media cordon sets up, with the format it reads.
type Kept struct {
	Media  *description.Media
	Format format.Format
}

// Dropped is a media cordon does not set up.
type Dropped struct {
	Kind  string // one of the Track* kinds (metric label)
	Label string // "<media type>: <reason>", free of camera text
}

// SelectTracks is cordon's one track selection: it keeps the first
// allowed video and the first allowed audio media (SelectFormat decides
// which formats are allowed) and drops everything else: back-channels,
// ONVIF metadata, application/data tracks, other codecs, extra video and
// audio.
func SelectTracks(desc *description.Session) Selection {
	var sel Selection
	var haveVideo, haveAudio bool
	for _, m := range desc.Medias {
		f, reason := SelectFormat(m)
		switch {
		case f == nil:
			sel.Dropped = append(sel.Dropped, Dropped{Kind: dropKind(m), Label: safeType(m) + ": " + reason})
		case m.Type == description.MediaTypeVideo && haveVideo:
			sel.Dropped = append(sel.Dropped, Dropped{Kind: TrackVideo, Label: "video: extra video track"})
		case m.Type == description.MediaTypeAudio && haveAudio:
			sel.Dropped = append(sel.Dropped, Dropped{Kind: TrackAudio, Label: "audio: extra audio track"})
		default:
			if m.Type == description.MediaTypeVideo {
				haveVideo = true
			} else {
				haveAudio = true
			}
			sel.Kept = append(sel.Kept, Kept{Media: m, Format: f})
		}
	}
	return sel
}

// dropKind classifies a media cordon does not serve.
func dropKind(m *description.Media) string {
	if m.IsBackChannel {
		return TrackBackchannel
	}
	for _, f := range m.Formats {
		if g, ok := f.(*format.Generic); ok && strings.Contains(strings.ToLower(g.RTPMa), "onvif.metadata") {
			return TrackMetadata
		}
	}
	switch m.Type {
	case description.MediaTypeVideo:
		return TrackVideo
	case description.MediaTypeAudio:
		return TrackAudio
	case description.MediaTypeApplication:
		return TrackApplication
	}
	return TrackOther
}

// safeType names a media type without echoing arbitrary camera text.
func safeType(m *description.Media) string {
	switch m.Type {
	case description.MediaTypeVideo, description.MediaTypeAudio, description.MediaTypeApplication:
		return string(m.Type)
	}
	return "other"
}
