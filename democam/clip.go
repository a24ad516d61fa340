package democam

import (
	"embed"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

//go:embed clip/clip.h264 clip/clip-sliced.h264 clip/clip-bframes.h264 clip/clip-h265.h265
var clipFS embed.FS

// ClipName names one of the embedded clips made by clip/make-clip.sh.
type ClipName string

// The embedded clips. All are 320x180 at 15 fps with a GOP of exactly 2 s and
// parameter sets in band before every IDR.
const (
	// ClipMain: 60 s H.264 main profile, no B-frames, one slice per frame.
	ClipMain ClipName = "clip.h264"
	// ClipSliced: the same 60 s picture with slices of at most 1000 bytes, so
	// that every NAL unit fits one RTP packet (packetization-mode=0 cameras).
	ClipSliced ClipName = "clip-sliced.h264"
	// ClipBFrames: 4 s H.264 with B-frames (decode order != presentation order).
	ClipBFrames ClipName = "clip-bframes.h264"
	// ClipH265: 4 s H.265 main, no B-frames.
	ClipH265 ClipName = "clip-h265.h265"
)

// Codec names of a Clip.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
)

// FPS is the frame rate of every embedded clip.
const FPS = 15

// AccessUnit is one coded picture of a clip: its NAL units without start
// codes, in decode order.
type AccessUnit struct {
	NALUs [][]byte
	// Key: the AU holds an IDR (H.264) or IRAP (H.265) picture.
	Key bool
	// PTS is the presentation index in frames from the start of the clip
	// (equal to the AU's decode index unless the clip has B-frames).
	PTS int
}

// Clip is an elementary stream split into access units.
type Clip struct {
	Codec string // CodecH264 or CodecH265
	AUs   []AccessUnit
	// First parameter sets found in the stream (VPS is H.265 only).
	VPS, SPS, PPS []byte
}

// Frames returns the number of frames (access units) of the clip.
func (c *Clip) Frames() int { return len(c.AUs) }

// LoadClip parses one of the embedded clips.
func LoadClip(name ClipName) (*Clip, error) {
	data, err := clipFS.ReadFile("clip/" + string(name))
	if err != nil {
		return nil, fmt.Errorf("democam: unknown clip %q: %w", name, err)
	}
	codec := CodecH264
	if name == ClipH265 {
		codec = CodecH265
	}
	return ParseAnnexB(codec, data)
}

// SplitAnnexB returns the NAL units of an Annex-B byte stream (3- or 4-byte
// start codes), without start codes and without trailing zero bytes.
func SplitAnnexB(data []byte) [][]byte {
	var out [][]byte
	start := -1
	i := 0
	for i+2 < len(data) {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 {
			if start >= 0 {
				out = append(out, trimZeros(data[start:i]))
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(data) {
		out = append(out, trimZeros(data[start:]))
	}
	// drop empty units (e.g. from 0x00000001 prefixes counted as 00 00 01)
	n := 0
	for _, u := range out {
		if len(u) > 0 {
			out[n] = u
			n++
		}
	}
	return out[:n]
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// ParseAnnexB splits an Annex-B elementary stream into access units. A new AU
// starts at an access unit delimiter, at a parameter set or SEI that follows
// a coded slice, or at a slice that is the first of its picture
// (first_mb_in_slice == 0, or first_slice_segment_in_pic_flag for H.265).
func ParseAnnexB(codec string, data []byte) (*Clip, error) {
	if codec != CodecH264 && codec != CodecH265 {
		return nil, fmt.Errorf("democam: unsupported codec %q", codec)
	}
	c := &Clip{Codec: codec}
	var cur AccessUnit
	curHasVCL := false
	flush := func() {
		if len(cur.NALUs) > 0 {
			c.AUs = append(c.AUs, cur)
		}
		cur = AccessUnit{}
		curHasVCL = false
	}
	for _, n := range SplitAnnexB(data) {
		vcl, first, key, startsAU := classify(codec, n)
		if vcl {
			if first && curHasVCL {
				flush()
			}
			curHasVCL = true
			if key {
				cur.Key = true
			}
		} else if startsAU && curHasVCL {
			flush()
		}
		cur.NALUs = append(cur.NALUs, n)
		if codec == CodecH264 {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if c.SPS == nil {
					c.SPS = n
				}
			case h264.NALUTypePPS:
				if c.PPS == nil {
					c.PPS = n
				}
			}
		} else if len(n) >= 2 {
			switch (n[0] >> 1) & 0x3f {
			case 32:
				if c.VPS == nil {
					c.VPS = n
				}
			case 33:
				if c.SPS == nil {
					c.SPS = n
				}
			case 34:
				if c.PPS == nil {
					c.PPS = n
				}
			}
		}
	}
	flush()
	if len(c.AUs) == 0 {
		return nil, errors.New("democam: no access units in stream")
	}
	if c.SPS == nil || c.PPS == nil || (codec == CodecH265 && c.VPS == nil) {
		return nil, errors.New("democam: stream has no parameter sets")
	}
	if err := c.computePTS(); err != nil {
		return nil, err
	}
	return c, nil
}

// classify tells whether n is a coded slice, whether it is the first slice of
// its picture, whether it is a key picture, and (for non-VCL units) whether it
// can only appear at the start of an access unit.
func classify(codec string, n []byte) (vcl, first, key, startsAU bool) {
	if codec == CodecH264 {
		t := n[0] & 0x1f
		switch {
		case t == 1 || t == 5:
			// first_mb_in_slice is ue(v): value 0 is the single bit 1.
			return true, len(n) > 1 && n[1]&0x80 != 0, t == 5, false
		case t == 6 || t == 7 || t == 8 || t == 9 || (t >= 14 && t <= 18):
			return false, false, false, true
		}
		return false, false, false, false
	}
	if len(n) < 3 {
		return false, false, false, false
	}
	t := (n[0] >> 1) & 0x3f
	switch {
	case t <= 31:
		return true, n[2]&0x80 != 0, t >= 16 && t <= 23, false
	case (t >= 32 && t <= 35) || t == 39 || (t >= 41 && t <= 44) || (t >= 48 && t <= 55):
		return false, false, false, true
	}
	return false, false, false, false
}

// computePTS fills AccessUnit.PTS. H.264 with pic_order_cnt_type 0 uses the
// slice's pic_order_cnt_lsb (POC / 2 frames after the GOP's IDR); every other
// case (POC type 2, H.265 without B-frames) is decode order.
func (c *Clip) computePTS() error {
	if c.Codec != CodecH264 {
		for i := range c.AUs {
			c.AUs[i].PTS = i
		}
		return nil
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.SPS); err != nil {
		return fmt.Errorf("democam: bad SPS: %w", err)
	}
	if sps.PicOrderCntType != 0 {
		for i := range c.AUs {
			c.AUs[i].PTS = i
		}
		return nil
	}
	gopStart := 0
	maxLSB := int64(1) << (sps.Log2MaxPicOrderCntLsbMinus4 + 4)
	var msb, prev int64
	for i := range c.AUs {
		au := &c.AUs[i]
		if au.Key {
			gopStart = i
			msb, prev = 0, 0
		}
		var slice []byte
		for _, n := range au.NALUs {
			if t := n[0] & 0x1f; t == 1 || t == 5 {
				slice = n
				break
			}
		}
		if slice == nil {
			return fmt.Errorf("democam: access unit %d has no slice", i)
		}
		poc, err := pocLSB(slice, &sps)
		if err != nil {
			return fmt.Errorf("democam: access unit %d: %w", i, err)
		}
		// unwrap pic_order_cnt_lsb (8.2.1.1, against the previous picture)
		lsb := int64(poc)
		switch {
		case lsb < prev%maxLSB && prev%maxLSB-lsb >= maxLSB/2:
			msb += maxLSB
		case lsb > prev%maxLSB && lsb-prev%maxLSB > maxLSB/2:
			msb -= maxLSB
		}
		prev = msb + lsb
		au.PTS = gopStart + int(prev/2)
	}
	return nil
}

func pocLSB(slice []byte, sps *h264.SPS) (uint32, error) {
	idr := slice[0]&0x1f == 5
	buf := h264.EmulationPreventionRemove(slice[1:min(len(slice), 32)])
	r := bitReader{buf: buf}
	r.ue() // first_mb_in_slice
	r.ue() // slice_type
	r.ue() // pic_parameter_set_id
	if sps.SeparateColourPlaneFlag {
		r.bits(2)
	}
	r.bits(int(sps.Log2MaxFrameNumMinus4 + 4)) // frame_num
	if !sps.FrameMbsOnlyFlag {
		if r.bits(1) == 1 { // field_pic_flag
			r.bits(1)
		}
	}
	if idr {
		r.ue() // idr_pic_id
	}
	v := r.bits(int(sps.Log2MaxPicOrderCntLsbMinus4 + 4))
	if r.err {
		return 0, errors.New("slice header too short")
	}
	return v, nil
}

type bitReader struct {
	buf []byte
	pos int
	err bool
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		if r.pos >= len(r.buf)*8 {
			r.err = true
			return 0
		}
		v = v<<1 | uint32(r.buf[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bits(1) == 0 {
		if r.err || zeros > 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}
