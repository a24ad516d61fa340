package relay

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/pion/rtp"
)

// The relay's packetizer makes exactly the packets gortsplib's encoders
// make (payloads, markers, sequence numbers) for H.264 and H.265 access
// units of every shape: one small NAL unit, several that aggregate, NAL
// units of exactly the payload size and one byte around it, large ones
// cut into fragmentation units, mixes; no payload aliases the caller's
// NAL units; and gortsplib's decoders and the relay's own depacketizer
// get the access unit back.
func TestPacketizerMatchesGortsplib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	nalu := func(h265 bool, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(255) + 1)
		}
		if h265 {
			b[0] = byte(r.IntN(40)) << 1 // forbidden bit 0, a VCL/param type
			b[1] = 1                     // layer 0, temporal id plus 1
		} else {
			b[0] = byte(r.IntN(23)+1) | 0x60
		}
		return b
	}
	sizes := [][]int{{5}, {20, 8, 3000}, {1099}, {1100}, {1101}, {2197}, {2198}, {2199}, {500, 500}, {550, 550}, {60, 70, 80, 90000}, {1, 1, 1}}
	for range 200 {
		var s []int
		for range 1 + r.IntN(6) {
			s = append(s, 2+r.IntN(4000))
		}
		sizes = append(sizes, s)
	}
	for _, h265 := range []bool{false, true} {
		seq := uint16(65530)
		ssrc := uint32(0x11223344)
		p := &packetizer{h265: h265, pt: 96, ssrc: ssrc, seq: seq, max: PayloadMaxSize}
		var encode func([][]byte) ([]*rtp.Packet, error)
		var decode func(*rtp.Packet) ([][]byte, error)
		if h265 {
			e := &rtph265.Encoder{PayloadType: 96, SSRC: &ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: PayloadMaxSize}
			d := &rtph265.Decoder{}
			_, _ = e.Init(), d.Init()
			encode, decode = e.Encode, d.Decode
		} else {
			e := &rtph264.Encoder{PayloadType: 96, SSRC: &ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: PayloadMaxSize, PacketizationMode: 1}
			d := &rtph264.Decoder{PacketizationMode: 1}
			_, _ = e.Init(), d.Init()
			encode, decode = e.Encode, d.Decode
		}
		for _, sz := range sizes {
			var au [][]byte
			for _, n := range sz {
				if h265 && n < 2 {
					n = 2
				}
				au = append(au, nalu(h265, n))
			}
			want, err := encode(au)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.encode(au)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("h265 %v sizes %v: %d packets, gortsplib %d", h265, sz, len(got), len(want))
			}
			for i := range got {
				if got[i].Header.SequenceNumber != want[i].SequenceNumber || got[i].Marker != want[i].Marker ||
					got[i].SSRC != want[i].SSRC || got[i].PayloadType != want[i].PayloadType || !bytes.Equal(got[i].Payload, want[i].Payload) {
					t.Fatalf("h265 %v sizes %v packet %d: %+v % x…, gortsplib %+v % x…", h265, sz, i, got[i].Header, got[i].Payload[:4], want[i].Header, want[i].Payload[:4])
				}
			}
			for i, pk := range got {
				for _, n := range au {
					if &pk.Payload[0] == &n[0] {
						t.Fatalf("h265 %v sizes %v: packet %d's payload is the caller's NAL unit, not a copy", h265, sz, i)
					}
				}
			}
			own, err := depacketize(h265, got)
			if err != nil || len(own) != len(au) {
				t.Fatalf("h265 %v sizes %v: depacketized %d NAL units, %v", h265, sz, len(own), err)
			}
			for i := range au {
				if !bytes.Equal(own[i], au[i]) {
					t.Fatalf("h265 %v sizes %v: NAL unit %d depacketized differently", h265, sz, i)
				}
			}
			var back [][]byte
			for _, pk := range got {
				if nalus, err := decode(pk); err == nil {
					back = nalus
				}
			}
			if len(back) != len(au) {
				t.Fatalf("h265 %v sizes %v: decoded %d NAL units", h265, sz, len(back))
			}
			for i := range au {
				if !bytes.Equal(back[i], au[i]) {
					t.Fatalf("h265 %v sizes %v: NAL unit %d decoded differently", h265, sz, i)
				}
			}
		}
	}
}

// An empty NAL unit is refused, not packetized.
func TestPacketizerRefusesEmptyNALU(t *testing.T) {
	p := &packetizer{pt: 96, max: PayloadMaxSize}
	if _, err := p.encode([][]byte{{0x65, 1}, {}}); err == nil {
		t.Fatal("an empty NAL unit was packetized")
	}
	if pk, err := p.encode(nil); err != nil || pk != nil {
		t.Fatal("an empty access unit made packets")
	}
}

// An access unit costs three allocations however many packets it makes:
// the arena of payloads, the packet values and their pointers; reading it
// back costs two (the bytes and the NAL unit list), for H.264 and H.265.
func TestPacketizerAllocations(t *testing.T) {
	for _, h265 := range []bool{false, true} {
		p := &packetizer{h265: h265, pt: 96, max: PayloadMaxSize}
		hdrs := [][]byte{{0x67}, {0x68}, {0x65}, {0x41}} // SPS, PPS, IDR, P
		if h265 {
			hdrs = [][]byte{{0x42, 1}, {0x44, 1}, {0x26, 1}, {0x02, 1}}
		}
		au := [][]byte{append(hdrs[0], make([]byte, 20)...), append(hdrs[1], make([]byte, 4)...), append(hdrs[2], make([]byte, 60000)...), append(hdrs[3], make([]byte, 1098)...)}
		if n := testing.AllocsPerRun(100, func() { _, _ = p.encode(au) }); n != 3 {
			t.Fatalf("h265 %v: %v allocations per access unit, want 3", h265, n)
		}
		pkts, _ := p.encode(au)
		if back, err := depacketize(h265, pkts); err != nil || len(back) != len(au) {
			t.Fatalf("h265 %v: depacketized %d NAL units, %v", h265, len(back), err)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = depacketize(h265, pkts) }); n != 2 {
			t.Fatalf("h265 %v: %v allocations to depacketize an access unit, want 2", h265, n)
		}
	}
}

// BenchmarkWriteUnit1080p reports what one 1080p-sized access unit costs
// the stream (sanitizer, packetizer, frame), no readers attached: a
// keyframe (SPS, PPS and a 100 KB IDR slice) and a 16 KB P slice (about
// 4 Mbit/s at 25 fps with a GOP of 50).
func BenchmarkWriteUnit1080p(b *testing.B) {
	for _, c := range []struct {
		name string
		au   [][]byte
	}{
		{"idr", [][]byte{testSPS, testPPS, idr(100_000)}},
		{"p", [][]byte{pslice(16_000)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := &Stream{Camera: "bench"}
			_ = s.Initialize()
			defer s.Close()
			_ = s.CameraConnected([]Track{h264Track})
			_ = s.WriteUnit(Unit{Track: 0, AU: [][]byte{testSPS, testPPS, idr(100_000)}})
			n := 0
			for _, nalu := range c.au {
				n += len(nalu)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				_ = s.WriteUnit(Unit{Track: 0, PTS: time.Duration(i) * 40 * time.Millisecond, AU: c.au})
			}
		})
	}
}
