package sanitize

import "testing"

// benchGOP is a realistic camera GOP piece: an IDR access unit (SPS, PPS,
// a vendor SEI and a ~30 KB slice) and a P access unit (a vendor SEI and a
// ~5 KB slice), as a Hikvision-style camera sends them.
func benchGOP(b *testing.B) (idrAU, pAU [][]byte) {
	sps, pps := b64(b, sps264B64), b64(b, pps264B64)
	vendor := sei264(seiMsg{typ: 5, payload: append(vendorUUID[:], make([]byte, 24)...)})
	signed := sei264(udu(AxisSignedVideoUUID(), make([]byte, 64)...))
	idrAU = [][]byte{sps, pps, vendor, signed, slice264(5, 30*1024)}
	pAU = [][]byte{vendor, slice264(1, 5*1024)}
	return idrAU, pAU
}

func auBytes(au [][]byte) int64 {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	return int64(n)
}

func BenchmarkFilterH264(b *testing.B) {
	idrAU, pAU := benchGOP(b)
	opts := Options{AllowSEIUUIDs: [][16]byte{AxisSignedVideoUUID()}}
	for _, c := range []struct {
		name string
		au   [][]byte
	}{{"idr", idrAU}, {"p", pAU}} {
		b.Run(c.name, func(b *testing.B) {
			f := NewVideoFilter(H264, opts, nil)
			drops := 0
			f.OnDrop = func(string) { drops++ }
			f.Filter(idrAU) // in-band history primed, as in a running stream
			b.SetBytes(auBytes(c.au))
			b.ReportAllocs()
			for b.Loop() {
				if out, _ := f.Filter(c.au); len(out) == 0 {
					b.Fatal("nothing left")
				}
			}
		})
	}
}

// TestFilterSteadyStateDoesNotAllocate pins the benchmark's 0 allocs/op.
func TestFilterSteadyStateDoesNotAllocate(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	idrAU := [][]byte{sps, pps, sei264(udu(vendorUUID, 1)), slice264(5, 3000)}
	pAU := [][]byte{sei264(udu(AxisSignedVideoUUID(), 1)), slice264(1, 500)}
	f := NewVideoFilter(H264, Options{AllowSEIUUIDs: [][16]byte{AxisSignedVideoUUID()}}, nil)
	f.OnDrop = func(string) {}
	bareIDR := [][]byte{slice264(5, 100)} // parameter sets injected from history
	f.Filter(idrAU)
	if n := testing.AllocsPerRun(200, func() {
		f.Filter(idrAU)
		f.Filter(pAU)
		if _, key := f.Filter(bareIDR); !key {
			t.Fatal("not key")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per GOP step", n)
	}
}
