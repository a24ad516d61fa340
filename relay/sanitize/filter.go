package sanitize

import "bytes"

// maxHeldSEI bounds the allowed SEI NAL units held from access units that
// carry no picture (see Filter); more are dropped with DropOverflow.
const maxHeldSEI = 4

// VideoFilter sanitizes the access units of one camera video track. It is
// not safe for concurrent use; the relay calls it under the stream's lock.
type VideoFilter struct {
	// OnDrop, when set, is called once per dropped NAL unit with one of the
	// Drop* reasons.
	OnDrop func(reason string)

	codec VideoCodec
	allow [][16]byte

	sdp    [numPS][]byte // out-of-band parameter sets (SDP sprop-*)
	inband [numPS][]byte // latest in-band parameter sets; private copies, never mutated
	held   [numPS]bool   // inband[i] came in an AU without a picture and was not sent yet

	heldSEI [][]byte // allowed SEI from AUs without a picture; buffers reused
	heldBuf [maxHeldSEI][]byte

	params      [][]byte // ParamSets result, rebuilt when a parameter set changes
	paramsValid bool

	ps psCache // parameter sets trimmed after their trailing bits

	kinds []nalKind // scratch: classification of the current AU
	clean [][]byte  // scratch: the NAL units of the AU, parameter sets trimmed
	out   [][]byte  // returned by Filter, reused
}

// NewVideoFilter returns a filter; sdpParamSets are the parameter sets from
// the camera's SDP (H.264 {SPS, PPS}; H.265 {VPS, SPS, PPS}), may be nil.
// A codec other than H264 and H265 gives a filter that drops everything.
func NewVideoFilter(codec VideoCodec, opts Options, sdpParamSets [][]byte) *VideoFilter {
	f := &VideoFilter{codec: codec}
	f.allow = append([][16]byte(nil), opts.AllowSEIUUIDs...)
	f.setSDP(sdpParamSets)
	return f
}

// SetSDPParamSets replaces the out-of-band parameter sets (camera
// reconnect). Anything held from the previous connection is forgotten. When
// ps holds parameter sets, the in-band history is forgotten too: the new SDP
// is fresher than what the camera sent before it reconnected (it may have
// been reconfigured meanwhile). When ps is empty the in-band history stays.
func (f *VideoFilter) SetSDPParamSets(ps [][]byte) {
	if f.setSDP(ps) {
		f.inband = [numPS][]byte{}
	}
	f.held = [numPS]bool{}
	f.heldSEI = f.heldSEI[:0]
	f.paramsValid = false
}

// setSDP stores private copies of the SDP parameter sets that are what
// they claim to be (right NAL type, base layer, not truncated); others are
// ignored. It reports whether any was stored.
func (f *VideoFilter) setSDP(ps [][]byte) bool {
	f.sdp = [numPS][]byte{}
	f.paramsValid = false
	stored := false
	for _, p := range ps {
		k, _ := classify(f.codec, p)
		if s := k.paramSlot(); s >= 0 && f.sdp[s] == nil {
			if clean, ok := f.trimmed(s, p); ok {
				f.sdp[s] = bytes.Clone(clean)
				stored = true
			}
		}
	}
	return stored
}

// required reports whether a decoder needs parameter set slot s.
func (f *VideoFilter) required(s int) bool {
	return s != psVPS || f.codec == H265
}

func (f *VideoFilter) best(s int) []byte {
	if f.inband[s] != nil {
		return f.inband[s]
	}
	return f.sdp[s]
}

// ParamSets returns the most recent parameter sets (in-band or SDP): H.264
// {SPS, PPS}, H.265 {VPS, SPS, PPS}; nil until every one is known. The
// result is shared: callers must not modify it. It is replaced (not
// mutated) when a parameter set changes, so holding it is safe.
func (f *VideoFilter) ParamSets() [][]byte {
	if f.paramsValid {
		return f.params
	}
	f.paramsValid = true
	f.params = nil
	var ps [][]byte
	for s := range numPS {
		if !f.required(s) {
			continue
		}
		b := f.best(s)
		if b == nil {
			return nil
		}
		ps = append(ps, b)
	}
	f.params = ps
	return ps
}

func (f *VideoFilter) drop(reason string) {
	if f.OnDrop != nil {
		f.OnDrop(reason)
	}
}

// Filter returns the NAL units of au that may leave the gateway, with
// parameter sets injected before a keyframe that lacks them, and whether the
// result is a keyframe a decoder can start from (an IDR / IRAP picture with
// every parameter set in front of it). nil means nothing is left.
//
// The returned slice and the NAL units it holds are valid until the next
// call to Filter or SetSDPParamSets; they may alias au. Callers copy what
// they keep (relay.Stream packetizes at once). Filter never modifies au.
//
// Parameter sets are output first, in decoding order (VPS, SPS, PPS), then
// the other NAL units in their original order.
//
// packetization-mode=0 (single NAL unit mode, used by Hikvision and
// Dahua-style cameras, FIELD-NOTES) needs nothing here: the RTP depacketizer
// already turns each packet into one NAL unit and groups them into access
// units by timestamp and marker bit, so the filter sees the same [][]byte
// either way; only the grouping quirk below differs between cameras.
func (f *VideoFilter) Filter(au [][]byte) (out [][]byte, key bool) {
	hasSlice, key := f.classifyAU(au)
	if !hasSlice {
		// Camera workaround (FIELD-NOTES: "SPS/PPS sent with the RTP marker
		// bit set"): the marker closes an access unit made of parameter sets
		// only, and the picture follows as the next access unit. Sent alone,
		// the parameter sets would be a frame without a picture and the
		// keyframe after them would not start with them. So hold them (and
		// any allowed SEI that came with them) and prepend them to the next
		// access unit.
		for i, nal := range f.clean {
			switch k := f.kinds[i]; k {
			case kindVPS, kindSPS, kindPPS:
				f.held[k.paramSlot()] = true
			case kindSEI:
				f.holdSEI(nal)
			}
		}
		return nil, false
	}

	var inAU [numPS]bool
	for _, k := range f.kinds {
		if s := k.paramSlot(); s >= 0 {
			inAU[s] = true
		}
	}
	out = f.out[:0]
	complete := true
	for s := range numPS {
		if !f.required(s) {
			continue
		}
		if inAU[s] {
			want := kindVPS + nalKind(s)
			for i, nal := range f.clean {
				if f.kinds[i] == want {
					out = append(out, nal)
				}
			}
			continue
		}
		// Held sets are prepended to any AU; on a keyframe every missing set
		// is injected from the in-band history or the SDP. A set the AU
		// carries itself is never duplicated.
		if f.held[s] || key {
			if b := f.best(s); b != nil {
				out = append(out, b)
				continue
			}
		}
		complete = false
	}
	out = append(out, f.heldSEI...)
	for i, nal := range au {
		switch f.kinds[i] {
		case kindSEI, kindSlice, kindKey:
			out = append(out, nal)
		}
	}
	f.held = [numPS]bool{}
	f.heldSEI = f.heldSEI[:0]
	f.out = out
	return out, key && complete
}

// classifyAU fills f.kinds and f.clean (parameter sets trimmed) for au,
// reports drops and records in-band parameter sets.
func (f *VideoFilter) classifyAU(au [][]byte) (hasSlice, key bool) {
	f.kinds = f.kinds[:0]
	f.clean = f.clean[:0]
	for _, nal := range au {
		k, reason := classify(f.codec, nal)
		if k == kindSEI && !SEIAllowed(f.codec, nal, f.allow) {
			k, reason = kindDrop, DropSEI
		}
		if s := k.paramSlot(); s >= 0 {
			clean, ok := f.trimmed(s, nal)
			if !ok {
				k, reason = kindDrop, DropMalformed
			} else {
				nal = clean
			}
		}
		f.clean = append(f.clean, nal)
		switch k {
		case kindDrop:
			f.drop(reason)
		case kindSlice:
			hasSlice = true
		case kindKey:
			hasSlice, key = true, true
		case kindVPS, kindSPS, kindPPS:
			f.track(k.paramSlot(), nal)
		}
		f.kinds = append(f.kinds, k)
	}
	return hasSlice, key
}

// track records an in-band parameter set, copying it only when it changed.
func (f *VideoFilter) track(s int, nal []byte) {
	if bytes.Equal(f.inband[s], nal) {
		return
	}
	f.inband[s] = bytes.Clone(nal)
	f.paramsValid = false
}

func (f *VideoFilter) holdSEI(nal []byte) {
	n := len(f.heldSEI)
	if n == maxHeldSEI {
		f.drop(DropOverflow)
		return
	}
	f.heldBuf[n] = append(f.heldBuf[n][:0], nal...)
	f.heldSEI = append(f.heldSEI, f.heldBuf[n])
}
