package ingest

import (
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"cordon/relay"
	"cordon/relay/sanitize"
)

// keptTrack is one camera media cordon sets up, with the format it reads.
type keptTrack struct {
	media *description.Media
	forma format.Format
	track relay.Track
}

// selection is the result of track selection over a camera's description.
type selection struct {
	kept    []keptTrack
	dropped []sanitize.Dropped
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

// selectTracks applies sanitize.SelectTracks (the one place that decides
// which media survive) and describes the kept ones for the relay.
func selectTracks(desc *description.Session) selection {
	s := sanitize.SelectTracks(desc)
	sel := selection{dropped: s.Dropped}
	for _, k := range s.Kept {
		tr, ok := buildTrack(k.Format)
		if !ok {
			sel.dropped = append(sel.dropped, sanitize.Dropped{Kind: sanitize.TrackAudio, Label: "audio: unusable AAC parameters"})
			continue
		}
		sel.kept = append(sel.kept, keptTrack{media: k.Media, forma: k.Format, track: tr})
	}
	return sel
}

// buildTrack describes an allowed format for the relay. SelectFormat has
// checked it; false only when an AAC config cannot be re-encoded.
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
