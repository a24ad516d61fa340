package sanitize

import (
	"bytes"
	"testing"

	"cordon/internal/epb"
)

// FuzzTrimParamSet feeds arbitrary parameter sets to TrimParamSet. The
// first byte picks the codec (bit 0: H.265) and whether the second part,
// after a 0xff 0xfe separator, is the H.264 SPS in force. Nothing may
// panic; a result is a parameter set of the same type that ends exactly
// at its rbsp_trailing_bits and trims to itself.
func FuzzTrimParamSet(f *testing.F) {
	f.Add(append([]byte{0}, b64(f, sps264B64)...))
	f.Add(append(append([]byte{0}, b64(f, pps264B64)...), append([]byte{0xff, 0xfe}, b64(f, sps264B64)...)...))
	f.Add(append([]byte{1}, b64(f, vps265B64)...))
	f.Add(append([]byte{1}, b64(f, sps265B64)...))
	f.Add(append(append([]byte{1}, b64(f, pps265B64)...), vendorTail...))
	f.Add(append(append([]byte{0}, b64(f, sps264B64)...), vendorTail...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		codec := H264
		if data[0]&1 == 1 {
			codec = H265
		}
		nal, sps := data[1:], []byte(nil)
		if i := bytes.Index(nal, []byte{0xff, 0xfe}); i >= 0 {
			nal, sps = nal[:i], nal[i+2:]
		}
		in := bytes.Clone(nal)
		out, err := TrimParamSet(codec, nal, sps)
		if !bytes.Equal(in, nal) {
			t.Fatal("input modified")
		}
		if err != nil {
			return
		}
		kIn, _ := classify(codec, nal)
		kOut, _ := classify(codec, out)
		if kIn != kOut {
			t.Fatalf("type changed: %x -> %x", nal, out)
		}
		rbsp := epb.Remove(out[headerLen(codec):])
		if n, ok := trailingAt(rbsp, lastOne(rbsp)); !ok || n != len(rbsp) {
			t.Fatalf("%x -> %x does not end at its trailing bits", nal, out)
		}
		again, err := TrimParamSet(codec, out, sps)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("%x -> %x -> %x (%v): not idempotent", nal, out, again, err)
		}
	})
}
