package epb

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestAppendRemove(t *testing.T) {
	for _, c := range []struct{ rbsp, nal []byte }{
		{[]byte{}, []byte{}},
		{[]byte{1, 2, 3}, []byte{1, 2, 3}},
		{[]byte{0, 0, 0}, []byte{0, 0, 3, 0}},
		{[]byte{0, 0, 1}, []byte{0, 0, 3, 1}},
		{[]byte{0, 0, 3, 0, 0, 2}, []byte{0, 0, 3, 3, 0, 0, 3, 2}},
		{[]byte{0, 0, 4}, []byte{0, 0, 4}},
		{[]byte{0, 0, 0, 0, 0}, []byte{0, 0, 3, 0, 0, 3, 0}},
	} {
		if got := Append(nil, c.rbsp); !bytes.Equal(got, c.nal) {
			t.Errorf("Append(% x) = % x, want % x", c.rbsp, got, c.nal)
		}
		if got := Remove(c.nal); !bytes.Equal(got, c.rbsp) {
			t.Errorf("Remove(% x) = % x, want % x", c.nal, got, c.rbsp)
		}
	}
	if got := Append([]byte{0x67}, []byte{0, 0, 1}); !bytes.Equal(got, []byte{0x67, 0, 0, 3, 1}) {
		t.Errorf("Append does not append to dst: % x", got)
	}
}

// FuzzRoundTrip: whatever the RBSP, its escaped form has no start-code
// prefix, unescapes to it again, and agrees with mediacommon's independent
// EmulationPreventionRemove; Remove never panics on any payload.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 3})
	f.Add([]byte{0x65, 0, 0, 3, 0, 0, 3, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Remove(b)
		nal := Append(nil, b)
		if bytes.Contains(nal, []byte{0, 0, 1}) || bytes.Contains(nal, []byte{0, 0, 0}) || bytes.Contains(nal, []byte{0, 0, 2}) {
			t.Fatalf("escaped % x still holds a forbidden sequence: % x", b, nal)
		}
		if got := Remove(nal); !bytes.Equal(got, b) {
			t.Fatalf("round trip of % x gave % x", b, got)
		}
		if len(nal) == 0 || nal[len(nal)-1] != 0 { // mediacommon leaves a trailing 00 00 03 alone; RBSPs never end in 00
			if got := h264.EmulationPreventionRemove(nal); !bytes.Equal(got, b) {
				t.Fatalf("mediacommon unescapes % x to % x, not % x", nal, got, b)
			}
		}
	})
}
