package sanitize

import (
	"errors"
	"math/bits"
)

// errSyntax: a parameter set does not follow its syntax (truncated, or a
// value out of the range the standard allows).
var errSyntax = errors.New("parameter set syntax error")

// bitReader reads an RBSP most significant bit first.
type bitReader struct {
	b   []byte
	pos int // bit position
	err error
}

func (r *bitReader) bits(n int) uint64 {
	if r.err != nil {
		return 0
	}
	if n < 0 || r.pos+n > len(r.b)*8 {
		r.err = errSyntax
		return 0
	}
	var v uint64
	for range n {
		v = v<<1 | uint64(r.b[r.pos>>3]>>(7-r.pos&7)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.bits(1) == 1 }

func (r *bitReader) skip(n int) { r.bits(n) }

// ue reads an Exp-Golomb unsigned value (at most 32 bits of prefix).
func (r *bitReader) ue() uint64 {
	zeros := 0
	for r.err == nil && r.bits(1) == 0 {
		zeros++
		if zeros > 31 {
			r.err = errSyntax
			return 0
		}
	}
	if r.err != nil {
		return 0
	}
	return (1<<zeros - 1) + r.bits(zeros)
}

// ueMax reads an Exp-Golomb value that the standard bounds by max.
// Out of range, it fails the reader and returns 0, so no caller loops or
// allocates by a hostile count.
func (r *bitReader) ueMax(max uint64) uint64 {
	v := r.ue()
	if v > max {
		r.err = errSyntax
		return 0
	}
	return v
}

// se reads a signed Exp-Golomb value.
func (r *bitReader) se() int64 {
	v := r.ue()
	if v&1 == 1 {
		return int64(v+1) / 2
	}
	return -int64(v / 2)
}

// trailingAt reports whether rbsp_trailing_bits start at bit p: a one,
// then zeros up to a byte boundary. It returns the length in bytes of the
// RBSP up to and including them.
func trailingAt(b []byte, p int) (int, bool) {
	if p < 0 || p >= len(b)*8 || b[p>>3]>>(7-p&7)&1 != 1 {
		return 0, false
	}
	for q := p + 1; q&7 != 0; q++ {
		if b[q>>3]>>(7-q&7)&1 != 0 {
			return 0, false
		}
	}
	return p>>3 + 1, true
}

// lastOne is the bit position of the last one bit of b (-1 if none).
func lastOne(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i*8 + 7 - bits.TrailingZeros8(b[i])
		}
	}
	return -1
}

// bitWriter builds an RBSP.
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) bit(v bool) {
	if w.n&7 == 0 {
		w.b = append(w.b, 0)
	}
	if v {
		w.b[len(w.b)-1] |= 1 << (7 - w.n&7)
	}
	w.n++
}

// copyBits appends bits [from, to) of src.
func (w *bitWriter) copyBits(src []byte, from, to int) {
	if from&7 == 0 && w.n&7 == 0 && to-from >= 8 {
		whole := (to - from) / 8
		w.b = append(w.b, src[from>>3:from>>3+whole]...)
		w.n += whole * 8
		from += whole * 8
	}
	for p := from; p < to; p++ {
		w.bit(src[p>>3]>>(7-p&7)&1 == 1)
	}
}

// trailing appends rbsp_trailing_bits.
func (w *bitWriter) trailing() {
	w.bit(true)
	for w.n&7 != 0 {
		w.bit(false)
	}
}
