package sanitize

import (
	"bytes"

	"cordon/internal/epb"
)

// TrimParamSet returns the parameter set nal (H.264 SPS or PPS, H.265 VPS,
// SPS or PPS, with its NAL header) rebuilt so that nothing follows its
// rbsp_trailing_bits: its syntax is read to find where it ends, what comes
// after (a camera's serial number, MAC address, anything) is cut, extension
// data a decoder of the camera's profile ignores is dropped (H.265
// vps/sps/pps extension flags other than the range extension rewritten to
// 0), and emulation prevention is redone canonically. A well-formed
// parameter set comes back byte for byte.
//
// sps is the H.264 SPS in force, for a PPS (its profile and
// chroma_format_idc shape the PPS's optional fields); may be nil.
// An error means the syntax could not be read: the parameter set is
// malformed and must be dropped.
func TrimParamSet(codec VideoCodec, nal, sps []byte) ([]byte, error) {
	k, _ := classify(codec, nal)
	if k.paramSlot() < 0 {
		return nil, errSyntax
	}
	hl := headerLen(codec)
	rbsp := epb.Remove(nal[hl:])
	r := &bitReader{b: rbsp}
	var lay psLayout
	switch {
	case codec == H264 && k == kindSPS:
		walkH264SPS(r)
		lay.keep = r.pos
	case codec == H264 && k == kindPPS:
		info, ok := h264Info(sps)
		end, err := h264PPSEnd(rbsp, info, ok)
		if err != nil {
			return nil, err
		}
		lay.keep = end
	case k == kindVPS:
		lay = walkH265VPS(r)
	case k == kindSPS:
		lay = walkH265SPS(r)
	default:
		lay = walkH265PPS(r)
	}
	if r.err != nil {
		return nil, r.err
	}
	if lay.insert == nil {
		if _, ok := trailingAt(rbsp, lay.keep); !ok {
			return nil, errSyntax
		}
	}
	w := bitWriter{b: make([]byte, 0, len(rbsp))}
	w.copyBits(rbsp, 0, lay.keep)
	for _, b := range lay.insert {
		w.bit(b)
	}
	w.copyBits(rbsp, lay.copyFrom, lay.copyTo)
	w.trailing()
	out := make([]byte, hl, hl+len(w.b)+len(w.b)/64+2)
	copy(out, nal[:hl])
	out = epb.Append(out, w.b)
	if bytes.Equal(out, nal) {
		return nal, nil
	}
	return out, nil
}

// h264Info reads what a PPS needs from an H.264 SPS NAL unit.
func h264Info(sps []byte) (h264SPSInfo, bool) {
	if len(sps) < 2 || sps[0]&0x1f != 7 {
		return h264SPSInfo{chroma: 1}, false
	}
	r := &bitReader{b: epb.Remove(sps[1:])}
	in := walkH264SPS(r)
	if r.err != nil {
		return h264SPSInfo{chroma: 1}, false
	}
	return in, true
}

// psCache remembers the last trimmed version of each parameter set slot,
// so that the sets a camera repeats before every keyframe cost a compare.
type psCache struct {
	in, out [numPS][]byte
	bad     [numPS]bool
	spsFor  [numPS][]byte // H.264 PPS: the SPS it was trimmed against
}

// trimmed returns the clean version of parameter set nal in slot s, or
// false when it is malformed. The result must not be modified.
func (f *VideoFilter) trimmed(s int, nal []byte) ([]byte, bool) {
	c := &f.ps
	var sps []byte
	if f.codec == H264 && s == psPPS {
		sps = f.best(psSPS)
	}
	if c.in[s] != nil && bytes.Equal(c.in[s], nal) && bytes.Equal(c.spsFor[s], sps) {
		return c.out[s], !c.bad[s]
	}
	out, err := TrimParamSet(f.codec, nal, sps)
	c.in[s], c.spsFor[s], c.bad[s] = bytes.Clone(nal), sps, err != nil
	c.out[s] = nil
	if err == nil {
		c.out[s] = bytes.Clone(out)
	}
	return c.out[s], err == nil
}
