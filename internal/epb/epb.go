// Package epb converts between an H.264/H.265 NAL unit payload and its raw
// byte sequence payload (RBSP): emulation prevention bytes (H.264 7.4.1,
// H.265 7.4.2) removed or inserted. It lives in internal/ because the
// sanitizer (relay/sanitize), the synthetic cameras (democam) and the
// end-to-end tests all need the same two loops and none of them owns them.
package epb

// Remove returns the RBSP of a NAL unit payload (header excluded): every
// emulation_prevention_three_byte (0x03 after two zero bytes) removed. The
// result is a new slice; b is not modified.
func Remove(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, x := range b {
		if zeros >= 2 && x == 3 {
			zeros = 0
			continue
		}
		out = append(out, x)
		if x == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// Append appends rbsp to dst with an emulation_prevention_three_byte
// inserted wherever two zero bytes are followed by a byte <= 3, and returns
// the extended slice.
func Append(dst, rbsp []byte) []byte {
	zeros := 0
	for _, x := range rbsp {
		if zeros >= 2 && x <= 3 {
			dst = append(dst, 3)
			zeros = 0
		}
		dst = append(dst, x)
		if x == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return dst
}
