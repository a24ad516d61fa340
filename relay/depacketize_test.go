package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"

	"cordon/democam"
	"cordon/relay/sanitize"
)

// edgeSizes are NAL unit sizes (header included) around the packetizer's
// limits for a codec with a hdr-byte NAL unit header: tiny units that
// aggregate, units at and around PayloadMaxSize, pairs that exactly fill
// one aggregation packet or overflow it by one byte, units that fragment
// into exactly k FUs or one byte more or less, and one access unit with
// more NAL units than gortsplib's decoders accept.
func edgeSizes(hdr int) [][]int {
	agg := PayloadMaxSize - hdr - 4 // a+b of two NAL units filling one STAP-A / AP
	fu := PayloadMaxSize - hdr - 1  // body bytes per FU
	s := [][]int{
		{hdr + 1}, {hdr + 1, hdr + 1, hdr + 1}, {hdr + 2, 5, 7},
		{PayloadMaxSize - 1}, {PayloadMaxSize}, {PayloadMaxSize + 1},
		{agg / 2, agg - agg/2}, {agg / 2, agg - agg/2 + 1}, {agg / 2, agg - agg/2 - 1},
		{hdr + fu}, {hdr + fu + 1}, {hdr + 2*fu - 1}, {hdr + 2*fu}, {hdr + 2*fu + 1}, {hdr + 7*fu},
		{30, PayloadMaxSize, 30, PayloadMaxSize - 1, 30}, {20, 8, 150_000}, {60, 70, 80, 90_000, 3},
	}
	var many []int
	for i := range 64 {
		many = append(many, hdr+1+i%9)
	}
	return append(s, many)
}

// randomNALU makes a NAL unit of n bytes (n >= the header) the packetizer
// sends as it is: forbidden bit 0, a type that is not an RTP packet type,
// random bytes (start codes included) after the header.
func randomNALU(r *rand.Rand, h265 bool, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		switch r.IntN(8) {
		case 0:
			b[i] = 0
		case 1:
			b[i] = 1
		default:
			b[i] = byte(r.Uint32())
		}
	}
	if h265 {
		b[0] = byte(r.IntN(48))<<1 | b[0]&1
	} else {
		b[0] = b[0]&0x60 | byte(r.IntN(24))
	}
	return b
}

// roundTrip packetizes au and reads it back; it must come back
// byte-identical, in memory of its own.
func roundTrip(t testing.TB, h265 bool, au [][]byte) {
	t.Helper()
	p := &packetizer{h265: h265, pt: 96, ssrc: 1, seq: 65500, max: PayloadMaxSize}
	pkts, err := p.encode(au)
	if err != nil {
		t.Fatalf("h265 %v: encode: %v", h265, err)
	}
	back, err := depacketize(h265, pkts)
	if err != nil {
		t.Fatalf("h265 %v: %d NAL units: depacketize: %v", h265, len(au), err)
	}
	if len(back) != len(au) {
		t.Fatalf("h265 %v: %d NAL units came back as %d", h265, len(au), len(back))
	}
	for i := range au {
		if !bytes.Equal(back[i], au[i]) {
			t.Fatalf("h265 %v: NAL unit %d of %d (%d bytes) came back as %d different bytes", h265, i, len(au), len(au[i]), len(back[i]))
		}
		if cap(back[i]) != len(back[i]) {
			t.Fatalf("h265 %v: NAL unit %d can grow into its neighbour", h265, i)
		}
	}
	for _, pk := range pkts {
		for _, n := range back {
			if &pk.Payload[0] == &n[0] {
				t.Fatal("a NAL unit read back shares memory with a packet")
			}
		}
	}
}

// Random and edge-case access units of both codecs come back from the
// depacketizer byte-identical: tiny NAL units that aggregate, units at and
// around PayloadMaxSize and the aggregation and fragmentation boundaries,
// large ones that fragment, mixes, many NAL units, bytes that look like
// start codes.
func TestDepacketizeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, h265 := range []bool{false, true} {
		hdr := 1
		if h265 {
			hdr = 2
		}
		sizes := edgeSizes(hdr)
		for range 300 {
			var s []int
			for range 1 + r.IntN(8) {
				if r.IntN(4) == 0 {
					s = append(s, hdr+1+r.IntN(20))
				} else {
					s = append(s, hdr+r.IntN(6000))
				}
			}
			sizes = append(sizes, s)
		}
		for _, sz := range sizes {
			var au [][]byte
			for _, n := range sz {
				au = append(au, randomNALU(r, h265, n))
			}
			roundTrip(t, h265, au)
		}
	}
}

// Packets that cordon does not make, or that are cut short, are an error,
// never a panic nor an access unit.
func TestDepacketizeRefuses(t *testing.T) {
	pk := func(payloads ...[]byte) []*rtp.Packet {
		var out []*rtp.Packet
		for _, p := range payloads {
			out = append(out, &rtp.Packet{Payload: p})
		}
		return out
	}
	for name, c := range map[string]struct {
		h265 bool
		pkts []*rtp.Packet
	}{
		"no packets":                 {false, nil},
		"empty payload":              {false, pk([]byte{})},
		"h265 one byte":              {true, pk([]byte{0x02})},
		"STAP-A empty":               {false, pk([]byte{24})},
		"STAP-A odd length":          {false, pk([]byte{24, 0})},
		"STAP-A unit past the end":   {false, pk([]byte{24, 0, 5, 0x41, 1})},
		"STAP-A empty unit":          {false, pk([]byte{24, 0, 0})},
		"AP unit shorter than hdr":   {true, pk([]byte{96, 1, 0, 1, 2})},
		"FU-A without FU header":     {false, pk([]byte{28})},
		"FU-A middle first":          {false, pk([]byte{28, 0x05, 1, 2})},
		"FU-A never ends":            {false, pk([]byte{28, 0x85, 1, 2})},
		"FU-A restarts":              {false, pk([]byte{28, 0x85, 1}, []byte{28, 0x85, 2})},
		"FU-A type changes":          {false, pk([]byte{28, 0x85, 1}, []byte{28, 0x41, 2})},
		"FU-A cut by a single":       {false, pk([]byte{28, 0x85, 1}, []byte{0x41, 2}, []byte{28, 0x45, 3})},
		"FU never ends":              {true, pk([]byte{98, 1, 0x93, 1})},
		"FU without FU header":       {true, pk([]byte{98, 1})},
		"STAP-B":                     {false, pk([]byte{25, 0, 0, 0, 2, 0x41, 1})},
		"FU-B":                       {false, pk([]byte{29, 0x85, 0, 0, 1})},
		"PACI":                       {true, pk([]byte{100, 1, 0, 0})},
		"unspecified 31":             {false, pk([]byte{31, 1})},
		"single then nothing usable": {false, pk([]byte{0x41, 1}, []byte{30})},
	} {
		if au, err := depacketize(c.h265, c.pkts); err == nil {
			t.Errorf("%s: read as %d NAL units", name, len(au))
		}
	}
}

// recorderAndViewer attaches a reader that wants access units (as the
// recorder) and one that wants packets only (as RTSP), both ready; they
// close when the test ends.
func recorderAndViewer(t *testing.T, s *Stream) (rec, view *Reader) {
	t.Helper()
	rec, err := s.AddReader(ReaderConf{Consumer: "record", AU: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	view, err = s.AddReader(ReaderConf{Protocol: "rtsp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(view.Close)
	_, _ = rec.WaitReady(context.Background())
	_, _ = view.WaitReady(context.Background())
	return rec, view
}

// A frame whose packets do not read back is dropped for a reader that
// wants access units and counted, with its track's frames up to the next
// keyframe; a reader that wants packets only gets it; the next keyframe
// reads back again.
func TestReaderDropsFrameThatDoesNotReadBack(t *testing.T) {
	s := newTestStream(t, 64)
	_ = s.CameraConnected([]Track{h264Track})
	rec, view := recorderAndViewer(t, s)
	feed(t, s, 0, 0, 1, 100)
	bad := &Frame{Track: 0, video: true, Packets: []*rtp.Packet{{Payload: []byte{28, 0x81, 1, 2}}}, Bytes: 4} // an FU-A that never ends
	s.mu.Lock()
	for _, r := range []*Reader{rec, view} {
		r.offer(bad)
	}
	s.mu.Unlock()
	feed(t, s, 0, 1, 2, 100) // two P-frames: they cannot be decoded without the bad one
	feed(t, s, 0, 100, 1, 100)
	for i, want := range []bool{true, true} {
		if d := next(t, rec); d.Key != want || len(d.AU) == 0 {
			t.Fatalf("recorder's delivery %d: key %v, %d NAL units", i, d.Key, len(d.AU))
		}
		if i == 0 {
			if dropped, _ := rec.Stats(); dropped != 0 {
				t.Fatalf("%d dropped before the bad frame", dropped)
			}
		}
	}
	if dropped, _ := rec.Stats(); dropped != 3 {
		t.Fatalf("recorder dropped %d frames, want the bad one and the two P-frames after it", dropped)
	}
	for i := range 5 {
		if d := next(t, view); d.AU != nil || len(d.Packets) == 0 {
			t.Fatalf("viewer's delivery %d: %d NAL units, %d packets", i, len(d.AU), len(d.Packets))
		}
	}
	if dropped, _ := view.Stats(); dropped != 0 {
		t.Fatalf("viewer dropped %d frames", dropped)
	}
}

// Access units that went through a Stream come back byte-identical from a
// reader that asked for them: exactly what the sanitizer let through (a
// second filter with the same input is the reference), for real clips of
// both codecs (one slice, several slices, B-frames) and for synthetic
// frames of random and edge-case sizes between their keyframes. A reader
// that did not ask gets no video NAL units.
func TestAccessUnitsRoundTripThroughStream(t *testing.T) {
	for _, name := range []democam.ClipName{democam.ClipMain, democam.ClipSliced, democam.ClipBFrames, democam.ClipH265} {
		t.Run(string(name), func(t *testing.T) {
			clip, err := democam.LoadClip(name)
			if err != nil {
				t.Fatal(err)
			}
			h265 := clip.Codec == democam.CodecH265
			tr := Track{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000, ParamSets: [][]byte{clip.SPS, clip.PPS}}
			codec, slice := sanitize.H264, []byte{0x41, 0x9a} // non-IDR slice
			if h265 {
				tr.Codec, tr.ParamSets = CodecH265, [][]byte{clip.VPS, clip.SPS, clip.PPS}
				codec, slice = sanitize.H265, []byte{0x02, 0x01} // TRAIL_R
			}
			s := newTestStream(t, 64)
			if err := s.CameraConnected([]Track{tr}); err != nil {
				t.Fatal(err)
			}
			ref := sanitize.NewVideoFilter(codec, s.Sanitize, tr.ParamSets)
			rec, view := recorderAndViewer(t, s)

			r := rand.New(rand.NewPCG(5, 6))
			hdr := len(slice)
			edges := edgeSizes(hdr)
			synthetic := func() [][]byte {
				sz := edges[r.IntN(len(edges))]
				if r.IntN(2) == 0 {
					sz = []int{hdr + 1 + r.IntN(4000), hdr + 1 + r.IntN(40)}
				}
				au := make([][]byte, len(sz))
				for i, n := range sz {
					au[i] = randomNALU(r, h265, max(n, hdr+1))
					copy(au[i], slice)
				}
				return au
			}
			compared := 0
			write := func(in [][]byte, at time.Duration) {
				t.Helper()
				want, _ := ref.Filter(in)
				if err := s.WriteUnit(Unit{Track: 0, PTS: at, AU: in}); err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 {
					return
				}
				d := next(t, rec)
				if len(d.AU) != len(want) {
					t.Fatalf("frame %d: %d NAL units, the sanitizer made %d", compared, len(d.AU), len(want))
				}
				for i := range want {
					if !bytes.Equal(d.AU[i], want[i]) {
						t.Fatalf("frame %d: NAL unit %d (%d bytes) came back as %d different bytes", compared, i, len(want[i]), len(d.AU[i]))
					}
				}
				if v := next(t, view); v.AU != nil {
					t.Fatal("a reader that did not ask for access units got NAL units")
				}
				compared++
			}
			base := time.Duration(0)
			aus := clip.AUs[:min(len(clip.AUs), 120)]
			for i, au := range aus {
				pts := base + time.Duration(au.PTS)*clipFrame
				write(au.NALUs, pts)
				// synthetic P-frames right after a reference P-frame of a
				// clip without B-frames (the timeline then stays monotonic)
				if name != democam.ClipBFrames && i%5 == 4 {
					write(synthetic(), pts+clipFrame)
					base += clipFrame
				}
			}
			if compared < len(aus) {
				t.Fatalf("only %d frames went through, the clip alone has %d", compared, len(aus))
			}
			if dropped, _ := rec.Stats(); dropped != 0 {
				t.Fatalf("the recorder dropped %d frames", dropped)
			}
		})
	}
}

// FuzzAccessUnitRoundTrip: any access unit the packetizer takes comes
// back byte-identical from the depacketizer, and packets made of the same
// bytes are read back or refused, never a panic. data is read as NAL
// units: two bytes of length (the units repeat data's bytes to reach it,
// so short inputs make fragmented units too) and a header seed.
func FuzzAccessUnitRoundTrip(f *testing.F) {
	f.Add(false, []byte{0x00, 0x05, 0x41, 1, 2, 3})
	f.Add(true, []byte{0x04, 0x4c, 0x26, 0x01, 0, 0, 1, 0x04, 0x4b, 0x02})
	f.Add(false, []byte{0x02, 0x25, 0x65, 0x02, 0x23, 0x41, 0x00, 0x03, 0x06, 1})
	f.Fuzz(func(t *testing.T, h265 bool, data []byte) {
		hdr := 1
		if h265 {
			hdr = 2
		}
		var au [][]byte
		total := 0
		for rest := data; len(rest) >= 3 && len(au) < 80 && total < 64<<10; {
			n := hdr + int(binary.BigEndian.Uint16(rest))%5000
			seed := rest[2]
			rest = rest[3:]
			b := make([]byte, n)
			for i := range b {
				if len(data) > 0 {
					b[i] = data[(i+int(seed))%len(data)]
				}
			}
			if h265 {
				b[0] = (seed%48)<<1 | b[0]&1
			} else {
				b[0] = seed&0x60 | seed%24
			}
			au = append(au, b)
			total += n
		}
		if len(au) > 0 {
			roundTrip(t, h265, au)
		}
		// the input itself as packets: one per 0xff-separated chunk
		var pkts []*rtp.Packet
		for _, p := range bytes.Split(data, []byte{0xff}) {
			pkts = append(pkts, &rtp.Packet{Payload: p})
		}
		if back, err := depacketize(h265, pkts); err == nil {
			n := 0
			for _, b := range back {
				n += len(b)
			}
			if n > len(data) {
				t.Fatalf("%d bytes of packets read as %d bytes of NAL units", len(data), n)
			}
		}
	})
}
