package ingest

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"

	"cordon/relay"
)

// BenchmarkIngestAU is one camera's hot path without viewers: a camera's
// RTP packets (1400-byte payloads, 720p at 2 Mbit/s: a 40 KB keyframe
// every 50 frames, 10 KB frames between) depacketized by ingest's decoder,
// then sanitized, re-packetized and cached by the relay. Reported per
// access unit (ns/op, allocs/op).
func BenchmarkIngestAU(b *testing.B) {
	enc := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: 1400, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		b.Fatal(err)
	}
	body := func(t byte, n int) []byte {
		s := make([]byte, n)
		s[0], s[1] = t, 0x88
		for i := 2; i < n; i++ {
			s[i] = byte(i*31) | 1 // no start-code look-alikes
		}
		return s
	}
	var gop [][]*rtp.Packet
	for i := range 50 {
		au := [][]byte{body(0x41, 10000)}
		if i == 0 {
			au = [][]byte{testSPS, testPPS, body(0x65, 40000)}
		}
		pkts, err := enc.Encode(au)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3600)
		}
		gop = append(gop, pkts)
	}
	dec, err := newDecoder(&format.H264{PayloadTyp: 96, PacketizationMode: 1})
	if err != nil {
		b.Fatal(err)
	}
	s := &relay.Stream{Camera: "bench"}
	_ = s.Initialize()
	defer s.Close()
	if err := s.CameraConnected([]relay.Track{{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range gop[i%len(gop)] {
			c := *p // the client hands each packet once
			au, err := dec(&c)
			if err != nil {
				continue
			}
			if err := s.WriteUnit(relay.Unit{Track: 0, PTS: time.Duration(i) * 40 * time.Millisecond, AU: au}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
