package sanitize

import (
	"bytes"
	"slices"
	"testing"
)

// Expected verdicts written from ITU-T H.264 Table 7-1, independently of
// the filter's table: "" = kept.
var want264 = map[byte]string{
	0: "unspecified", 1: "", 2: "partition", 3: "partition", 4: "partition", 5: "",
	6: "sei", 7: "", 8: "", 9: "aud", 10: "end_of_seq", 11: "end_of_seq", 12: "filler",
	13: "param_ext", 14: "extension", 15: "param_ext", 16: "reserved", 17: "reserved",
	18: "reserved", 19: "extension", 20: "extension", 21: "extension", 22: "reserved",
	23: "reserved", 24: "unspecified", 25: "unspecified", 26: "unspecified",
	27: "unspecified", 28: "unspecified", 29: "unspecified", 30: "unspecified", 31: "unspecified",
}

func TestFilterH264EveryNALType(t *testing.T) {
	for typ := range byte(32) {
		rec := &recorder{}
		f := NewVideoFilter(H264, Options{}, nil)
		f.OnDrop = rec.on
		nal := slice264(typ, 20) // an SEI of junk for type 6: dropped
		switch typ {             // parameter sets must parse
		case 7:
			nal = b64(t, sps264B64)
		case 8:
			nal = b64(t, pps264B64)
		}
		p := slice264(1, 50)
		out, _ := f.Filter([][]byte{nal, p})
		kept := slices.ContainsFunc(out, func(b []byte) bool { return bytes.Equal(b, nal) })
		want := want264[typ]
		if kept != (want == "") {
			t.Errorf("type %d: kept=%v, want reason %q", typ, kept, want)
		}
		got := rec.take()
		if want == "" && len(got) != 0 || want != "" && !slices.Equal(got, []string{want}) {
			t.Errorf("type %d: drops %v, want %q", typ, got, want)
		}
		if !slices.ContainsFunc(out, func(b []byte) bool { return bytes.Equal(b, p) }) {
			t.Errorf("type %d: the P slice was lost", typ)
		}
	}
}

func TestFilterH265EveryNALType(t *testing.T) {
	want := func(typ byte) string {
		switch {
		case typ <= 9, typ >= 16 && typ <= 21, typ >= 32 && typ <= 34:
			return ""
		case typ >= 10 && typ <= 15, typ >= 22 && typ <= 31, typ >= 41 && typ <= 47:
			return "reserved"
		case typ == 35:
			return "aud"
		case typ == 36, typ == 37:
			return "end_of_seq"
		case typ == 38:
			return "filler"
		case typ == 39, typ == 40:
			return "sei"
		}
		return "unspecified"
	}
	for typ := range byte(64) {
		rec := &recorder{}
		f := NewVideoFilter(H265, Options{}, nil)
		f.OnDrop = rec.on
		nal := nal265(typ, 20)
		switch typ { // parameter sets must parse
		case 32:
			nal = b64(t, vps265B64)
		case 33:
			nal = b64(t, sps265B64)
		case 34:
			nal = b64(t, pps265B64)
		}
		p := nal265(1, 50)
		out, _ := f.Filter([][]byte{nal, p})
		kept := slices.ContainsFunc(out, func(b []byte) bool { return bytes.Equal(b, nal) })
		w := want(typ)
		if kept != (w == "") {
			t.Errorf("type %d: kept=%v, want reason %q", typ, kept, w)
		}
		got := rec.take()
		if w == "" && len(got) != 0 || w != "" && !slices.Equal(got, []string{w}) {
			t.Errorf("type %d: drops %v, want %q", typ, got, w)
		}
	}
}

func TestFilterMalformedHeaders(t *testing.T) {
	cases := []struct {
		name  string
		codec VideoCodec
		nal   []byte
		want  string
	}{
		{"h264 empty", H264, []byte{}, "malformed"},
		{"h264 forbidden bit on IDR", H264, []byte{0x80 | 0x65, 1, 2, 3}, "forbidden_bit"},
		{"h264 forbidden bit on SPS", H264, []byte{0xE7, 1, 2, 3}, "forbidden_bit"},
		{"h264 header only IDR", H264, []byte{0x65}, "malformed"},
		{"h265 empty", H265, nil, "malformed"},
		{"h265 one byte", H265, []byte{19 << 1}, "malformed"},
		{"h265 forbidden bit", H265, []byte{0x80 | 19<<1, 1, 9, 9}, "forbidden_bit"},
		{"h265 temporal id plus1 zero", H265, []byte{1 << 1, 0, 9, 9}, "malformed"},
		{"h265 layer 1 slice", H265, []byte{1 << 1, 1<<3 | 1, 9, 9}, "extension"},
		{"h265 layer 32 SPS", H265, []byte{33<<1 | 1, 1, 9, 9}, "extension"},
		{"h265 header only", H265, []byte{1 << 1, 1}, "malformed"},
	}
	for _, c := range cases {
		rec := &recorder{}
		f := NewVideoFilter(c.codec, Options{}, nil)
		f.OnDrop = rec.on
		p := slice264(1, 10)
		if c.codec == H265 {
			p = nal265(1, 10)
		}
		out, _ := f.Filter([][]byte{c.nal, p})
		if len(out) != 1 || !bytes.Equal(out[0], p) {
			t.Errorf("%s: out %x", c.name, out)
		}
		if got := rec.take(); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: drops %v, want %q", c.name, got, c.want)
		}
	}
}

func TestFilterOnDropReasonsOncePerNAL(t *testing.T) {
	rec := &recorder{}
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	f := NewVideoFilter(H264, Options{AllowSEIUUIDs: [][16]byte{AxisSignedVideoUUID()}}, nil)
	f.OnDrop = rec.on
	au := [][]byte{
		{0x09, 0xF0},                  // AUD
		sei264(udu(vendorUUID, 1, 2)), // vendor SEI
		sps, pps,
		sei264(udu(AxisSignedVideoUUID(), 7, 7, 7)), // allowed
		{0x0C, 0xFF, 0xFF, 0x80},                    // filler
		slice264(5, 100),
		{0x0B}, // end of stream
	}
	out, key := f.Filter(au)
	if !key {
		t.Error("IDR with SPS/PPS in band is not key")
	}
	want := [][]byte{sps, pps, au[4], au[6]}
	if !sameAU(out, want) {
		t.Errorf("out = %x\nwant  %x", out, want)
	}
	if got := rec.take(); !slices.Equal(got, []string{"aud", "sei", "filler", "end_of_seq"}) {
		t.Errorf("drops %v", got)
	}
}

func TestFilterDoesNotModifyInput(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	f := NewVideoFilter(H264, Options{}, [][]byte{sps, pps})
	au := [][]byte{{0x09, 0xF0}, sei264(udu(vendorUUID)), slice264(5, 300)}
	orig := cloneAU(au)
	out, key := f.Filter(au)
	if !sameAU(au, orig) {
		t.Fatal("Filter modified its input")
	}
	if !key || !sameAU(out, [][]byte{sps, pps, au[2]}) {
		t.Fatalf("out %x key %v", out, key)
	}
}

func TestInjectFromSDPWhenNeverInBand(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	f := NewVideoFilter(H264, Options{}, [][]byte{sps, pps})
	if ps := f.ParamSets(); !sameAU(ps, [][]byte{sps, pps}) {
		t.Fatalf("ParamSets = %x", ps)
	}
	idr := slice264(5, 1000)
	for range 3 {
		out, key := f.Filter([][]byte{idr})
		if !key || !sameAU(out, [][]byte{sps, pps, idr}) {
			t.Fatalf("IDR: out %x key %v", out, key)
		}
		p := slice264(1, 100)
		out, key = f.Filter([][]byte{p})
		if key || !sameAU(out, [][]byte{p}) {
			t.Fatalf("P: out %x key %v", out, key)
		}
	}
}

func TestKeyNeedsParamSets(t *testing.T) {
	f := NewVideoFilter(H264, Options{}, nil)
	idr := slice264(5, 100)
	out, key := f.Filter([][]byte{idr})
	if key || !sameAU(out, [][]byte{idr}) {
		t.Fatalf("IDR without any parameter set: out %x key %v", out, key)
	}
	if f.ParamSets() != nil {
		t.Fatal("ParamSets without any")
	}
	// Only an SPS known: still not decodable.
	sps := b64(t, sps264B64)
	out, key = f.Filter([][]byte{sps, idr})
	if key || !sameAU(out, [][]byte{sps, idr}) {
		t.Fatalf("IDR with SPS only: out %x key %v", out, key)
	}
	if f.ParamSets() != nil {
		t.Fatal("ParamSets with SPS only")
	}
	// PPS now arrives: the SPS is injected from history.
	pps := b64(t, pps264B64)
	out, key = f.Filter([][]byte{pps, idr})
	if !key || !sameAU(out, [][]byte{sps, pps, idr}) {
		t.Fatalf("IDR with PPS: out %x key %v", out, key)
	}
	// Key is never true for a P frame.
	if _, key = f.Filter([][]byte{sps, pps, slice264(1, 9)}); key {
		t.Fatal("P frame with parameter sets is key")
	}
}

func TestInBandWinsAndTracksChanges(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	f := NewVideoFilter(H264, Options{}, [][]byte{sps, pps})
	sps2 := bytes.Clone(sps)
	sps2[3] = 0x28 // "new level"
	pps2 := []byte{0x68, 0xCE, 0x3C, 0x80}
	idr := slice264(5, 100)
	before := f.ParamSets()
	out, key := f.Filter([][]byte{sps2, pps2, idr})
	if !key || !sameAU(out, [][]byte{sps2, pps2, idr}) {
		t.Fatalf("out %x", out)
	}
	if ps := f.ParamSets(); !sameAU(ps, [][]byte{sps2, pps2}) {
		t.Fatalf("ParamSets = %x", ps)
	}
	if !sameAU(before, [][]byte{sps, pps}) {
		t.Fatal("an earlier ParamSets result changed under its holder")
	}
	// the caller's buffers are reused by the depacketizer: history is a copy
	sps2[3] = 0xEE
	out, _ = f.Filter([][]byte{idr})
	if out[0][3] != 0x28 {
		t.Fatal("in-band history aliases the caller's buffer")
	}
	// Reconnect with SDP sets: SDP is fresher than the old in-band ones.
	f.SetSDPParamSets([][]byte{sps, pps})
	if out, _ = f.Filter([][]byte{idr}); !sameAU(out, [][]byte{sps, pps, idr}) {
		t.Fatalf("after reconnect: %x", out)
	}
	// Reconnect without SDP sets: the in-band history stays.
	f.Filter([][]byte{sps2, pps2, idr})
	f.SetSDPParamSets(nil)
	if ps := f.ParamSets(); len(ps) != 2 || !bytes.Equal(ps[1], pps2) {
		t.Fatalf("reconnect without SDP forgot in-band sets: %x", ps)
	}
}

func TestSDPParamSetsValidated(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	// wrong types, empty and forbidden-bit entries are ignored
	f := NewVideoFilter(H264, Options{}, [][]byte{{0x06, 0x05, 0x80}, {}, {0x87, 1}, sps, pps})
	if ps := f.ParamSets(); !sameAU(ps, [][]byte{sps, pps}) {
		t.Fatalf("ParamSets = %x", ps)
	}
	f = NewVideoFilter(H264, Options{}, [][]byte{{0x0C, 0xFF}, pps})
	if out, key := f.Filter([][]byte{slice264(5, 9)}); key || len(out) != 2 {
		t.Fatalf("a filler NAL from SDP was used: %x %v", out, key)
	}
}

func TestParamOnlyAUIsHeldAndMerged(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	idr, p := slice264(5, 100), slice264(1, 10)

	t.Run("together", func(t *testing.T) {
		f := NewVideoFilter(H264, Options{}, nil)
		if out, key := f.Filter([][]byte{{0x09, 0x10}, sps, pps}); out != nil || key {
			t.Fatalf("param-only AU returned %x", out)
		}
		out, key := f.Filter([][]byte{idr})
		if !key || !sameAU(out, [][]byte{sps, pps, idr}) {
			t.Fatalf("out %x key %v", out, key)
		}
		// not repeated on the next AU
		if out, _ = f.Filter([][]byte{p}); !sameAU(out, [][]byte{p}) {
			t.Fatalf("held sets repeated: %x", out)
		}
	})
	t.Run("one per AU", func(t *testing.T) {
		f := NewVideoFilter(H264, Options{}, nil)
		f.Filter([][]byte{sps})
		f.Filter([][]byte{pps})
		out, key := f.Filter([][]byte{idr})
		if !key || !sameAU(out, [][]byte{sps, pps, idr}) {
			t.Fatalf("out %x key %v", out, key)
		}
	})
	t.Run("no duplicates", func(t *testing.T) {
		f := NewVideoFilter(H264, Options{}, nil)
		f.Filter([][]byte{sps, pps})
		sps2 := bytes.Clone(sps)
		sps2[3] = 0x28
		out, key := f.Filter([][]byte{sps2, idr})
		if !key || !sameAU(out, [][]byte{sps2, pps, idr}) {
			t.Fatalf("out %x key %v", out, key)
		}
	})
	t.Run("before a P frame", func(t *testing.T) {
		f := NewVideoFilter(H264, Options{}, nil)
		f.Filter([][]byte{sps, pps})
		out, key := f.Filter([][]byte{p})
		if key || !sameAU(out, [][]byte{sps, pps, p}) {
			t.Fatalf("out %x key %v", out, key)
		}
	})
	t.Run("with allowed SEI", func(t *testing.T) {
		allowed := sei264(udu(AxisSignedVideoUUID(), 1))
		rec := &recorder{}
		f := NewVideoFilter(H264, Options{AllowSEIUUIDs: [][16]byte{AxisSignedVideoUUID()}}, nil)
		f.OnDrop = rec.on
		seiBuf := bytes.Clone(allowed)
		f.Filter([][]byte{sps, pps, seiBuf})
		clear(seiBuf) // the depacketizer reuses its buffers
		for range maxHeldSEI + 2 {
			f.Filter([][]byte{allowed})
		}
		out, key := f.Filter([][]byte{idr})
		want := [][]byte{sps, pps}
		for range maxHeldSEI {
			want = append(want, allowed)
		}
		want = append(want, idr)
		if !key || !sameAU(out, want) {
			t.Fatalf("out %x key %v", out, key)
		}
		if got := rec.take(); !slices.Equal(got, []string{"overflow", "overflow", "overflow"}) {
			t.Fatalf("drops %v", got)
		}
	})
	t.Run("reconnect forgets held", func(t *testing.T) {
		f := NewVideoFilter(H264, Options{}, nil)
		f.Filter([][]byte{sps, pps})
		f.SetSDPParamSets(nil)
		if out, _ := f.Filter([][]byte{p}); !sameAU(out, [][]byte{p}) {
			t.Fatalf("out %x", out)
		}
	})
}

func TestParamSetsFirstInDecodingOrder(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	allowed := sei264(udu(AxisSignedVideoUUID()))
	f := NewVideoFilter(H264, Options{AllowSEIUUIDs: [][16]byte{AxisSignedVideoUUID()}}, nil)
	idr := slice264(5, 10)
	out, key := f.Filter([][]byte{allowed, pps, sps, idr, idr})
	if !key || !sameAU(out, [][]byte{sps, pps, allowed, idr, idr}) {
		t.Fatalf("out %x key %v", out, key)
	}
}

func TestFilterH265Params(t *testing.T) {
	vps, sps, pps := b64(t, vps265B64), b64(t, sps265B64), b64(t, pps265B64)
	for _, irap := range []byte{16, 17, 18, 19, 20, 21} {
		f := NewVideoFilter(H265, Options{}, [][]byte{vps, sps, pps})
		k := nal265(irap, 100)
		out, key := f.Filter([][]byte{k})
		if !key || !sameAU(out, [][]byte{vps, sps, pps, k}) {
			t.Fatalf("IRAP %d: out %x key %v", irap, out, key)
		}
	}
	f := NewVideoFilter(H265, Options{}, [][]byte{sps, pps}) // no VPS in SDP
	k := nal265(19, 100)
	if _, key := f.Filter([][]byte{k}); key {
		t.Fatal("key without VPS")
	}
	if f.ParamSets() != nil {
		t.Fatal("ParamSets without VPS")
	}
	// param-only AU (marker bit on the PPS) held, then merged
	if out, _ := f.Filter([][]byte{vps, sps, pps}); out != nil {
		t.Fatal("param-only AU not held")
	}
	out, key := f.Filter([][]byte{k})
	if !key || !sameAU(out, [][]byte{vps, sps, pps, k}) {
		t.Fatalf("out %x key %v", out, key)
	}
	if ps := f.ParamSets(); !sameAU(ps, [][]byte{vps, sps, pps}) {
		t.Fatalf("ParamSets %x", ps)
	}
	// trailing picture: no injection, not key
	tr := nal265(1, 50)
	if out, key = f.Filter([][]byte{tr}); key || !sameAU(out, [][]byte{tr}) {
		t.Fatalf("TRAIL: out %x key %v", out, key)
	}
	// prefix and suffix SEI under the allow-list
	f = NewVideoFilter(H265, Options{AllowSEIUUIDs: [][16]byte{AxisSignedVideoUUID()}}, [][]byte{vps, sps, pps})
	pre := sei265(false, udu(AxisSignedVideoUUID(), 1, 2))
	suf := sei265(true, udu(AxisSignedVideoUUID(), 3))
	bad := sei265(true, udu(vendorUUID, 3))
	out, _ = f.Filter([][]byte{pre, tr, suf, bad})
	if !sameAU(out, [][]byte{pre, tr, suf}) {
		t.Fatalf("SEI: out %x", out)
	}
}

func TestUnknownCodecDropsEverything(t *testing.T) {
	rec := &recorder{}
	f := NewVideoFilter(VideoCodec(9), Options{}, nil)
	f.OnDrop = rec.on
	if out, key := f.Filter([][]byte{slice264(5, 10)}); out != nil || key {
		t.Fatalf("out %x", out)
	}
	if got := rec.take(); !slices.Equal(got, []string{"unspecified"}) {
		t.Fatalf("drops %v", got)
	}
}

func TestNilOnDrop(t *testing.T) {
	f := NewVideoFilter(H264, Options{}, nil)
	if out, _ := f.Filter([][]byte{{0x09, 0x10}, nil}); out != nil {
		t.Fatalf("out %x", out)
	}
}
