package sanitize

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"cordon/democam"
	"cordon/internal/epb"
	"cordon/internal/testtool"
)

var vendorTail = []byte("SN:DS-2CD2143G0-I20190101AACH123456789;MAC=44:19:b6:01:02:03")

// encoderCases are encoder settings that exercise the parameter-set
// syntax: profiles, chroma formats, bit depths, scaling matrices, VUI with
// aspect ratio, colour and HRD, interlace, cropping, HRD in the VPS.
var encoderCases = []struct {
	name, codec string
	args        []string
}{
	{"x264 baseline", "h264", []string{"-c:v", "libx264", "-profile:v", "baseline"}},
	{"x264 main hrd", "h264", []string{"-c:v", "libx264", "-profile:v", "main", "-x264-params", "nal-hrd=cbr:bitrate=300:vbv-maxrate=300:vbv-bufsize=600"}},
	{"x264 high cqm", "h264", []string{"-c:v", "libx264", "-profile:v", "high", "-x264-params", "cqm=jvt"}},
	{"x264 high 4:4:4 cqm", "h264", []string{"-c:v", "libx264", "-pix_fmt", "yuv444p", "-profile:v", "high444", "-x264-params", "cqm=jvt"}},
	{"x264 high 4:2:2 10-bit", "h264", []string{"-c:v", "libx264", "-pix_fmt", "yuv422p10le", "-profile:v", "high422"}},
	{"x264 interlaced sar colour crop", "h264", []string{"-c:v", "libx264", "-flags", "+ildct+ilme", "-x264-params", "interlaced=1",
		"-vf", "scale=100:72,setsar=33/17", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"}},
	{"x264 b-frames weighted", "h264", []string{"-c:v", "libx264", "-bf", "3", "-x264-params", "weightp=2:b-pyramid=normal"}},
	{"x265 main", "hevc", []string{"-c:v", "libx265"}},
	{"x265 hrd", "hevc", []string{"-c:v", "libx265", "-x265-params", "hrd=1:vbv-maxrate=300:vbv-bufsize=600:log-level=none"}},
	{"x265 main10 scaling lists", "hevc", []string{"-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params", "scaling-list=default:log-level=none"}},
	{"x265 4:4:4 sar colour", "hevc", []string{"-c:v", "libx265", "-pix_fmt", "yuv444p", "-vf", "scale=100:70,setsar=33/17",
		"-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-x265-params", "log-level=none"}},
	{"x265 b-frames rps", "hevc", []string{"-c:v", "libx265", "-x265-params", "bframes=4:b-pyramid=1:keyint=30:log-level=none"}},
}

// paramSetsOf returns the parameter sets of an Annex-B stream.
func paramSetsOf(codec VideoCodec, stream []byte) [][]byte {
	var out [][]byte
	for _, n := range democam.SplitAnnexB(stream) {
		if k, _ := classify(codec, n); k.paramSlot() >= 0 {
			out = append(out, n)
		}
	}
	return out
}

// checkTrims: a clean parameter set comes back unchanged; with a vendor
// tail appended it comes back clean.
func checkTrims(t *testing.T, codec VideoCodec, sets [][]byte) {
	t.Helper()
	var sps []byte
	for _, ps := range sets {
		if codec == H264 && ps[0]&0x1f == 7 {
			sps = ps
		}
		got, err := TrimParamSet(codec, ps, sps)
		if err != nil || !bytes.Equal(got, ps) {
			t.Fatalf("clean %x: got %x, %v", ps, got, err)
		}
		for _, tail := range [][]byte{vendorTail, {0x80}, {0x00, 0x00, 0x01}, {0xff, 0xff, 0xff, 0xff}} {
			dirty := append(bytes.Clone(ps), tail...)
			got, err := TrimParamSet(codec, dirty, sps)
			if err != nil || !bytes.Equal(got, ps) {
				t.Fatalf("%x with tail %x: got %x, %v", ps, tail, got, err)
			}
		}
	}
}

func TestTrimEncoderParamSets(t *testing.T) {
	ffmpeg := testtool.Require(t, "ffmpeg")
	dir := t.TempDir()
	for _, tc := range encoderCases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("%s.%s", tc.name, tc.codec))
			args := append([]string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=15:duration=1"}, tc.args...)
			args = append(args, "-frames:v", "8", "-f", tc.codec, "-y", out)
			if b, err := exec.Command(ffmpeg, args...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, b)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			codec := H264
			if tc.codec == "hevc" {
				codec = H265
			}
			sets := paramSetsOf(codec, data)
			if len(sets) < 2 {
				t.Fatalf("%d parameter sets in the stream", len(sets))
			}
			checkTrims(t, codec, sets)
		})
	}
}

// TestTrimDemoClips: the clips the demo cameras play (made by
// democam/clip/make-clip.sh) pass unchanged.
func TestTrimDemoClips(t *testing.T) {
	for _, name := range []democam.ClipName{democam.ClipMain, democam.ClipSliced, democam.ClipBFrames, democam.ClipH265} {
		c, err := democam.LoadClip(name)
		if err != nil {
			t.Fatal(err)
		}
		codec := H264
		sets := [][]byte{c.SPS, c.PPS}
		if c.Codec == democam.CodecH265 {
			codec, sets = H265, [][]byte{c.VPS, c.SPS, c.PPS}
		}
		checkTrims(t, codec, sets)
	}
	for _, s := range []string{sps264B64, pps264B64} {
		checkTrims(t, H264, [][]byte{b64(t, s)})
	}
	checkTrims(t, H265, [][]byte{b64(t, vps265B64), b64(t, sps265B64), b64(t, pps265B64)})
}

// rebuild returns the NAL with bits [0, at) of its RBSP, then extra bits,
// then arbitrary data and trailing bits: an extension a hostile encoder
// could hide data in.
func withExtension(t *testing.T, codec VideoCodec, nal []byte, walk func(*bitReader) psLayout, flags []bool) []byte {
	t.Helper()
	hl := headerLen(codec)
	rbsp := epb.Remove(nal[hl:])
	lay := walk(&bitReader{b: rbsp})
	if lay.insert != nil {
		t.Fatal("test parameter set already has an extension")
	}
	// the extension flag block starts one bit before the end for a set
	// without extensions: the 0 of *_extension_(present_)flag
	at := lay.keep - 1
	w := bitWriter{}
	w.copyBits(rbsp, 0, at)
	for _, f := range flags {
		w.bit(f)
	}
	for _, b := range []byte("covert channel: extension data flags") {
		for k := 7; k >= 0; k-- {
			w.bit(b>>k&1 == 1)
		}
	}
	w.trailing()
	return epb.Append(bytes.Clone(nal[:hl]), w.b)
}

// TestTrimH265Extensions: data in vps/sps/pps extension data is dropped
// (the flags rewritten to 0); a range extension is kept.
func TestTrimH265Extensions(t *testing.T) {
	vps, sps, pps := b64(t, vps265B64), b64(t, sps265B64), b64(t, pps265B64)
	for _, tc := range []struct {
		nal   []byte
		walk  func(*bitReader) psLayout
		flags []bool
	}{
		{vps, walkH265VPS, []bool{true}},
		{sps, walkH265SPS, []bool{true, false, false, false, false, true, false, true, true}},
		{pps, walkH265PPS, []bool{true, false, true, false, false, false, false, false, false}},
	} {
		dirty := withExtension(t, H265, tc.nal, tc.walk, tc.flags)
		got, err := TrimParamSet(H265, dirty, nil)
		if err != nil || !bytes.Equal(got, tc.nal) {
			t.Fatalf("%x: got %x, %v; want %x", dirty, got, err, tc.nal)
		}
	}
	// a range extension (9 flags) survives; the extension data after it
	// (sps_extension_4bits set) does not
	withRange := withExtension(t, H265, sps, walkH265SPS, []bool{true, true, false, false, false, true, false, false, false,
		true, false, true, false, false, false, false, false, false})
	got, err := TrimParamSet(H265, withRange, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &bitReader{b: epb.Remove(got[2:])}
	lay := walkH265SPS(r)
	if r.err != nil || lay.insert != nil {
		t.Fatalf("trimmed SPS %x does not parse cleanly", got)
	}
	if _, ok := trailingAt(epb.Remove(got[2:]), lay.keep); !ok || bytes.Contains(got, []byte("covert")) {
		t.Fatalf("trimmed SPS %x", got)
	}
}

// TestTrimH264PPSAmbiguity: an H.264 PPS with vendor bytes after its
// trailing bits makes more_rbsp_data() true; the SPS's profile decides.
func TestTrimH264PPSAmbiguity(t *testing.T) {
	c, err := democam.LoadClip(democam.ClipMain) // Main profile: no 8x8 fields
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range [][]byte{vendorTail, {0xc0}, {0x80, 0x00}} {
		got, err := TrimParamSet(H264, append(bytes.Clone(c.PPS), tail...), c.SPS)
		if err != nil || !bytes.Equal(got, c.PPS) {
			t.Fatalf("main-profile PPS with tail %x: got %x, %v", tail, got, err)
		}
	}
	// High profile with transform_8x8_mode_flag: the democam B-frame clip
	hc, err := democam.LoadClip(democam.ClipBFrames)
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range [][]byte{vendorTail, {0xc0}} {
		got, err := TrimParamSet(H264, append(bytes.Clone(hc.PPS), tail...), hc.SPS)
		if err != nil || !bytes.Equal(got, hc.PPS) {
			t.Fatalf("high-profile PPS %x with tail %x: got %x, %v", hc.PPS, tail, got, err)
		}
	}
}

// TestFilterTrimsParamSets: in band (the AU and ParamSets, which the SDP
// the re-serve generates is built from) and from the SDP.
func TestFilterTrimsParamSets(t *testing.T) {
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	dirtySPS, dirtyPPS := append(bytes.Clone(sps), vendorTail...), append(bytes.Clone(pps), vendorTail...)
	f := NewVideoFilter(H264, Options{}, [][]byte{dirtySPS, dirtyPPS})
	if ps := f.ParamSets(); !sameAU(ps, [][]byte{sps, pps}) {
		t.Fatalf("SDP parameter sets %x", ps)
	}
	idr := slice264(5, 100)
	out, key := f.Filter([][]byte{dirtySPS, dirtyPPS, idr})
	if !key || !sameAU(out, [][]byte{sps, pps, idr}) {
		t.Fatalf("in band: %x", out)
	}
	// held (marker-bit) parameter sets too
	f.Filter([][]byte{dirtySPS, dirtyPPS})
	if out, _ := f.Filter([][]byte{idr}); !sameAU(out, [][]byte{sps, pps, idr}) {
		t.Fatalf("held: %x", out)
	}
	// a parameter set that does not parse is dropped
	rec := &recorder{}
	f.OnDrop = rec.on
	out, _ = f.Filter([][]byte{{0x67, 0x64}, idr})
	if got := rec.take(); len(got) != 1 || got[0] != DropMalformed || !sameAU(out, [][]byte{sps, pps, idr}) {
		t.Fatalf("truncated SPS: drops %v out %x", got, out)
	}
}
