// Package sanitize is cordon's media allow-list: the one stage every camera
// access unit passes through before anything leaves the gateway. It decides
// which camera tracks survive (SelectFormat) and which NAL units of a video
// access unit survive (VideoFilter); everything not explicitly allowed is
// dropped. See CONTRACT.md, "What leaves the gateway".
//
// What survives, per codec:
//
//   - H.264: SPS (7), PPS (8), coded slices (1 non-IDR, 5 IDR) and SEI (6)
//     whose every message is user_data_unregistered with an allow-listed UUID.
//     Data partitions (2-4) are dropped: they exist only in the Extended
//     profile, which no camera emits and no browser or WebRTC decoder
//     implements, so they can only be noise or a covert channel.
//   - H.265: VPS (32), SPS (33), PPS (34), coded slices (0-9, 16-21) of the
//     base layer (nuh_layer_id 0), and prefix/suffix SEI (39/40) under the
//     same rule as H.264.
//
// Everything else (access unit delimiters, end of sequence/stream, filler,
// extensions, reserved and unspecified types, NAL units with the forbidden
// bit set, empty or truncated NAL units) is dropped and reported through
// VideoFilter.OnDrop with one of the Drop* reasons.
package sanitize

// VideoCodec is the codec a VideoFilter understands.
type VideoCodec int

// Supported video codecs.
const (
	H264 VideoCodec = iota + 1
	H265
)

func (c VideoCodec) String() string {
	switch c {
	case H264:
		return "H264"
	case H265:
		return "H265"
	}
	return "unknown"
}

// Options configures the filter.
type Options struct {
	// AllowSEIUUIDs lists user-data-unregistered UUIDs whose SEI may pass.
	AllowSEIUUIDs [][16]byte
}

// Reasons passed to VideoFilter.OnDrop. The set is small and fixed: it is a
// Prometheus label value.
const (
	DropSEI          = "sei"           // SEI with a message that is not allow-listed user data, or malformed SEI
	DropAUD          = "aud"           // access unit delimiter
	DropEndOfSeq     = "end_of_seq"    // end of sequence / end of stream (bitstream)
	DropFiller       = "filler"        // filler data
	DropParamExt     = "param_ext"     // H.264 SPS extension, subset SPS
	DropExtension    = "extension"     // layered/3D/auxiliary coding: H.264 prefix NAL, 19-21; H.265 nuh_layer_id > 0
	DropPartition    = "partition"     // H.264 data partitions A/B/C
	DropReserved     = "reserved"      // reserved NAL unit types
	DropUnspecified  = "unspecified"   // unspecified NAL unit types (incl. RTP aggregation types left in an AU)
	DropForbiddenBit = "forbidden_bit" // forbidden_zero_bit set
	DropMalformed    = "malformed"     // empty or truncated NAL unit, H.265 TemporalId+1 of 0
	DropOverflow     = "overflow"      // more held NAL units than the filter keeps (see Filter)
)

// AxisSignedVideoUUID returns the user-data-unregistered UUID of Axis
// signed video, 5369676e-6564-2056-6964-656f2e2e2e30 ("Signed Video...0",
// FIELD-NOTES): a typical entry for Options.AllowSEIUUIDs.
func AxisSignedVideoUUID() [16]byte {
	return [16]byte{
		0x53, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x20, 0x56,
		0x69, 0x64, 0x65, 0x6f, 0x2e, 0x2e, 0x2e, 0x30,
	}
}
