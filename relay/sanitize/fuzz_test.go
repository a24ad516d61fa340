package sanitize

import (
	"bytes"
	"slices"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// fuzzInput turns fuzz bytes into an allow-list, SDP choice and a sequence
// of access units. Layout: flags byte (bit 0: allow the Axis UUID; bit 1:
// allow the next 16 bytes as a UUID; bit 2: give SDP parameter sets), then
// records: a length byte L; L == 0 ends the current access unit, otherwise
// the next L bytes (fewer at the end) are one NAL unit.
func fuzzInput(data []byte) (allow [][16]byte, sdp bool, aus [][][]byte) {
	if len(data) == 0 {
		return nil, false, nil
	}
	flags := data[0]
	data = data[1:]
	if flags&1 != 0 {
		allow = append(allow, AxisSignedVideoUUID())
	}
	if flags&2 != 0 && len(data) >= 16 {
		allow = append(allow, [16]byte(data[:16]))
		data = data[16:]
	}
	var au [][]byte
	for len(data) > 0 {
		l := int(data[0])
		data = data[1:]
		if l == 0 {
			aus = append(aus, au)
			au = nil
			continue
		}
		l = min(l, len(data))
		au = append(au, data[:l])
		data = data[l:]
	}
	if au != nil {
		aus = append(aus, au)
	}
	return allow, flags&4 != 0, aus
}

func fuzzFilter(t *testing.T, codec VideoCodec, data []byte, sdpSets [][]byte) {
	allow, withSDP, aus := fuzzInput(data)
	if !withSDP {
		sdpSets = nil
	}
	f := NewVideoFilter(codec, Options{AllowSEIUUIDs: allow}, sdpSets)
	drops := 0
	f.OnDrop = func(reason string) {
		if !slices.Contains(allReasons, reason) {
			t.Fatalf("reason %q not in the fixed set", reason)
		}
		drops++
	}
	var pending [][]byte // input NAL units since the last non-nil output (held ones come from there)
	for _, au := range aus {
		orig := cloneAU(au)
		drops = 0
		out, key := f.Filter(au)
		if !sameAU(au, orig) {
			t.Fatal("Filter modified its input")
		}
		pending = append(pending, orig...)
		if out == nil {
			if key {
				t.Fatal("key without output")
			}
			continue
		}
		if drops > len(au) {
			t.Fatalf("%d drops for %d NAL units", drops, len(au))
		}
		inBytes, outBytes := 0, 0
		for _, b := range pending {
			inBytes += len(b)
		}
		var sawParam [numPS]bool
		keySlice, seenOther := false, false
		for i, nal := range out {
			k, reason := classify(codec, nal)
			if k == kindDrop {
				t.Fatalf("output NAL %d %x is not allowed (%s)", i, nal, reason)
			}
			if k == kindSEI && !SEIAllowed(codec, nal, allow) {
				t.Fatalf("output SEI %x breaks the rule", nal)
			}
			if s := k.paramSlot(); s >= 0 {
				if seenOther {
					t.Fatalf("parameter set after other NAL units: %x", out)
				}
				sawParam[s] = true
				continue // may be injected
			}
			seenOther = true
			if k == kindKey {
				keySlice = true
			}
			if !slices.ContainsFunc(pending, func(b []byte) bool { return bytes.Equal(b, nal) }) {
				t.Fatalf("output NAL %x came from nowhere", nal)
			}
			outBytes += len(nal)
		}
		if outBytes > inBytes {
			t.Fatalf("output (%d bytes besides parameter sets) larger than input (%d)", outBytes, inBytes)
		}
		if key && (!keySlice || !sawParam[psSPS] || !sawParam[psPPS] || codec == H265 && !sawParam[psVPS]) {
			t.Fatalf("key without a keyframe slice and every parameter set: %x", out)
		}
		pending = pending[:0]
	}
	if ps := f.ParamSets(); ps != nil {
		for _, p := range ps {
			if k, _ := classify(codec, p); k.paramSlot() < 0 {
				t.Fatalf("ParamSets holds %x", p)
			}
		}
	}
}

var allReasons = []string{DropSEI, DropAUD, DropEndOfSeq, DropFiller, DropParamExt, DropExtension,
	DropPartition, DropReserved, DropUnspecified, DropForbiddenBit, DropMalformed, DropOverflow}

func FuzzFilterH264(f *testing.F) {
	sps, pps := b64(f, sps264B64), b64(f, pps264B64)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFilter(t, H264, data, [][]byte{sps, pps})
	})
}

func FuzzFilterH265(f *testing.F) {
	vps, sps, pps := b64(f, vps265B64), b64(f, sps265B64), b64(f, pps265B64)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFilter(t, H265, data, [][]byte{vps, sps, pps})
	})
}

// refParseSEI is a second, plain implementation of the SEI syntax for the
// differential fuzz test: mediacommon removes emulation prevention into a
// new buffer, then the messages are read from it.
func refParseSEI(codec VideoCodec, nal []byte) ([]SEIMessage, bool) {
	hl := 1
	switch {
	case codec == H264 && len(nal) >= 1 && nal[0]&0x80 == 0 && nal[0]&0x1f == 6:
	case codec == H265 && len(nal) >= 2 && nal[0]&0x80 == 0 && (nal[0]>>1 == 39 || nal[0]>>1 == 40):
		hl = 2
	default:
		return nil, false
	}
	end := len(nal)
	for end > hl && nal[end-1] == 0 {
		end--
	}
	if end <= hl || nal[end-1] != 0x80 {
		return nil, false
	}
	rbsp := h264.EmulationPreventionRemove(nal[hl : end-1])
	if len(rbsp) == 0 {
		return nil, false
	}
	var msgs []SEIMessage
	p := 0
	read := func() (int, bool) {
		v := 0
		for p < len(rbsp) {
			c := rbsp[p]
			p++
			v += int(c)
			if c != 0xFF {
				return v, true
			}
		}
		return 0, false
	}
	for p < len(rbsp) {
		typ, ok := read()
		if !ok {
			return nil, false
		}
		size, ok := read()
		if !ok || size > len(rbsp)-p {
			return nil, false
		}
		m := SEIMessage{Type: typ, Size: size}
		if typ == 5 && size >= 16 {
			copy(m.UUID[:], rbsp[p:])
		}
		p += size
		msgs = append(msgs, m)
	}
	return msgs, true
}

func FuzzParseSEI(f *testing.F) {
	f.Fuzz(func(t *testing.T, h265 bool, nal []byte, uuid []byte) {
		codec := H264
		if h265 {
			codec = H265
		}
		var allow [][16]byte
		if len(uuid) >= 16 {
			allow = append(allow, [16]byte(uuid))
		}
		allow = append(allow, AxisSignedVideoUUID())
		orig := bytes.Clone(nal)
		msgs, err := ParseSEI(codec, nal)
		ref, ok := refParseSEI(codec, nal)
		if (err == nil) != ok {
			t.Fatalf("ParseSEI err %v, reference ok %v", err, ok)
		}
		if ok && !slices.Equal(msgs, ref) {
			t.Fatalf("ParseSEI %+v\nreference %+v", msgs, ref)
		}
		want := ok && len(ref) > 0
		for _, m := range ref {
			if m.Type != 5 || m.Size < 16 || !slices.Contains(allow, m.UUID) {
				want = false
			}
		}
		if got := SEIAllowed(codec, nal, allow); got != want {
			t.Fatalf("SEIAllowed %v, want %v (messages %+v)", got, want, ref)
		}
		if !bytes.Equal(nal, orig) {
			t.Fatal("input modified")
		}
	})
}
