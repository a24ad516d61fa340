package sanitize

// H.265 parameter set syntax (ITU-T H.265 7.3.2.1, 7.3.2.2.1, 7.3.2.3.1,
// 7.3.3, 7.3.4, 7.3.7, E.2.1, E.2.2): read only to find where it ends.

// psLayout says how to rebuild a parameter set RBSP: bits [0, keep), then
// the bits of insert, then bits [copyFrom, copyTo), then
// rbsp_trailing_bits.
type psLayout struct {
	keep             int
	insert           []bool
	copyFrom, copyTo int
}

func h265PTL(r *bitReader, maxSubLayersMinus1 uint64) {
	r.skip(96) // general profile (88 bits) and level
	var profile, level [8]bool
	for i := range maxSubLayersMinus1 {
		profile[i], level[i] = r.flag(), r.flag()
	}
	if maxSubLayersMinus1 > 0 {
		r.skip(int(2 * (8 - maxSubLayersMinus1)))
	}
	for i := range maxSubLayersMinus1 {
		if profile[i] {
			r.skip(88)
		}
		if level[i] {
			r.skip(8)
		}
	}
}

func h265SubLayerHRD(r *bitReader, cpbCnt uint64, subPic bool) {
	for range cpbCnt + 1 {
		r.ue()
		r.ue()
		if subPic {
			r.ue()
			r.ue()
		}
		r.skip(1)
	}
}

func h265HRD(r *bitReader, common bool, maxSubLayersMinus1 uint64) {
	nal, vcl, subPic := false, false, false
	if common {
		nal, vcl = r.flag(), r.flag()
		if nal || vcl {
			subPic = r.flag()
			if subPic {
				r.skip(19)
			}
			r.skip(8)
			if subPic {
				r.skip(4)
			}
			r.skip(15)
		}
	}
	for range maxSubLayersMinus1 + 1 {
		fixedWithin := true
		if !r.flag() { // fixed_pic_rate_general_flag
			fixedWithin = r.flag()
		}
		lowDelay := false
		if fixedWithin {
			r.ue()
		} else {
			lowDelay = r.flag()
		}
		cpbCnt := uint64(0)
		if !lowDelay {
			cpbCnt = r.ueMax(31)
		}
		if nal {
			h265SubLayerHRD(r, cpbCnt, subPic)
		}
		if vcl {
			h265SubLayerHRD(r, cpbCnt, subPic)
		}
		if r.err != nil {
			return
		}
	}
}

// walkH265VPS returns the layout of a VPS RBSP (after the 2-byte header).
// vps_extension data is dropped (vps_extension_flag rewritten to 0): a
// single-layer decoder ignores it.
func walkH265VPS(r *bitReader) psLayout {
	r.skip(12)
	maxSub := r.bits(3)
	r.skip(17)
	h265PTL(r, maxSub)
	from := maxSub
	if r.flag() { // vps_sub_layer_ordering_info_present_flag
		from = 0
	}
	for range maxSub - from + 1 {
		r.ue()
		r.ue()
		r.ue()
	}
	maxLayerID := r.bits(6)
	sets := r.ueMax(1023)
	for i := uint64(1); i <= sets && r.err == nil; i++ {
		r.skip(int(maxLayerID + 1))
	}
	if r.flag() { // vps_timing_info_present_flag
		r.skip(64)
		if r.flag() {
			r.ue()
		}
		n := r.ueMax(1024)
		for i := uint64(0); i < n && r.err == nil; i++ {
			r.ue()
			common := true
			if i > 0 {
				common = r.flag()
			}
			h265HRD(r, common, maxSub)
		}
	}
	at := r.pos
	if r.flag() { // vps_extension_flag
		return psLayout{keep: at, insert: []bool{false}}
	}
	return psLayout{keep: r.pos}
}

func h265ScalingListData(r *bitReader) {
	for size := range 4 {
		step := 1
		if size == 3 {
			step = 3
		}
		for m := 0; m < 6; m += step {
			if !r.flag() { // scaling_list_pred_mode_flag
				r.ue()
				continue
			}
			n := min(64, 1<<(4+size*2))
			if size > 1 {
				r.se()
			}
			for range n {
				r.se()
			}
			if r.err != nil {
				return
			}
		}
	}
}

// rps is one short-term reference picture set's delta POCs.
type rps struct{ s0, s1 []int64 }

// h265STRPS reads st_ref_pic_set(idx) of an SPS (7.3.7) and derives its
// delta POCs (7-61, 7-62), which the next set may predict from.
func h265STRPS(r *bitReader, idx int, sets []rps) rps {
	if idx != 0 && r.flag() { // inter_ref_pic_set_prediction_flag
		ref := sets[idx-1]
		sign := r.flag()
		d := int64(r.ueMax(1<<15-1) + 1)
		if sign {
			d = -d
		}
		n := len(ref.s0) + len(ref.s1)
		use := make([]bool, n+1)
		for j := range use {
			used := r.flag()
			use[j] = used || r.flag()
		}
		var out rps
		for j := len(ref.s1) - 1; j >= 0; j-- {
			if p := ref.s1[j] + d; p < 0 && use[len(ref.s0)+j] {
				out.s0 = append(out.s0, p)
			}
		}
		if d < 0 && use[n] {
			out.s0 = append(out.s0, d)
		}
		for j, v := range ref.s0 {
			if p := v + d; p < 0 && use[j] {
				out.s0 = append(out.s0, p)
			}
		}
		for j := len(ref.s0) - 1; j >= 0; j-- {
			if p := ref.s0[j] + d; p > 0 && use[j] {
				out.s1 = append(out.s1, p)
			}
		}
		if d > 0 && use[n] {
			out.s1 = append(out.s1, d)
		}
		for j, v := range ref.s1 {
			if p := v + d; p > 0 && use[len(ref.s0)+j] {
				out.s1 = append(out.s1, p)
			}
		}
		if len(out.s0) > 16 || len(out.s1) > 16 {
			r.err = errSyntax
		}
		return out
	}
	neg, pos := r.ueMax(16), r.ueMax(16)
	var out rps
	var poc int64
	for range neg {
		poc -= int64(r.ueMax(1<<15-1) + 1)
		r.skip(1)
		out.s0 = append(out.s0, poc)
	}
	poc = 0
	for range pos {
		poc += int64(r.ueMax(1<<15-1) + 1)
		r.skip(1)
		out.s1 = append(out.s1, poc)
	}
	return out
}

func h265VUI(r *bitReader, maxSub uint64) {
	vuiHead(r)
	r.skip(3)
	if r.flag() { // default_display_window_flag
		for range 4 {
			r.ue()
		}
	}
	if r.flag() { // vui_timing_info_present_flag
		r.skip(64)
		if r.flag() {
			r.ue()
		}
		if r.flag() {
			h265HRD(r, true, maxSub)
		}
	}
	if r.flag() { // bitstream_restriction_flag
		r.skip(3)
		for range 5 {
			r.ue()
		}
	}
}

// extensionLayout handles an SPS/PPS extension flag block at bit at:
// present, range, multilayer, 3d, scc, 4 more bits. The range extension
// (bits [rangeFrom, rangeTo)) is kept; any other extension is dropped by
// rewriting its flag to 0 (decoders of these profiles ignore them, and
// sps/pps_extension_data_flag can carry anything).
func extensionLayout(r *bitReader, at int, rangeExt func()) psLayout {
	if !r.flag() {
		return psLayout{keep: r.pos}
	}
	rangeF, multi, d3, scc := r.flag(), r.flag(), r.flag(), r.flag()
	four := r.bits(4)
	from := r.pos
	if rangeF {
		rangeExt()
	}
	to := r.pos
	if !multi && !d3 && !scc && four == 0 {
		return psLayout{keep: to}
	}
	if rangeF {
		return psLayout{keep: at, insert: []bool{true, true, false, false, false, false, false, false, false}, copyFrom: from, copyTo: to}
	}
	return psLayout{keep: at, insert: []bool{false}}
}

// walkH265SPS returns the layout of an SPS RBSP (after the 2-byte header).
func walkH265SPS(r *bitReader) psLayout {
	r.skip(4)
	maxSub := r.bits(3)
	r.skip(1)
	if maxSub > 6 {
		r.err = errSyntax
	}
	h265PTL(r, maxSub)
	r.ueMax(15)
	if r.ueMax(3) == 3 { // chroma_format_idc
		r.skip(1)
	}
	r.ue()
	r.ue()
	if r.flag() { // conformance_window_flag
		for range 4 {
			r.ue()
		}
	}
	r.ueMax(8)
	r.ueMax(8)
	pocBits := int(r.ueMax(12) + 4)
	from := maxSub
	if r.flag() { // sps_sub_layer_ordering_info_present_flag
		from = 0
	}
	for range maxSub - from + 1 {
		r.ue()
		r.ue()
		r.ue()
	}
	for range 6 {
		r.ue()
	}
	if enabled := r.flag(); enabled && r.flag() { // scaling_list_enabled_flag, sps_scaling_list_data_present_flag
		h265ScalingListData(r)
	}
	r.skip(2)
	if r.flag() { // pcm_enabled_flag
		r.skip(8)
		r.ue()
		r.ue()
		r.skip(1)
	}
	n := int(r.ueMax(64))
	sets := make([]rps, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		sets = append(sets, h265STRPS(r, i, sets))
	}
	if r.flag() { // long_term_ref_pics_present_flag
		k := r.ueMax(32)
		for range k {
			r.skip(pocBits + 1)
		}
	}
	r.skip(2)
	if r.flag() {
		h265VUI(r, maxSub)
	}
	return extensionLayout(r, r.pos, func() { r.skip(9) })
}

// walkH265PPS returns the layout of a PPS RBSP (after the 2-byte header).
func walkH265PPS(r *bitReader) psLayout {
	r.ueMax(63)
	r.ueMax(15)
	r.skip(7)
	r.ueMax(14)
	r.ueMax(14)
	r.se()
	r.skip(1)
	tskip := r.flag()
	if r.flag() { // cu_qp_delta_enabled_flag
		r.ue()
	}
	r.se()
	r.se()
	r.skip(4)
	tiles := r.flag()
	r.skip(1)
	if tiles {
		cols, rows := r.ueMax(1<<10), r.ueMax(1<<10)
		if !r.flag() { // uniform_spacing_flag
			for i := uint64(0); i < cols+rows && r.err == nil; i++ {
				r.ue()
			}
		}
		r.skip(1)
	}
	r.skip(1)
	if r.flag() { // deblocking_filter_control_present_flag
		r.skip(1)
		if !r.flag() {
			r.se()
			r.se()
		}
	}
	if r.flag() {
		h265ScalingListData(r)
	}
	r.skip(1)
	r.ue()
	r.skip(1)
	return extensionLayout(r, r.pos, func() {
		if tskip {
			r.ue()
		}
		r.skip(1)
		if r.flag() { // chroma_qp_offset_list_enabled_flag
			r.ue()
			n := r.ueMax(5)
			for range n + 1 {
				r.se()
				r.se()
			}
		}
		r.ue()
		r.ue()
	})
}
