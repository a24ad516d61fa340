package ingest

import (
	"strconv"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"cordon/relay"
	"cordon/relay/sanitize"
)

// Kinds of dropped tracks (metric label values; a closed set).
const (
	dropBackchannel = "backchannel"
	dropMetadata    = "metadata"
	dropApplication = "application"
	dropVideo       = "video"
	dropAudio       = "audio"
	dropOther       = "other"
)

// keptTrack is one camera media cordon sets up, with the format it reads.
type keptTrack struct {
	media *description.Media
	forma format.Format
	track relay.Track
}

// droppedTrack is a media cordon does not set up.
type droppedTrack struct {
	kind  string // metric label
	label string // for logs and State: "<media type>/<codec>", sanitized
}

// selection is the result of track selection over a camera's description.
type selection struct {
	kept    []keptTrack
	dropped []droppedTrack
}

func (s selection) codecs() (video, audio string) {
	for _, k := range s.kept {
		switch k.track.Kind {
		case relay.KindVideo:
			video = string(k.track.Codec)
		case relay.KindAudio:
			audio = string(k.track.Codec)
		}
	}
	return video, audio
}

// selectTracks keeps the first H.264/H.265 video and the first
// PCMU/PCMA/Opus/AAC audio, and drops everything else: back-channels, ONVIF
// metadata, application/data tracks, other codecs, extra video and audio.
// Which format of a media is acceptable is sanitize.SelectFormat's call.
func selectTracks(desc *description.Session) selection {
	var sel selection
	var haveVideo, haveAudio bool
	for _, m := range desc.Medias {
		f, reason := sanitize.SelectFormat(m)
		var tr relay.Track
		if f != nil {
			var ok bool
			if tr, ok = buildTrack(f); !ok {
				f, reason = nil, "unusable "+codecName(f)+" parameters"
			}
		}
		switch {
		case f == nil:
			sel.dropped = append(sel.dropped, droppedTrack{kind: dropKind(m), label: mediaType(m) + ": " + reason})
		case tr.Kind == relay.KindVideo && haveVideo:
			sel.dropped = append(sel.dropped, droppedTrack{kind: dropVideo, label: "video: extra video track"})
		case tr.Kind == relay.KindAudio && haveAudio:
			sel.dropped = append(sel.dropped, droppedTrack{kind: dropAudio, label: "audio: extra audio track"})
		default:
			if tr.Kind == relay.KindVideo {
				haveVideo = true
			} else {
				haveAudio = true
			}
			sel.kept = append(sel.kept, keptTrack{media: m, forma: f, track: tr})
		}
	}
	return sel
}

// buildTrack describes an allowed format for the relay; false when its
// parameters cannot be used (e.g. AAC without a config).
func buildTrack(f format.Format) (relay.Track, bool) {
	switch f := f.(type) {
	case *format.H264:
		tr := relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: f.ClockRate()}
		if sps, pps := f.SPS, f.PPS; len(sps) > 0 && len(pps) > 0 {
			tr.ParamSets = [][]byte{clone(sps), clone(pps)}
		}
		return tr, true
	case *format.H265:
		tr := relay.Track{Kind: relay.KindVideo, Codec: relay.CodecH265, ClockRate: f.ClockRate()}
		if vps, sps, pps := f.VPS, f.SPS, f.PPS; len(vps) > 0 && len(sps) > 0 && len(pps) > 0 {
			tr.ParamSets = [][]byte{clone(vps), clone(sps), clone(pps)}
		}
		return tr, true
	case *format.G711:
		if f.SampleRate != 8000 || f.ChannelCount > 1 {
			return relay.Track{}, false
		}
		codec := relay.CodecPCMA
		if f.MULaw {
			codec = relay.CodecPCMU
		}
		return relay.Track{Kind: relay.KindAudio, Codec: codec, ClockRate: 8000, Channels: 1}, true
	case *format.Opus:
		ch := f.ChannelCount
		if ch == 0 {
			ch = 2
		}
		return relay.Track{Kind: relay.KindAudio, Codec: relay.CodecOpus, ClockRate: f.ClockRate(), Channels: ch}, true
	case *format.MPEG4Audio:
		if f.Config == nil || f.SizeLength == 0 {
			return relay.Track{}, false
		}
		cfg, err := f.Config.Marshal()
		if err != nil {
			return relay.Track{}, false
		}
		ch := int(f.Config.ChannelConfig)
		switch {
		case ch == 7:
			ch = 8
		case ch == 0 || ch > 7: // defined in-band (PCE) or reserved
			ch = 2
		}
		return relay.Track{Kind: relay.KindAudio, Codec: relay.CodecAAC, ClockRate: f.ClockRate(), Channels: ch, AACConfig: cfg}, true
	}
	return relay.Track{}, false
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// dropKind classifies a media cordon does not serve.
func dropKind(m *description.Media) string {
	if m.IsBackChannel {
		return dropBackchannel
	}
	for _, f := range m.Formats {
		if g, ok := f.(*format.Generic); ok && strings.Contains(strings.ToLower(g.RTPMa), "onvif.metadata") {
			return dropMetadata
		}
	}
	switch m.Type {
	case description.MediaTypeVideo:
		return dropVideo
	case description.MediaTypeAudio:
		return dropAudio
	case description.MediaTypeApplication:
		return dropApplication
	}
	return dropOther
}

// mediaType names a media's type without echoing arbitrary camera text.
func mediaType(m *description.Media) string {
	switch m.Type {
	case description.MediaTypeVideo, description.MediaTypeAudio, description.MediaTypeApplication:
		return string(m.Type)
	}
	return "other"
}

// token keeps [A-Za-z0-9._+-], at most 32 characters.
func token(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '+' || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// codecName is the format's encoding name from its rtpmap ("H264"), or
// "pt<N>" for a static payload type without one.
func codecName(f format.Format) string {
	c := f.RTPMap()
	if i := strings.IndexByte(c, '/'); i >= 0 {
		c = c[:i]
	}
	if c == "" {
		return "pt" + strconv.Itoa(int(f.PayloadType()))
	}
	return token(c)
}
