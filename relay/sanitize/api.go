// Package sanitize is cordon's media allow-list: the one stage every camera
// access unit passes through before anything leaves the gateway. It decides
// which camera tracks survive (SelectFormat) and which NAL units of a video
// access unit survive (VideoFilter); everything not explicitly allowed is
// dropped. See CONTRACT.md, "What leaves the gateway".
package sanitize

// PLACEHOLDER API written by the integrator so relay compiles; the sanitize
// owner replaces the bodies (keep the exported signatures or update callers).

// VideoCodec is the codec a VideoFilter understands.
type VideoCodec int

// Supported video codecs.
const (
	H264 VideoCodec = iota + 1
	H265
)

// Options configures the filter.
type Options struct {
	// AllowSEIUUIDs lists user-data-unregistered UUIDs whose SEI may pass.
	AllowSEIUUIDs [][16]byte
}

// VideoFilter sanitizes the access units of one camera video track. It is
// not safe for concurrent use; the relay calls it under the stream's lock.
type VideoFilter struct {
	// OnDrop, when set, is called once per dropped NAL unit with a short
	// reason ("sei", "aud", "filler", "reserved", "unspecified", ...).
	OnDrop func(reason string)

	codec     VideoCodec
	opts      Options
	paramSets [][]byte
}

// NewVideoFilter returns a filter; sdpParamSets are the parameter sets from
// the camera's SDP (H.264 {SPS, PPS}; H.265 {VPS, SPS, PPS}), may be nil.
func NewVideoFilter(codec VideoCodec, opts Options, sdpParamSets [][]byte) *VideoFilter {
	return &VideoFilter{codec: codec, opts: opts, paramSets: sdpParamSets}
}

// SetSDPParamSets replaces the out-of-band parameter sets (camera reconnect).
func (f *VideoFilter) SetSDPParamSets(ps [][]byte) { f.paramSets = ps }

// Filter returns the NAL units of au that may leave the gateway, with
// parameter sets injected before a keyframe that lacks them, and whether the
// result is a keyframe a decoder can start from. nil means nothing is left.
func (f *VideoFilter) Filter(au [][]byte) (out [][]byte, key bool) {
	return au, false
}

// ParamSets returns the most recent parameter sets (in-band or SDP).
func (f *VideoFilter) ParamSets() [][]byte { return f.paramSets }
