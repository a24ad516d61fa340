package relay

import (
	"bytes"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// B-frames: WebRTC players need presentation order = decode order, so a
// stream whose SPS announces frame reordering, or whose video PTS goes back,
// is refused before its first frame leaves, and stays refused across
// reconnects with the same SPS.

// refuseFor is how long a B-frame refusal holds for a camera whose SDP
// does not show a changed SPS; then one more attempt is allowed.
const refuseFor = 5 * time.Minute

// refusal remembers a B-frame refusal across reconnects.
type refusal struct {
	sps   []byte // SPS of the refused stream (nil: unknown)
	until time.Time
}

// reorders is the reorder-check stage: whether the track's current SPS,
// when it changed since the last check, announces frame reordering.
func (t *outTrack) reorders() bool {
	ps := t.filter.ParamSets()
	if len(ps) == 0 {
		return false
	}
	sps := ps[0]
	if t.Codec == CodecH265 && len(ps) > 1 {
		sps = ps[1]
	}
	if bytes.Equal(sps, t.checked) {
		return false
	}
	t.checked = sps
	return spsReorders(t.Codec, sps)
}

// refuseLocked refuses a B-frame stream: it goes offline at once (no more
// frames leave) and stays refused on reconnect; see refusal.still.
func (s *Stream) refuseLocked(t *outTrack) error {
	s.refusal.sps = nil
	if ps := t.filter.ParamSets(); len(ps) >= 2 {
		s.refusal.sps = append([]byte(nil), ps[len(ps)-2]...)
	}
	s.refusal.until = s.Clock.Now().Add(refuseFor)
	if s.online {
		s.goOfflineLocked()
	}
	s.lastErr = ErrBFrames
	s.Log.Warn("camera refused: its stream has B-frames", "err", ErrBFrames.Error())
	return ErrBFrames
}

// still keeps a B-frame refusal across reconnects unless the camera now
// announces another SPS, or the refusal expired.
func (r *refusal) still(tracks []Track, now time.Time) error {
	if r.until.IsZero() {
		return nil
	}
	var sdpSPS []byte
	for _, t := range tracks {
		if t.Kind == KindVideo && len(t.ParamSets) >= 2 {
			sdpSPS = t.ParamSets[len(t.ParamSets)-2]
		}
	}
	if now.Before(r.until) && (sdpSPS == nil || r.sps == nil || bytes.Equal(sdpSPS, r.sps)) {
		return ErrBFrames
	}
	*r = refusal{}
	return nil
}

// spsReorders reports whether an SPS announces frame reordering
// (B-frames): H.264 VUI max_num_reorder_frames > 0, H.265
// sps_max_num_reorder_pics > 0. An SPS that does not say (no VUI
// bitstream restriction) is not refused here; the timeline catches it on
// the first out-of-order frame.
func spsReorders(codec Codec, sps []byte) bool {
	switch codec {
	case CodecH264:
		var p h264.SPS
		if p.Unmarshal(sps) != nil || p.VUI == nil || p.VUI.BitstreamRestriction == nil {
			return false
		}
		return p.VUI.BitstreamRestriction.MaxNumReorderFrames > 0
	case CodecH265:
		var p h265.SPS
		if p.Unmarshal(sps) != nil {
			return false
		}
		for _, n := range p.MaxNumReorderPics {
			if n > 0 {
				return true
			}
		}
	}
	return false
}
