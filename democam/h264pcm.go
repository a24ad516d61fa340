package democam

import (
	"errors"

	"cordon/internal/epb"
)

// pcmEncoder is a tiny, exact H.264 encoder for live synthetic pictures:
// Constrained Baseline, every changed macroblock coded as I_PCM (raw
// samples, so the decoder's picture equals the input bit for bit), every
// unchanged one as P_Skip, deblocking off. An IDR every gop frames. It
// needs no cgo and no ffmpeg. The cost is size: a fully changed 320x180
// frame is 92 KB (240 macroblocks x 384 bytes), so it suits small
// pictures at a modest rate.
type pcmEncoder struct {
	w, h     int // picture size (h may be below the coded height; cropped)
	mbW, mbH int
	gop      int
	fps      int

	frame    int // frames since the last IDR
	frameNum int // frame_num of the next picture
	idrID    int
	ref      []byte // last coded picture, I420 at coded size
}

// yuvFrame is a picture in I420 at the encoder's coded size
// (mbW*16 x mbH*16): Y, then Cb, then Cr.
type yuvFrame []byte

func newPCMEncoder(w, h, fps, gop int) (*pcmEncoder, error) {
	if w%16 != 0 || h%2 != 0 || w <= 0 || h <= 0 || fps <= 0 || gop <= 0 {
		return nil, errors.New("democam: encoder needs a width multiple of 16 and an even height")
	}
	e := &pcmEncoder{w: w, h: h, mbW: w / 16, mbH: (h + 15) / 16, gop: gop, fps: fps}
	return e, nil
}

func (e *pcmEncoder) codedW() int { return e.mbW * 16 }
func (e *pcmEncoder) codedH() int { return e.mbH * 16 }

// newFrame returns a black coded-size frame.
func (e *pcmEncoder) newFrame() yuvFrame {
	n := e.codedW() * e.codedH()
	f := make(yuvFrame, n*3/2)
	for i := range f[:n] {
		f[i] = 16
	}
	for i := range f[n:] {
		f[n+i] = 128
	}
	return f
}

// SPS returns the sequence parameter set NAL unit.
func (e *pcmEncoder) SPS() []byte {
	var b bitWriter
	b.u(8, 66)   // profile_idc: Baseline
	b.u(8, 0xc0) // constraint_set0 and 1: Constrained Baseline
	b.u(8, 31)   // level 3.1 (I_PCM pictures are large)
	b.ue(0)      // seq_parameter_set_id
	b.ue(4)      // log2_max_frame_num_minus4: frame_num is 8 bits
	b.ue(2)      // pic_order_cnt_type 2: output order = decode order
	b.ue(1)      // max_num_ref_frames
	b.u(1, 0)    // gaps_in_frame_num_value_allowed_flag
	b.ue(e.mbW - 1)
	b.ue(e.mbH - 1)
	b.u(1, 1) // frame_mbs_only_flag
	b.u(1, 1) // direct_8x8_inference_flag
	if crop := e.codedH() - e.h; crop > 0 {
		b.u(1, 1) // frame_cropping_flag
		b.ue(0)
		b.ue(0)
		b.ue(0)
		b.ue(crop / 2) // bottom, in 2-line units (4:2:0)
	} else {
		b.u(1, 0)
	}
	b.u(1, 1) // vui_parameters_present_flag
	b.u(1, 0) // aspect_ratio_info_present_flag
	b.u(1, 0) // overscan_info_present_flag
	b.u(1, 0) // video_signal_type_present_flag
	b.u(1, 0) // chroma_loc_info_present_flag
	b.u(1, 1) // timing_info_present_flag
	b.u(32, 1)
	b.u(32, uint32(2*e.fps))
	b.u(1, 1) // fixed_frame_rate_flag
	b.u(1, 0) // nal_hrd_parameters_present_flag
	b.u(1, 0) // vcl_hrd_parameters_present_flag
	b.u(1, 0) // pic_struct_present_flag
	b.u(1, 1) // bitstream_restriction_flag
	b.u(1, 1) // motion_vectors_over_pic_boundaries_flag
	b.ue(0)   // max_bytes_per_pic_denom
	b.ue(0)   // max_bits_per_mb_denom
	b.ue(16)  // log2_max_mv_length_horizontal
	b.ue(16)  // log2_max_mv_length_vertical
	b.ue(0)   // max_num_reorder_frames: no B-frames
	b.ue(1)   // max_dec_frame_buffering
	b.trailing()
	return nal(0x67, b.bytes())
}

// PPS returns the picture parameter set NAL unit.
func (e *pcmEncoder) PPS() []byte {
	var b bitWriter
	b.ue(0)   // pic_parameter_set_id
	b.ue(0)   // seq_parameter_set_id
	b.u(1, 0) // entropy_coding_mode_flag: CAVLC
	b.u(1, 0) // bottom_field_pic_order_in_frame_present_flag
	b.ue(0)   // num_slice_groups_minus1
	b.ue(0)   // num_ref_idx_l0_default_active_minus1
	b.ue(0)   // num_ref_idx_l1_default_active_minus1
	b.u(1, 0) // weighted_pred_flag
	b.u(2, 0) // weighted_bipred_idc
	b.se(0)   // pic_init_qp_minus26
	b.se(0)   // pic_init_qs_minus26
	b.se(0)   // chroma_qp_index_offset
	b.u(1, 1) // deblocking_filter_control_present_flag
	b.u(1, 0) // constrained_intra_pred_flag
	b.u(1, 0) // redundant_pic_cnt_present_flag
	b.trailing()
	return nal(0x68, b.bytes())
}

// Encode codes one picture: the NAL units of its access unit (SPS, PPS
// and an IDR slice every gop frames, else one P slice) and whether it is
// a keyframe. f must be coded-size I420.
func (e *pcmEncoder) Encode(f yuvFrame) ([][]byte, bool) {
	idr := e.ref == nil || e.frame%e.gop == 0
	if idr {
		e.frame, e.frameNum = 0, 0
	}
	var b bitWriter
	b.ue(0) // first_mb_in_slice
	if idr {
		b.ue(7) // slice_type I (all slices)
	} else {
		b.ue(5) // slice_type P (all slices)
	}
	b.ue(0) // pic_parameter_set_id
	b.u(8, uint32(e.frameNum&0xff))
	if idr {
		b.ue(e.idrID & 0xffff)
		e.idrID++
	} else {
		b.u(1, 0) // num_ref_idx_active_override_flag
		b.u(1, 0) // ref_pic_list_modification_flag_l0
	}
	if idr {
		b.u(1, 0) // no_output_of_prior_pics_flag
		b.u(1, 0) // long_term_reference_flag
	} else {
		b.u(1, 0) // adaptive_ref_pic_marking_mode_flag
	}
	b.se(0) // slice_qp_delta
	b.ue(1) // disable_deblocking_filter_idc: off
	e.sliceData(&b, f, idr)
	b.trailing()
	e.ref = append(e.ref[:0], f...)
	e.frame++
	e.frameNum = (e.frameNum + 1) & 0xff
	if idr {
		return [][]byte{e.SPS(), e.PPS(), nal(0x65, b.bytes())}, true
	}
	return [][]byte{nal(0x41, b.bytes())}, false
}

// sliceData writes every macroblock: I_PCM when changed (or in an IDR),
// else counted in mb_skip_run.
func (e *pcmEncoder) sliceData(b *bitWriter, f yuvFrame, idr bool) {
	skip := 0
	for my := 0; my < e.mbH; my++ {
		for mx := 0; mx < e.mbW; mx++ {
			if !idr && !e.changed(f, mx, my) {
				skip++
				continue
			}
			if idr {
				b.ue(25) // mb_type I_PCM in an I slice
			} else {
				b.ue(skip)
				skip = 0
				b.ue(30) // mb_type I_PCM in a P slice (5 + 25)
			}
			b.align()
			e.pcm(b, f, mx, my)
		}
	}
	if skip > 0 {
		b.ue(skip)
	}
}

func (e *pcmEncoder) planes(f []byte) (y, cb, cr []byte) {
	n := e.codedW() * e.codedH()
	return f[:n], f[n : n+n/4], f[n+n/4 : n+n/2]
}

func (e *pcmEncoder) changed(f yuvFrame, mx, my int) bool {
	y, cb, cr := e.planes(f)
	ry, rcb, rcr := e.planes(e.ref)
	w, cw := e.codedW(), e.codedW()/2
	for r := 0; r < 16; r++ {
		o := (my*16+r)*w + mx*16
		if string(y[o:o+16]) != string(ry[o:o+16]) {
			return true
		}
	}
	for r := 0; r < 8; r++ {
		o := (my*8+r)*cw + mx*8
		if string(cb[o:o+8]) != string(rcb[o:o+8]) || string(cr[o:o+8]) != string(rcr[o:o+8]) {
			return true
		}
	}
	return false
}

func (e *pcmEncoder) pcm(b *bitWriter, f yuvFrame, mx, my int) {
	y, cb, cr := e.planes(f)
	w, cw := e.codedW(), e.codedW()/2
	for r := 0; r < 16; r++ {
		o := (my*16+r)*w + mx*16
		b.raw(y[o : o+16])
	}
	for _, p := range [][]byte{cb, cr} {
		for r := 0; r < 8; r++ {
			o := (my*8+r)*cw + mx*8
			b.raw(p[o : o+8])
		}
	}
}

// nal returns a NAL unit: header byte and the RBSP with emulation
// prevention.
func nal(header byte, rbsp []byte) []byte {
	return epb.Append([]byte{header}, rbsp)
}

// bitWriter writes an RBSP most significant bit first.
type bitWriter struct {
	buf  []byte
	cur  byte
	nbit int
}

func (b *bitWriter) bit(v uint32) {
	b.cur = b.cur<<1 | byte(v&1)
	b.nbit++
	if b.nbit == 8 {
		b.buf = append(b.buf, b.cur)
		b.cur, b.nbit = 0, 0
	}
}

func (b *bitWriter) u(n int, v uint32) {
	for i := n - 1; i >= 0; i-- {
		b.bit(v >> uint(i))
	}
}

// ue writes an unsigned Exp-Golomb code.
func (b *bitWriter) ue(v int) {
	x := uint32(v) + 1
	n := 0
	for t := x; t > 1; t >>= 1 {
		n++
	}
	b.u(n, 0)
	b.u(n+1, x)
}

// se writes a signed Exp-Golomb code.
func (b *bitWriter) se(v int) {
	if v > 0 {
		b.ue(2*v - 1)
	} else {
		b.ue(-2 * v)
	}
}

// align writes zero bits up to the next byte boundary.
func (b *bitWriter) align() {
	for b.nbit != 0 {
		b.bit(0)
	}
}

// raw appends whole bytes (the writer must be aligned).
func (b *bitWriter) raw(p []byte) { b.buf = append(b.buf, p...) }

// trailing writes rbsp_trailing_bits.
func (b *bitWriter) trailing() {
	b.bit(1)
	b.align()
}

func (b *bitWriter) bytes() []byte { return b.buf }
