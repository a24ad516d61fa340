package sanitize

import (
	"bytes"
	"testing"
)

func TestCleanOpus(t *testing.T) {
	frames := []byte{0xaa, 0xbb, 0xcc, 0xdd}
	long := bytes.Repeat([]byte("MAC=44:19:b6:01:02:03 "), 20) // 440 bytes: a 255-continued length
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		err  bool
	}{
		{"code 0", []byte{0x78, 1, 2, 3}, []byte{0x78, 1, 2, 3}, false},
		{"code 3 no padding", []byte{0x7b, 0x02, 0xaa, 0xbb}, []byte{0x7b, 0x02, 0xaa, 0xbb}, false},
		{"code 3 CBR padded", append(append([]byte{0x7b, 0x42, 5}, frames...), []byte("vendr")...), append([]byte{0x7b, 0x02}, frames...), false},
		{"code 3 VBR padded", append(append([]byte{0x7b, 0xc2, 3, 1}, frames...), 'x', 'y', 'z'), append([]byte{0x7b, 0x82, 1}, frames...), false},
		{"long padding", append(append([]byte{0x7b, 0x42, 255, byte(len(long) - 254)}, frames...), long...), append([]byte{0x7b, 0x02}, frames...), false},
		{"padding past the end", []byte{0x7b, 0x42, 200, 1, 2}, nil, true},
		{"padding length cut", []byte{0x7b, 0x42, 255}, nil, true},
	} {
		got, err := CleanOpus(tc.in)
		if (err != nil) != tc.err || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %x, %v; want %x", tc.name, got, err, tc.want)
		}
		if err == nil && bytes.Contains(got, []byte("MAC=")) {
			t.Errorf("%s: padding survived", tc.name)
		}
	}
}

func FuzzCleanOpus(f *testing.F) {
	f.Add([]byte{0x7b, 0xc2, 3, 1, 0xaa, 0xbb, 0xcc, 0xdd, 'x', 'y', 'z'})
	f.Add([]byte{0x7b, 0x42, 255, 10, 1, 2})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		in := bytes.Clone(pkt)
		out, err := CleanOpus(pkt)
		if !bytes.Equal(in, pkt) {
			t.Fatal("input modified")
		}
		if err != nil {
			return
		}
		if len(out) > len(pkt) {
			t.Fatal("grew")
		}
		if len(out) >= 2 && out[0]&3 == 3 && out[1]&0x40 != 0 {
			t.Fatal("padding flag left set")
		}
		if again, err := CleanOpus(out); err != nil || !bytes.Equal(again, out) {
			t.Fatal("not idempotent")
		}
	})
}
