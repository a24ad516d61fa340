package sanitize

// nalKind is what the allow-list makes of one NAL unit.
type nalKind uint8

const (
	kindDrop nalKind = iota
	kindVPS
	kindSPS
	kindPPS
	kindSEI
	kindSlice // coded slice, not a random access point
	kindKey   // coded slice of an IDR (H.264) or IRAP (H.265) picture
)

// Parameter set slots, in the order a decoder needs them.
const (
	psVPS = iota
	psSPS
	psPPS
	numPS
)

func (k nalKind) paramSlot() int {
	switch k {
	case kindVPS:
		return psVPS
	case kindSPS:
		return psSPS
	case kindPPS:
		return psPPS
	}
	return -1
}

type nalRule struct {
	kind   nalKind
	reason string // when kind == kindDrop
}

// h264Rules is indexed by nal_unit_type (ITU-T H.264 Table 7-1).
var h264Rules = [32]nalRule{
	0:  {kindDrop, DropUnspecified},
	1:  {kindSlice, ""},
	2:  {kindDrop, DropPartition},
	3:  {kindDrop, DropPartition},
	4:  {kindDrop, DropPartition},
	5:  {kindKey, ""},
	6:  {kindSEI, ""},
	7:  {kindSPS, ""},
	8:  {kindPPS, ""},
	9:  {kindDrop, DropAUD},
	10: {kindDrop, DropEndOfSeq},
	11: {kindDrop, DropEndOfSeq},
	12: {kindDrop, DropFiller},
	13: {kindDrop, DropParamExt},
	14: {kindDrop, DropExtension}, // prefix NAL (SVC)
	15: {kindDrop, DropParamExt},  // subset SPS (SVC/MVC)
	16: {kindDrop, DropReserved},
	17: {kindDrop, DropReserved},
	18: {kindDrop, DropReserved},
	19: {kindDrop, DropExtension}, // auxiliary coded picture (alpha)
	20: {kindDrop, DropExtension}, // slice extension (SVC/MVC)
	21: {kindDrop, DropExtension}, // slice extension (3D-AVC)
	22: {kindDrop, DropReserved},
	23: {kindDrop, DropReserved},
	24: {kindDrop, DropUnspecified}, // 24-31: unspecified (RTP uses them for STAP/MTAP/FU)
	25: {kindDrop, DropUnspecified},
	26: {kindDrop, DropUnspecified},
	27: {kindDrop, DropUnspecified},
	28: {kindDrop, DropUnspecified},
	29: {kindDrop, DropUnspecified},
	30: {kindDrop, DropUnspecified},
	31: {kindDrop, DropUnspecified},
}

// h265Rule classifies an H.265 nal_unit_type (ITU-T H.265 Table 7-1).
func h265Rule(typ uint8) nalRule {
	switch {
	case typ <= 9:
		return nalRule{kindSlice, ""}
	case typ <= 15:
		return nalRule{kindDrop, DropReserved} // RSV_VCL_N10..R15
	case typ <= 21:
		return nalRule{kindKey, ""} // BLA, IDR, CRA
	case typ <= 31:
		return nalRule{kindDrop, DropReserved} // RSV_IRAP_VCL22/23, RSV_VCL24..31
	case typ == 32:
		return nalRule{kindVPS, ""}
	case typ == 33:
		return nalRule{kindSPS, ""}
	case typ == 34:
		return nalRule{kindPPS, ""}
	case typ == 35:
		return nalRule{kindDrop, DropAUD}
	case typ == 36, typ == 37:
		return nalRule{kindDrop, DropEndOfSeq}
	case typ == 38:
		return nalRule{kindDrop, DropFiller}
	case typ == 39, typ == 40:
		return nalRule{kindSEI, ""}
	case typ <= 47:
		return nalRule{kindDrop, DropReserved}
	}
	return nalRule{kindDrop, DropUnspecified} // 48-63 (RTP: AP, FU, PACI)
}

// headerLen is the NAL unit header size of the codec.
func headerLen(codec VideoCodec) int {
	if codec == H265 {
		return 2
	}
	return 1
}

// classify applies the allow-list to one NAL unit, header only; SEI content
// is checked separately. It returns kindDrop and a reason for dropped units.
func classify(codec VideoCodec, nal []byte) (nalKind, string) {
	if len(nal) == 0 {
		return kindDrop, DropMalformed
	}
	if nal[0]&0x80 != 0 {
		return kindDrop, DropForbiddenBit
	}
	var r nalRule
	switch codec {
	case H264:
		r = h264Rules[nal[0]&0x1f]
	case H265:
		if len(nal) < 2 {
			return kindDrop, DropMalformed
		}
		r = h265Rule((nal[0] >> 1) & 0x3f)
		if r.kind != kindDrop {
			layer := (nal[0]&1)<<5 | nal[1]>>3
			switch {
			case nal[1]&7 == 0: // nuh_temporal_id_plus1 shall not be 0
				return kindDrop, DropMalformed
			case layer != 0:
				return kindDrop, DropExtension
			}
		}
	default:
		return kindDrop, DropUnspecified
	}
	if r.kind == kindDrop {
		return kindDrop, r.reason
	}
	// Every kept type carries a payload after the header; a bare header is
	// not a NAL unit any decoder can use.
	if len(nal) <= headerLen(codec) {
		return kindDrop, DropMalformed
	}
	return r.kind, ""
}
