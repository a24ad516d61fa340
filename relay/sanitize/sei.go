package sanitize

import "errors"

// PayloadTypeUserDataUnregistered is the SEI payload type of
// user_data_unregistered (H.264 D.1.6, H.265 D.2.7): a 16-byte UUID followed
// by free-form bytes.
const PayloadTypeUserDataUnregistered = 5

// SEIMessage is one message of an SEI NAL unit.
type SEIMessage struct {
	Type int // payloadType, 0xFF extension bytes summed
	Size int // payloadSize in RBSP bytes
	// UUID is the uuid_iso_iec_11578 of a user_data_unregistered message
	// (Type 5, Size >= 16); zero otherwise.
	UUID [16]byte
}

// Errors from ParseSEI.
var (
	ErrSEIHeader    = errors.New("SEI: not an SEI NAL unit")
	ErrSEITrailing  = errors.New("SEI: no rbsp_trailing_bits")
	ErrSEITruncated = errors.New("SEI: message runs past the end of the NAL unit")
)

// rbspReader yields the RBSP bytes of a NAL unit payload, removing
// emulation_prevention_three_byte (0x00 0x00 0x03) on the fly, without
// allocating.
type rbspReader struct {
	b     []byte
	i     int
	zeros int
}

func (r *rbspReader) more() bool {
	if r.i >= len(r.b) {
		return false
	}
	// An emulation prevention byte that ends the data is not RBSP data.
	return !(r.zeros >= 2 && r.b[r.i] == 3 && r.i == len(r.b)-1)
}

func (r *rbspReader) next() (byte, bool) {
	if r.i >= len(r.b) {
		return 0, false
	}
	c := r.b[r.i]
	if r.zeros >= 2 && c == 3 {
		r.i++
		r.zeros = 0
		if r.i >= len(r.b) {
			return 0, false
		}
		c = r.b[r.i]
	}
	r.i++
	if c == 0 {
		r.zeros++
	} else {
		r.zeros = 0
	}
	return c, true
}

// skip advances n RBSP bytes; false if the data ends first. The work is
// bounded by the data, never by n.
func (r *rbspReader) skip(n int) bool {
	for ; n > 0; n-- {
		if _, ok := r.next(); !ok {
			return false
		}
	}
	return true
}

// ff reads a payloadType or payloadSize: 0xFF bytes each add 255, the first
// other byte ends the value. limit bounds the value (larger is an error), so
// no input can make it overflow.
func (r *rbspReader) ff(limit int) (int, bool) {
	v := 0
	for {
		c, ok := r.next()
		if !ok {
			return 0, false
		}
		v += int(c)
		if v > limit {
			return 0, false
		}
		if c != 0xFF {
			return v, true
		}
	}
}

// seiIter walks the messages of one SEI NAL unit.
type seiIter struct {
	r   rbspReader
	err error
}

// init checks the NAL header and the rbsp_trailing_bits and positions the
// iterator on the first message.
func (it *seiIter) init(codec VideoCodec, nal []byte) bool {
	hl := headerLen(codec)
	if len(nal) <= hl {
		it.err = ErrSEIHeader
		return false
	}
	switch codec {
	case H264:
		if nal[0]&0x9f != 6 {
			it.err = ErrSEIHeader
			return false
		}
	case H265:
		t := (nal[0] >> 1) & 0x3f
		if nal[0]&0x80 != 0 || (t != 39 && t != 40) {
			it.err = ErrSEIHeader
			return false
		}
	default:
		it.err = ErrSEIHeader
		return false
	}
	// The RBSP ends with rbsp_trailing_bits: a 1 bit then 0 bits to the byte
	// boundary. Every SEI message is a whole number of bytes, so the stop bit
	// is the byte 0x80: the last non-zero byte of the NAL unit (zero bytes
	// after it are tolerated). Anything else is malformed.
	end := len(nal) - 1
	for end >= hl && nal[end] == 0 {
		end--
	}
	if end < hl || nal[end] != 0x80 {
		it.err = ErrSEITrailing
		return false
	}
	it.r = rbspReader{b: nal[hl:end]}
	if !it.r.more() {
		// sei_rbsp() holds at least one message.
		it.err = ErrSEITruncated
		return false
	}
	return true
}

// next returns the next message; false at the end or on error (it.err).
// The payload is skipped, except a user_data_unregistered UUID.
func (it *seiIter) next() (SEIMessage, bool) {
	var m SEIMessage
	if it.err != nil || !it.r.more() {
		return m, false
	}
	// Claimed values are checked against the bytes left (an upper bound on
	// the RBSP bytes left), so a lying size fails early and nothing is ever
	// allocated or looped over in proportion to it.
	left := len(it.r.b) - it.r.i
	var ok bool
	if m.Type, ok = it.r.ff(255 * left); !ok {
		it.err = ErrSEITruncated
		return m, false
	}
	left = len(it.r.b) - it.r.i
	if m.Size, ok = it.r.ff(left); !ok {
		it.err = ErrSEITruncated
		return m, false
	}
	n := m.Size
	if m.Type == PayloadTypeUserDataUnregistered && n >= 16 {
		for i := range m.UUID {
			c, ok := it.r.next()
			if !ok {
				it.err = ErrSEITruncated
				return m, false
			}
			m.UUID[i] = c
		}
		n -= 16
	}
	if !it.r.skip(n) {
		it.err = ErrSEITruncated
		return m, false
	}
	return m, true
}

// ParseSEI returns the messages of an SEI NAL unit (H.264 type 6, H.265
// type 39 or 40; header included, emulation prevention bytes present). Any
// truncation, size running past the end, or missing rbsp_trailing_bits is
// an error. Work is linear in len(nal).
func ParseSEI(codec VideoCodec, nal []byte) ([]SEIMessage, error) {
	var it seiIter
	if !it.init(codec, nal) {
		return nil, it.err
	}
	var msgs []SEIMessage
	for {
		m, ok := it.next()
		if !ok {
			break
		}
		msgs = append(msgs, m)
	}
	if it.err != nil {
		return nil, it.err
	}
	return msgs, nil
}

// SEIAllowed reports whether an SEI NAL unit may leave the gateway: it is
// well formed and every message in it is user_data_unregistered with a UUID
// in allow. It does not allocate.
func SEIAllowed(codec VideoCodec, nal []byte, allow [][16]byte) bool {
	if len(allow) == 0 {
		return false
	}
	var it seiIter
	if !it.init(codec, nal) {
		return false
	}
	for {
		m, ok := it.next()
		if !ok {
			return it.err == nil
		}
		if m.Type != PayloadTypeUserDataUnregistered || m.Size < 16 || !uuidIn(m.UUID, allow) {
			return false
		}
	}
}

func uuidIn(u [16]byte, allow [][16]byte) bool {
	for _, a := range allow {
		if a == u {
			return true
		}
	}
	return false
}
