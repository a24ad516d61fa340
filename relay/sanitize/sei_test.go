package sanitize

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestSEIRule(t *testing.T) {
	axis := AxisSignedVideoUUID()
	epbUUID := [16]byte{0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0} // needs emulation prevention
	allow := [][16]byte{axis, epbUUID}
	big := make([]byte, 600)
	for i := range big {
		big[i] = byte(i)
	}
	ffType := append([]byte{0x06, 0xFF, 0xFF, 0x05, 16}, axis[:]...) // type 255+255+5 = 515
	ffType = append(ffType, 0x80)
	lying := append([]byte{0x06, 0x05, 40}, axis[:]...) // claims 40 bytes, has 16
	lying = append(lying, 0x80)
	hugeSize := append([]byte{0x06, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x10}, axis[:]...)
	hugeSize = append(hugeSize, 0x80)
	noStop := sei264(udu(axis, 1))
	noStop = noStop[:len(noStop)-1]
	trailingZeros := append(sei264(udu(axis, 1)), 0, 0)

	cases := []struct {
		name string
		nal  []byte
		keep bool
		drop string // the filter's reason; "" means "sei"; "-" skips the filter
	}{
		{"allowed UUID", sei264(udu(axis, 1, 2, 3)), true, ""},
		{"allowed UUID, no user data", sei264(udu(axis)), true, ""},
		{"allowed UUID, 600 bytes (0xFF size)", sei264(udu(axis, big...)), true, ""},
		{"two allowed messages", sei264(udu(axis, 1), udu(epbUUID, 2)), true, ""},
		{"UUID with emulation prevention", sei264(udu(epbUUID, 0, 0, 0, 0)), true, ""},
		{"trailing zero bytes", trailingZeros, true, ""},
		{"unknown UUID", sei264(udu(vendorUUID, 1, 2, 3)), false, ""},
		{"allowed then unknown UUID", sei264(udu(axis, 1), udu(vendorUUID, 2)), false, ""},
		{"allowed + registered user data (4)", sei264(udu(axis, 1), seiMsg{typ: 4, payload: []byte{0xB5, 0, 0x31}}), false, ""},
		{"allowed + recovery point (6)", sei264(udu(axis), seiMsg{typ: 6, payload: []byte{0x84}}), false, ""},
		{"payload type 128", sei264(seiMsg{typ: 128, payload: []byte("HIK private")}), false, ""},
		{"payload type 240", sei264(seiMsg{typ: 240, payload: []byte{1, 2, 3}}), false, ""},
		{"allowed + type 240", sei264(udu(axis), seiMsg{typ: 240, payload: []byte{1}}), false, ""},
		{"0xFF 0xFF 0x05 type", ffType, false, ""},
		{"user data shorter than a UUID", sei264(seiMsg{typ: 5, payload: axis[:15]}), false, ""},
		{"zero-size message", sei264(udu(axis), seiMsg{typ: 5}), false, ""},
		{"size beyond the end", lying, false, ""},
		{"huge size", hugeSize, false, ""},
		{"truncated UUID", sei264(udu(axis))[:10], false, ""},
		{"no trailing bits", noStop, false, ""},
		{"no messages", []byte{0x06, 0x80}, false, ""},
		{"header only", []byte{0x06}, false, "malformed"},
		{"not an SEI", slice264(5, 30), false, "-"},
	}
	for _, c := range cases {
		if got := SEIAllowed(H264, c.nal, allow); got != c.keep {
			t.Errorf("%s: SEIAllowed = %v", c.name, got)
		}
		if c.drop == "-" {
			continue
		}
		if c.drop == "" {
			c.drop = "sei"
		}
		// through the filter: kept untouched or dropped as "sei"
		rec := &recorder{}
		f := NewVideoFilter(H264, Options{AllowSEIUUIDs: allow}, nil)
		f.OnDrop = rec.on
		p := slice264(1, 10)
		out, _ := f.Filter([][]byte{c.nal, p})
		if c.keep {
			if len(out) != 2 || &out[0][0] != &c.nal[0] || len(out[0]) != len(c.nal) {
				t.Errorf("%s: not kept as is: %x", c.name, out)
			}
		} else if len(out) != 1 || !slices.Equal(rec.take(), []string{c.drop}) {
			t.Errorf("%s: not dropped: %x", c.name, out)
		}
		// an empty allow-list keeps nothing
		if SEIAllowed(H264, c.nal, nil) {
			t.Errorf("%s: allowed with an empty allow-list", c.name)
		}
	}
}

func TestParseSEI(t *testing.T) {
	axis := AxisSignedVideoUUID()
	epbUUID := [16]byte{0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}
	nal := sei264(udu(epbUUID, 0, 0, 0), seiMsg{typ: 600, payload: make([]byte, 300)}, seiMsg{typ: 1, payload: []byte{9}}, udu(axis))
	if !bytes.Contains(nal, []byte{0, 0, 3, 1}) {
		t.Fatal("test NAL has no emulation prevention")
	}
	msgs, err := ParseSEI(H264, nal)
	if err != nil {
		t.Fatal(err)
	}
	want := []SEIMessage{{Type: 5, Size: 19, UUID: epbUUID}, {Type: 600, Size: 300}, {Type: 1, Size: 1}, {Type: 5, Size: 16, UUID: axis}}
	if !slices.Equal(msgs, want) {
		t.Fatalf("got %+v\nwant %+v", msgs, want)
	}

	msgs, err = ParseSEI(H265, sei265(true, seiMsg{typ: 0xFF + 0xFF + 5, payload: []byte{1, 2}}))
	if err != nil || !slices.Equal(msgs, []SEIMessage{{Type: 515, Size: 2}}) {
		t.Fatalf("H.265: %+v %v", msgs, err)
	}

	errCases := []struct {
		codec VideoCodec
		nal   []byte
		err   error
	}{
		{H264, slice264(1, 5), ErrSEIHeader},
		{H264, []byte{0x86, 5, 0, 0x80}, ErrSEIHeader},
		{H265, []byte{39 << 1}, ErrSEIHeader},
		{H265, nal, ErrSEIHeader}, // H.264 SEI given as H.265
		{VideoCodec(0), nal, ErrSEIHeader},
		{H264, []byte{0x06, 5, 1, 1}, ErrSEITrailing},
		{H264, []byte{0x06, 5, 1, 0x80}, ErrSEITruncated},
		{H264, []byte{0x06, 0xFF, 0x80}, ErrSEITruncated}, // type never ends
		{H264, []byte{0x06, 0x05, 0xFF, 0x80}, ErrSEITruncated},
		{H264, []byte{0x06, 0x80}, ErrSEITruncated},
	}
	for i, c := range errCases {
		if _, err := ParseSEI(c.codec, c.nal); !errors.Is(err, c.err) {
			t.Errorf("case %d %x: err %v, want %v", i, c.nal, err, c.err)
		}
	}
	// 06 | 00 00 03 | 80: the RBSP is 00 00 (type 0, size 0): one empty
	// message, well formed (and not allowed).
	msgs, err = ParseSEI(H264, []byte{0x06, 0, 0, 3, 0x80})
	if err != nil || !slices.Equal(msgs, []SEIMessage{{Type: 0, Size: 0}}) {
		t.Fatalf("%+v %v", msgs, err)
	}
}

func TestSEIAllowedDoesNotAllocate(t *testing.T) {
	nal := sei264(udu(AxisSignedVideoUUID(), make([]byte, 2000)...), udu(AxisSignedVideoUUID()))
	allow := [][16]byte{AxisSignedVideoUUID()}
	if n := testing.AllocsPerRun(100, func() {
		if !SEIAllowed(H264, nal, allow) {
			t.Fatal("not allowed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
