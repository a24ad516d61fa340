package relay

import (
	"errors"

	"github.com/pion/rtp"
)

// depacketize rebuilds the access unit a video frame's packets carry, for
// a reader that asked for access units (ReaderConf.AU): the exact NAL units
// the packetizer was given, in one new buffer the caller owns. It reads
// cordon's own packetization only (packetize.go: single NAL unit packets,
// STAP-A / AP, FU-A / FU, RFC 6184 mode 1 and RFC 7798 without DONL), one
// whole frame at a time, and checks every length against the payload, so
// a frame it cannot read is an error, never a panic.
//
// It is cordon's own and not gortsplib's rtph264 / rtph265 Decoder: those
// keep state across frames (a single NAL unit containing 00 00 00 01
// switches the decoder into Annex-B mode for good, and a frame that failed
// half-way leaves NAL units in the decoder's buffer that the next
// timestamp returns as an access unit), split a reassembled fragmented NAL
// unit at anything that looks like a start code (so the NAL units would
// not come back byte-identical), and refuse access units with more NAL
// units than mediacommon's caps (21 for H.265) that the sanitizer lets
// through. A frame's packets are all here at once and were made by the
// packetizer, so reading them needs none of a network decoder's state.
//
// It costs two allocations per access unit (the bytes and the NAL unit
// list): it walks the packets once to size them and once to copy.
func depacketize(h265 bool, pkts []*rtp.Packet) ([][]byte, error) {
	var w auWriter
	if err := w.walk(h265, pkts); err != nil {
		return nil, err
	}
	w.fill = true
	w.buf = make([]byte, 0, w.size)
	w.au = make([][]byte, 0, w.n)
	if err := w.walk(h265, pkts); err != nil {
		return nil, err // not reached: the first walk read the same packets
	}
	return w.au, nil
}

var (
	errDepacketize = errors.New("video packets do not form an access unit")
	errShortUnit   = errors.New("video packet or NAL unit shorter than its header")
	errUnitType    = errors.New("video packet of a type cordon does not send")
)

// auWriter counts (fill false) or copies out (fill true) the NAL units of
// a frame's packets.
type auWriter struct {
	fill  bool
	n     int // NAL units
	size  int // their bytes
	buf   []byte
	au    [][]byte
	start int // where the current NAL unit begins in buf
}

func (w *auWriter) begin() { w.start = len(w.buf) }

func (w *auWriter) write(b ...byte) {
	if w.fill {
		w.buf = append(w.buf, b...)
	}
	w.size += len(b)
}

func (w *auWriter) end() {
	if w.fill {
		w.au = append(w.au, w.buf[w.start:len(w.buf):len(w.buf)])
	}
	w.n++
}

// walk reads the packets into w.
func (w *auWriter) walk(h265 bool, pkts []*rtp.Packet) error {
	w.n, w.size = 0, 0
	hdr, aggType, fuType, typeMask := 1, 24, 28, byte(0x1f)
	if h265 {
		hdr, aggType, fuType, typeMask = 2, 48, 49, 0x3f
	}
	inFU := false // a fragmented NAL unit is open
	var open byte // its type
	for _, p := range pkts {
		pl := p.Payload
		if len(pl) < hdr {
			return errShortUnit
		}
		typ := int(pl[0] & 0x1f)
		if h265 {
			typ = int(pl[0]>>1) & 0x3f
		}
		if inFU && typ != fuType {
			return errDepacketize // a fragmented NAL unit left unfinished
		}
		switch {
		case typ == aggType:
			rest := pl[hdr:]
			if len(rest) == 0 {
				return errDepacketize
			}
			for len(rest) > 0 {
				if len(rest) < 2 {
					return errDepacketize
				}
				size := int(rest[0])<<8 | int(rest[1])
				rest = rest[2:]
				if size > len(rest) {
					return errDepacketize
				}
				if size < hdr {
					return errShortUnit
				}
				w.begin()
				w.write(rest[:size]...)
				w.end()
				rest = rest[size:]
			}
		case typ == fuType:
			if len(pl) < hdr+1 {
				return errShortUnit
			}
			fu := pl[hdr]
			first, last := fu&0x80 != 0, fu&0x40 != 0
			switch {
			case first && inFU:
				return errDepacketize
			case first:
				w.begin()
				if h265 {
					w.write(pl[0]&0x81|(fu&0x3f)<<1, pl[1])
				} else {
					w.write(pl[0]&0xe0 | fu&0x1f)
				}
				inFU, open = true, fu&typeMask
			case !inFU || fu&typeMask != open:
				return errDepacketize
			}
			w.write(pl[hdr+1:]...)
			if last {
				w.end()
				inFU = false
			}
		case typ > aggType: // H.264 STAP-B, MTAP, FU-B, 30-31; H.265 PACI, 51-63
			return errUnitType
		default:
			w.begin()
			w.write(pl...)
			w.end()
		}
	}
	if inFU || w.n == 0 {
		return errDepacketize
	}
	return nil
}
