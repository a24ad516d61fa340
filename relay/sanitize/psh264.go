package sanitize

// H.264 parameter set syntax (ITU-T H.264 7.3.2.1.1, 7.3.2.2, E.1.1): read
// only to find where it ends.

// h264SPSInfo is what a PPS needs from its SPS.
type h264SPSInfo struct {
	profile uint64
	chroma  uint64 // chroma_format_idc
}

// highProfile reports profiles with the chroma/bit-depth/scaling syntax
// (and, for PPS, the transform_8x8 extension).
func highProfile(p uint64) bool {
	switch p {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// h264ScalingList skips scaling_list(size).
func h264ScalingList(r *bitReader, size int) {
	last, next := int64(8), int64(8)
	for range size {
		if next != 0 {
			d := r.se()
			if d < -128 || d > 127 {
				r.err = errSyntax
				return
			}
			next = (last + d + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}

func scalingListSize(i int) int {
	if i < 6 {
		return 16
	}
	return 64
}

// walkH264SPS reads a whole SPS RBSP (after the NAL header).
func walkH264SPS(r *bitReader) h264SPSInfo {
	var in h264SPSInfo
	in.profile = r.bits(8)
	r.skip(16) // constraint flags, level_idc
	r.ueMax(31)
	in.chroma = 1
	if highProfile(in.profile) {
		in.chroma = r.ueMax(3)
		if in.chroma == 3 {
			r.skip(1)
		}
		r.ueMax(6)
		r.ueMax(6)
		r.skip(1)
		if r.flag() { // seq_scaling_matrix_present_flag
			n := 8
			if in.chroma == 3 {
				n = 12
			}
			for i := range n {
				if r.flag() {
					h264ScalingList(r, scalingListSize(i))
				}
			}
		}
	}
	r.ueMax(12) // log2_max_frame_num_minus4
	switch r.ueMax(2) {
	case 0:
		r.ueMax(12)
	case 1:
		r.skip(1)
		r.se()
		r.se()
		n := r.ueMax(255)
		for range n {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	r.skip(1)
	r.ue()
	r.ue()
	if !r.flag() { // frame_mbs_only_flag
		r.skip(1)
	}
	r.skip(1)     // direct_8x8_inference_flag
	if r.flag() { // frame_cropping_flag
		r.ue()
		r.ue()
		r.ue()
		r.ue()
	}
	if r.flag() {
		h264VUI(r)
	}
	return in
}

// vuiHead skips the fields H.264 and H.265 VUI start with alike (aspect
// ratio, overscan, video signal type, chroma location).
func vuiHead(r *bitReader) {
	if r.flag() && r.bits(8) == 255 { // aspect_ratio_info_present_flag, idc: Extended_SAR
		r.skip(32)
	}
	if r.flag() { // overscan_info_present_flag
		r.skip(1)
	}
	if r.flag() { // video_signal_type_present_flag
		r.skip(4)
		if r.flag() {
			r.skip(24)
		}
	}
	if r.flag() { // chroma_loc_info_present_flag
		r.ue()
		r.ue()
	}
}

func h264VUI(r *bitReader) {
	vuiHead(r)
	if r.flag() { // timing_info_present_flag
		r.skip(65)
	}
	nal := r.flag()
	if nal {
		h264HRD(r)
	}
	vcl := r.flag()
	if vcl {
		h264HRD(r)
	}
	if nal || vcl {
		r.skip(1)
	}
	r.skip(1)     // pic_struct_present_flag
	if r.flag() { // bitstream_restriction_flag
		r.skip(1)
		for range 6 {
			r.ue()
		}
	}
}

func h264HRD(r *bitReader) {
	n := r.ueMax(31)
	r.skip(8)
	for range n + 1 {
		r.ue()
		r.ue()
		r.skip(1)
	}
	r.skip(20)
}

// walkH264PPSCore reads a PPS up to where more_rbsp_data() decides on the
// optional High-profile fields.
func walkH264PPSCore(r *bitReader) {
	r.ue()
	r.ueMax(31)
	r.skip(2)
	groups := r.ueMax(7) // num_slice_groups_minus1
	if groups > 0 {
		switch r.ueMax(6) { // slice_group_map_type
		case 0:
			for range groups + 1 {
				r.ue()
			}
		case 2:
			for range groups {
				r.ue()
				r.ue()
			}
		case 3, 4, 5:
			r.skip(1)
			r.ue()
		case 6:
			units := r.ue()
			width := 0
			for (1 << width) < groups+1 {
				width++
			}
			for i := uint64(0); i <= units && r.err == nil; i++ {
				r.skip(width)
			}
		}
	}
	r.ueMax(31)
	r.ueMax(31)
	r.skip(3)
	r.se()
	r.se()
	r.se()
	r.skip(3)
}

// walkH264PPSExt reads the optional transform_8x8 / scaling / second
// chroma QP offset fields.
func walkH264PPSExt(r *bitReader, chroma uint64) {
	t8 := r.flag()
	if r.flag() { // pic_scaling_matrix_present_flag
		n := 6
		if t8 {
			n += 2
			if chroma == 3 {
				n += 4
			}
		}
		for i := range n {
			if r.flag() {
				h264ScalingList(r, scalingListSize(i))
			}
		}
	}
	r.se()
}

// h264PPSEnd finds where a PPS RBSP's syntax ends. more_rbsp_data() is
// defined by the position of the last one bit, so bytes appended after
// the trailing bits make the optional fields (transform_8x8_mode_flag,
// scaling matrices, second_chroma_qp_index_offset) look present. Outside
// the High profiles they must not be present (ITU-T H.264 A.2.1-A.2.3), so
// the PPS ends before them. In a High profile they are read when they fit
// (encoders set transform_8x8_mode_flag there); a High-profile PPS without
// them and with a tail that happens to parse as them cannot be told apart
// from one that has them (README, "Threat model"). Without the SPS, a
// reading that leaves no tail wins.
func h264PPSEnd(rbsp []byte, sps h264SPSInfo, haveSPS bool) (int, error) {
	r := &bitReader{b: rbsp}
	walkH264PPSCore(r)
	if r.err != nil {
		return 0, r.err
	}
	pA := r.pos
	walkH264PPSExt(r, sps.chroma)
	pB, errB := r.pos, r.err
	last := lastOne(rbsp)
	_, okA := trailingAt(rbsp, pA)
	okB := false
	if errB == nil {
		_, okB = trailingAt(rbsp, pB)
	}
	switch {
	case haveSPS && !highProfile(sps.profile):
		if okA {
			return pA, nil
		}
	case okA && last == pA:
		return pA, nil
	case okB:
		return pB, nil
	case okA:
		return pA, nil
	}
	return 0, errSyntax
}
