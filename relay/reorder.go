package relay

import (
	"bytes"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// B-frames: VMS and NVRs decode them, WebRTC players cannot (they need
// presentation order = decode order). A video track is "reordered" when
// its SPS announces frame reordering or its PTS goes back (within a
// second). Such a stream is served as it is to every reader except those
// that asked to be refused (ReaderConf.RefuseBFrames: WebRTC), which get
// ErrBFrames, at AddReader or as soon as the reordering is seen. Frames of
// a reordered track carry their decode time (Frame.DTS), computed from the
// slices' picture order counts.

// reorderCheck is the SPS half of the reorder check: whether the track's
// current SPS, when it changed since the last check, announces frame
// reordering.
func (t *outTrack) reorderCheck() bool {
	ps := t.filter.ParamSets()
	if len(ps) == 0 {
		return false
	}
	sps := spsOf(t.Codec, ps)
	if bytes.Equal(sps, t.checked) {
		return false
	}
	t.checked = sps
	return spsReorders(t.Codec, sps)
}

// spsOf picks the SPS out of a track's parameter sets ({SPS, PPS} or
// {VPS, SPS, PPS}).
func spsOf(c Codec, ps [][]byte) []byte {
	if c == CodecH265 && len(ps) > 1 {
		return ps[1]
	}
	if len(ps) == 0 {
		return nil
	}
	return ps[0]
}

// connectReorders sets, at a camera connection, whether each video track
// is reordered according to the SPS the camera announced out of band (a
// track without one keeps what the last connection found until its first
// keyframe says). Called under s.mu.
func (s *Stream) connectReorders(tracks []Track) {
	for i, t := range s.tracks {
		if t.Kind != KindVideo {
			continue
		}
		t.checked = nil
		t.dts = nil
		if sps := spsOf(t.Codec, tracks[i].ParamSets); len(sps) > 0 {
			if reorders, known := spsAnnounces(t.Codec, sps); known {
				t.reorders = reorders
			}
		}
		if t.reorders {
			t.newDTS()
		}
	}
	s.refuseReadersLocked()
}

// reorderLocked marks a video track as reordered (its SPS says so, or its
// PTS went back) and ends the readers that cannot show it.
func (s *Stream) reorderLocked(t *outTrack) {
	if t.reorders {
		return
	}
	t.reorders = true
	t.newDTS()
	s.Log.Warn("camera sends B-frames: served over RTSP as it is; WebRTC viewers are refused (set the encoder to no B-frames, or use a sub stream without them)")
	s.refuseReadersLocked()
}

// bframesLocked reports whether a video track of the stream is reordered.
func (s *Stream) bframesLocked() bool {
	for _, t := range s.tracks {
		if t.Kind == KindVideo && t.reorders {
			return true
		}
	}
	return false
}

// refuseReadersLocked ends, with ErrBFrames, the readers that asked to be
// refused B-frames, when the stream has them.
func (s *Stream) refuseReadersLocked() {
	if !s.bframesLocked() {
		return
	}
	var keep []*Reader
	n := 0
	for _, r := range s.readers {
		if r.refuseB {
			r.finish(ErrBFrames)
			n++
			continue
		}
		keep = append(keep, r)
	}
	if n == 0 {
		return
	}
	s.readers = keep
	if len(keep) == 0 && s.demand != nil {
		s.demand.SetDemand(false) // never blocks nor calls back (Demand)
	}
}

// newDTS starts a fresh decode-time extractor (it waits for the next
// keyframe).
func (t *outTrack) newDTS() {
	switch t.Codec {
	case CodecH264:
		x := &h264.DTSExtractor{}
		x.Initialize()
		t.dts = &dtsExtractor{h264: x}
	case CodecH265:
		x := &h265.DTSExtractor{}
		x.Initialize()
		t.dts = &dtsExtractor{h265: x}
	}
}

// dtsExtractor derives a reordered track's decode times from its PTS and
// picture order counts (mediacommon's extractors).
type dtsExtractor struct {
	h264 *h264.DTSExtractor
	h265 *h265.DTSExtractor
	last time.Duration
	have bool
}

// decodeTime returns the DTS of an access unit presented at pts. Until
// the extractor has seen a keyframe (or when a slice cannot be read) it
// falls back to a time after the previous DTS and not after pts, so DTS
// never goes back nor passes PTS.
func (t *outTrack) decodeTime(au [][]byte, pts time.Duration) time.Duration {
	if t.Kind != KindVideo || !t.reorders || t.dts == nil {
		return pts
	}
	x := t.dts
	var d int64
	var err error
	if x.h264 != nil {
		d, err = x.h264.Extract(au, toTicks90k(pts))
	} else {
		d, err = x.h265.Extract(au, toTicks90k(pts))
	}
	dts := fromTicks90k(d)
	if err != nil || (x.have && dts <= x.last) || dts > pts {
		dts = pts
		if x.have {
			dts = min(pts, x.last+time.Millisecond)
		}
	}
	x.last, x.have = dts, true
	return dts
}

// toTicks90k and fromTicks90k convert between durations and 90 kHz
// ticks without overflowing (a stream's timeline runs for months).
func toTicks90k(d time.Duration) int64 { return ticks64(d, 90000) }

func fromTicks90k(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

// spsReorders reports whether an SPS announces frame reordering
// (B-frames). An SPS that does not say (no VUI bitstream restriction) is
// not taken as reordering here; the timeline catches it on the first
// out-of-order frame.
func spsReorders(codec Codec, sps []byte) bool {
	r, _ := spsAnnounces(codec, sps)
	return r
}

// spsAnnounces reads an SPS's reordering: H.264 VUI
// max_num_reorder_frames > 0 (known only with the VUI bitstream
// restriction), H.265 sps_max_num_reorder_pics > 0 (always known).
func spsAnnounces(codec Codec, sps []byte) (reorders, known bool) {
	switch codec {
	case CodecH264:
		var p h264.SPS
		if p.Unmarshal(sps) != nil || p.VUI == nil || p.VUI.BitstreamRestriction == nil {
			return false, false
		}
		return p.VUI.BitstreamRestriction.MaxNumReorderFrames > 0, true
	case CodecH265:
		var p h265.SPS
		if p.Unmarshal(sps) != nil {
			return false, false
		}
		for _, n := range p.MaxNumReorderPics {
			if n > 0 {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}
