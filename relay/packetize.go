package relay

import (
	"errors"

	"github.com/pion/rtp"
)

// packetizer re-originates one video track's access units as RTP: RFC
// 6184 packetization mode 1 (H.264) or RFC 7798 (H.265), the same packets
// gortsplib's encoders make (consecutive NAL units that fit one payload go
// in one aggregation packet, STAP-A / AP; a NAL unit that does not is cut
// into fragmentation units, FU-A / FU; the marker on the last packet), but
// built in one arena per access unit: every payload (a single NAL unit
// packet's payload is a copy of that NAL unit) shares one allocation, the
// packet values one more and their pointers a third, so an access unit
// costs three allocations instead of two per packet. The frame keeps no
// other copy of the NAL units: a reader that wants them depacketizes the
// payloads (depacketize.go). It is used only under Stream.mu.
type packetizer struct {
	h265 bool
	pt   uint8
	ssrc uint32
	seq  uint16 // the next packet's
	max  int    // payload bytes
}

var errEmptyNALU = errors.New("empty NAL unit")

// unitKind is how one batch of NAL units is sent.
type unitKind int

const (
	unitSingle unitKind = iota
	unitAggregate
	unitFragments
)

// batch is a run of NAL units sent as one single, aggregation or
// fragmented unit.
type batch struct {
	from, to int // au[from:to]
	kind     unitKind
	packets  int
	bytes    int // payload bytes
}

// hdr is the NAL unit header length (1 for H.264, 2 for H.265).
func (p *packetizer) hdr() int {
	if p.h265 {
		return 2
	}
	return 1
}

// plan splits au into batches as gortsplib's encoders do and returns them
// with the total packets and payload bytes.
func (p *packetizer) plan(au [][]byte, batches []batch) ([]batch, int, int, error) {
	aggLen := func(from, to int) int {
		n := p.hdr()
		for _, nalu := range au[from:to] {
			n += 2 + len(nalu)
		}
		return n
	}
	start := 0
	flush := func(to int) {
		b := batch{from: start, to: to}
		switch {
		case to-start > 1:
			b.kind, b.packets, b.bytes = unitAggregate, 1, aggLen(start, to)
		case len(au[start]) < p.max:
			b.kind, b.packets, b.bytes = unitSingle, 1, len(au[start])
		default:
			h := p.hdr()
			avail, body := p.max-h-1, len(au[start])-h
			b.kind, b.packets = unitFragments, (body+avail-1)/avail
			b.bytes = body + b.packets*(h+1)
		}
		batches = append(batches, b)
		start = to
	}
	for i, nalu := range au {
		if len(nalu) < p.hdr() {
			return nil, 0, 0, errEmptyNALU
		}
		if i > start && aggLen(start, i+1) > p.max {
			flush(i)
		}
	}
	if len(au) > 0 {
		flush(len(au))
	}
	pkts, bytes := 0, 0
	for _, b := range batches {
		pkts += b.packets
		bytes += b.bytes
	}
	return batches, pkts, bytes, nil
}

// encode packetizes au into payloads that live in one arena; au itself is
// not kept (it may be the sanitizer's buffers). Timestamps are left 0.
func (p *packetizer) encode(au [][]byte) ([]*rtp.Packet, error) {
	var stack [8]batch
	batches, npkts, nbytes, err := p.plan(au, stack[:0])
	if err != nil || npkts == 0 {
		return nil, err
	}
	arena := make([]byte, 0, nbytes)
	values := make([]rtp.Packet, npkts)
	pkts := make([]*rtp.Packet, npkts)
	k := 0
	add := func(payload []byte) {
		values[k] = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.pt, SequenceNumber: p.seq, SSRC: p.ssrc}, Payload: payload}
		pkts[k] = &values[k]
		p.seq++
		k++
	}
	for _, b := range batches {
		switch b.kind {
		case unitSingle:
			arena = append(arena, au[b.from]...)
			add(arena[len(arena)-b.bytes : len(arena) : len(arena)])
		case unitAggregate:
			arena = p.aggregate(arena, au[b.from:b.to])
			add(arena[len(arena)-b.bytes : len(arena) : len(arena)])
		case unitFragments:
			arena = p.fragment(arena, au[b.from], add)
		}
	}
	values[npkts-1].Marker = true
	return pkts, nil
}

// aggregate appends a STAP-A (H.264) or AP (H.265) payload.
func (p *packetizer) aggregate(arena []byte, nalus [][]byte) []byte {
	if !p.h265 {
		arena = append(arena, 24) // STAP-A; F and NRI 0, as gortsplib
	} else {
		layer, tid := byte(0xff), byte(0xff)
		for _, n := range nalus {
			layer = min(layer, (n[0]&0x01)<<5|(n[1]>>3)&0x1f)
			tid = min(tid, n[1]&0x07)
		}
		arena = append(arena, 48<<1|layer&0x20, (layer&0x1f)<<3|tid&0x07)
	}
	for _, n := range nalus {
		arena = append(arena, byte(len(n)>>8), byte(len(n)))
		arena = append(arena, n...)
	}
	return arena
}

// fragment appends the FU-A (H.264) or FU (H.265) payloads of one NAL
// unit, calling add for each.
func (p *packetizer) fragment(arena []byte, nalu []byte, add func([]byte)) []byte {
	h := p.hdr()
	avail := p.max - h - 1
	body := nalu[h:]
	for first := true; len(body) > 0; first = false {
		n := min(avail, len(body))
		var fu byte
		if first {
			fu |= 0x80
		}
		if n == len(body) {
			fu |= 0x40
		}
		start := len(arena)
		if p.h265 {
			arena = append(arena, nalu[0]&0b10000001|49<<1, nalu[1], fu|(nalu[0]>>1)&0x3f)
		} else {
			arena = append(arena, nalu[0]&0x60|28, fu|nalu[0]&0x1f)
		}
		arena = append(arena, body[:n]...)
		body = body[n:]
		add(arena[start:len(arena):len(arena)])
	}
	return arena
}
