package relay

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"

	"cordon/relay/sanitize"
)

// The per-track stages of a unit, after the timeline (timeline.go):
// filter (the sanitizer) -> reorder check (reorder.go) -> packetize, once
// per camera track. The packets get their timestamps in WriteUnit.

// outTrack is one track of the stream with its stages' state. It is used
// only under Stream.mu.
type outTrack struct {
	OutTrack
	filter  *sanitize.VideoFilter
	checked []byte      // the SPS last checked for frame reordering
	pk      *packetizer // video
	aac     *rtpmpeg4audio.Encoder
	seq     uint16 // audio (PCMU/PCMA/Opus) sequence
	tsBase  uint32
	lastPTS time.Duration // camera PTS of the previous unit, this connection
	havePTS bool
	lastOut time.Duration

	// reorders: the track has B-frames (reorder.go); sawReorderSPS: the
	// last keyframe's SPS announced them
	reorders      bool
	sawReorderSPS bool
	dts           *dtsExtractor
	// the newest frames, which keep their shared encodings (encoding.go)
	recent encodingRing
}

func randU32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// buildTracks sets up the stages of each track: payload types (static for
// G.711, dynamic from 96 otherwise), a sanitizer for video, a packetizer.
func (s *Stream) buildTracks(tracks []Track) ([]*outTrack, error) {
	ots := make([]*outTrack, len(tracks))
	var nextDyn uint8 = 96
	dynamic := func() uint8 { nextDyn++; return nextDyn - 1 }
	for i, t := range tracks {
		ot := &outTrack{OutTrack: OutTrack{Track: t, Index: i, SSRC: randU32()}, tsBase: randU32(), seq: uint16(randU32())}
		if ot.Channels == 0 {
			ot.Channels = 1
		}
		seq := ot.seq
		var err error
		switch t.Codec {
		case CodecH264:
			ot.PayloadType = dynamic()
			ot.filter = s.newFilter(t.Codec, t.ParamSets)
			ot.pk = &packetizer{pt: ot.PayloadType, ssrc: ot.SSRC, seq: seq, max: PayloadMaxSize}
		case CodecH265:
			ot.PayloadType = dynamic()
			ot.filter = s.newFilter(t.Codec, t.ParamSets)
			ot.pk = &packetizer{h265: true, pt: ot.PayloadType, ssrc: ot.SSRC, seq: seq, max: PayloadMaxSize}
		case CodecPCMU:
			ot.PayloadType = 0
		case CodecPCMA:
			ot.PayloadType = 8
		case CodecOpus:
			ot.PayloadType = dynamic()
		case CodecAAC:
			ot.PayloadType = dynamic()
			ot.aac = &rtpmpeg4audio.Encoder{PayloadType: ot.PayloadType, SSRC: &ot.SSRC, InitialSequenceNumber: &seq,
				PayloadMaxSize: PayloadMaxSize, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
			err = ot.aac.Init()
			if !s.loggedAAC {
				s.loggedAAC = true
				s.Log.Info("camera audio is AAC, which is not a WebRTC codec: WHEP viewers get video only; RTSP clients get the audio")
			}
		default:
			return nil, fmt.Errorf("codec %q cannot be re-served", t.Codec)
		}
		if err != nil {
			return nil, err
		}
		ots[i] = ot
	}
	return ots, nil
}

func (s *Stream) newFilter(c Codec, paramSets [][]byte) *sanitize.VideoFilter {
	codec := sanitize.H264
	if c == CodecH265 {
		codec = sanitize.H265
	}
	f := sanitize.NewVideoFilter(codec, s.Sanitize, paramSets)
	reason, cam := s.Metrics.sanitizerDropped, s.Camera
	f.OnDrop = func(r string) { reason.WithLabelValues(cam, r).Inc() }
	return f
}

// process runs the unit's stages and returns its frame without timestamps
// (nil when nothing is left to send) or a packetizer error, and the access
// unit the frame carries: for video the sanitizer's output, a view into
// the filter's buffers that is valid only until the track's next unit (the
// caller reads it at once, for the decode time); the frame itself keeps
// only the packets.
func (t *outTrack) process(au [][]byte) (*Frame, [][]byte, error) {
	if t.Kind == KindVideo {
		return t.video(au)
	}
	f, err := t.audio(au)
	if f == nil {
		return nil, nil, err
	}
	return f, f.AU, nil
}

// video: filter -> reorder check (sets sawReorderSPS) -> packetize.
func (t *outTrack) video(in [][]byte) (*Frame, [][]byte, error) {
	au, key := t.filter.Filter(in)
	if len(au) == 0 {
		return nil, nil, nil
	}
	if key && t.reorderCheck() {
		t.sawReorderSPS = true
	}
	// the filter returns views into its own buffers: the packets' arena
	// holds the only copy (Frame.AU stays nil)
	pkts, err := t.pk.encode(au)
	if err != nil || len(pkts) == 0 {
		return nil, nil, err
	}
	return &Frame{Key: key, video: true, h265: t.pk.h265, Packets: pkts}, au, nil
}

// audio: packetize (AAC per RFC 3640, G.711 and Opus one frame a packet).
// The frame keeps its own copy of the codec frames (they are small).
func (t *outTrack) audio(in [][]byte) (*Frame, error) {
	au := copyAU(in)
	f := &Frame{AU: au}
	if t.aac != nil {
		pkts, err := t.aac.Encode(au)
		if err != nil {
			return nil, err
		}
		f.Packets = pkts
	} else {
		for _, fr := range au {
			t.seq++
			f.Packets = append(f.Packets, &rtp.Packet{
				Header:  rtp.Header{Version: 2, PayloadType: t.PayloadType, SequenceNumber: t.seq, SSRC: t.SSRC},
				Payload: fr,
			})
		}
	}
	if len(f.Packets) == 0 {
		return nil, nil
	}
	return f, nil
}

// copyAU copies an access unit into one buffer.
func copyAU(au [][]byte) [][]byte {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(au))
	for i, b := range au {
		buf = append(buf, b...)
		out[i] = buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	return out
}

// ticks converts a duration to clock-rate units without overflowing,
// rounded to the nearest tick (a camera's 90 kHz timestamps survive the
// round trip through nanoseconds exactly).
func ticks(d time.Duration, rate int) uint32 { return uint32(ticks64(d, rate)) }

func ticks64(d time.Duration, rate int) int64 {
	sec := int64(d / time.Second)
	rem := int64(d % time.Second)
	half := int64(time.Second) / 2
	if rem < 0 {
		half = -half
	}
	return sec*int64(rate) + (rem*int64(rate)+half)/int64(time.Second)
}
