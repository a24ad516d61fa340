package sanitize

import "errors"

// ErrOpusMalformed: an Opus packet whose padding runs past its end.
var ErrOpusMalformed = errors.New("malformed Opus packet")

// CleanOpus returns the Opus packet pkt (RFC 6716 section 3) without its
// padding. Only code 3 packets carry padding; RFC 6716 asks encoders to
// zero it precisely because it is a covert channel, and newer Opus puts
// extension data there: cordon removes it (clears the padding flag and
// drops the padding length and the padding bytes). Other packets come back
// as they are. The result may alias pkt.
func CleanOpus(pkt []byte) ([]byte, error) {
	if len(pkt) < 2 || pkt[0]&0x3 != 3 || pkt[1]&0x40 == 0 {
		return pkt, nil
	}
	i, pad := 2, 0
	for {
		if i >= len(pkt) {
			return nil, ErrOpusMalformed
		}
		b := int(pkt[i])
		i++
		if b < 255 {
			pad += b
			break
		}
		pad += 254
	}
	if i+pad > len(pkt) {
		return nil, ErrOpusMalformed
	}
	out := make([]byte, 0, len(pkt)-pad-(i-2))
	out = append(out, pkt[0], pkt[1]&^0x40)
	return append(out, pkt[i:len(pkt)-pad]...), nil
}
