package democam

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"cordon/internal/testtool"
)

// cropFrame returns the visible w x h part of a coded-size I420 frame.
func cropFrame(e *pcmEncoder, f yuvFrame) []byte {
	y, cb, cr := e.planes(f)
	var out []byte
	for r := 0; r < e.h; r++ {
		out = append(out, y[r*e.codedW():r*e.codedW()+e.w]...)
	}
	for _, p := range [][]byte{cb, cr} {
		for r := 0; r < e.h/2; r++ {
			out = append(out, p[r*e.codedW()/2:r*e.codedW()/2+e.w/2]...)
		}
	}
	return out
}

func annexB(aus [][][]byte) []byte {
	var b bytes.Buffer
	for _, au := range aus {
		for _, n := range au {
			b.Write([]byte{0, 0, 0, 1})
			b.Write(n)
		}
	}
	return b.Bytes()
}

// ffmpegDecode decodes an Annex-B H.264 stream to raw I420 frames.
func ffmpegDecode(t *testing.T, stream []byte) []byte {
	t.Helper()
	ff := testtool.Require(t, "ffmpeg")
	in := filepath.Join(t.TempDir(), "in.h264")
	if err := os.WriteFile(in, stream, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ff, "-v", "error", "-xerror", "-err_detect", "explode", "-f", "h264", "-i", in, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("ffmpeg: %v: %s", err, errb.String())
	}
	return out.Bytes()
}

// The decoder's pictures equal the encoder's input bit for bit: IDR of
// noise (emulation prevention everywhere), a P frame changing a few
// macroblocks (skip runs before, between and after), an all-skip P frame,
// a P frame changing only the last macroblock, and a second IDR.
func TestPCMEncoderExactWithFFmpeg(t *testing.T) {
	e, err := newPCMEncoder(320, 180, 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	f := e.newFrame()
	for i := range f {
		f[i] = byte(rng.IntN(256))
	}
	for i := 0; i < 40; i++ { // zero runs that need emulation prevention
		f[1000+i] = 0
	}
	var frames [][]byte
	var aus [][][]byte
	var keys []bool
	add := func(f yuvFrame) {
		au, key := e.Encode(append(yuvFrame(nil), f...))
		aus = append(aus, au)
		keys = append(keys, key)
		frames = append(frames, cropFrame(e, f))
	}
	add(f)
	f2 := append(yuvFrame(nil), f...)
	for _, off := range []int{5*16 + 3, 320*100 + 77, 320*192 + 5} { // luma, luma, chroma
		f2[off] ^= 0xff
	}
	add(f2)
	add(f2)
	f3 := append(yuvFrame(nil), f2...)
	f3[320*191+319] ^= 0x55 // last macroblock, last coded row (cropped away but coded)
	f3[320*179+319] ^= 0x55 // last visible row
	add(f3)
	add(f3)
	f4 := e.newFrame()
	add(f4) // frame 5: the next IDR
	if want := []bool{true, false, false, false, false, true}; !equalBools(keys, want) {
		t.Fatalf("keyframes %v, want %v", keys, want)
	}
	if n := len(aus[2]); n != 1 || len(aus[2][0]) > 8 {
		t.Fatalf("all-skip P frame is %d NALs, %d bytes", n, len(aus[2][0]))
	}
	got := ffmpegDecode(t, annexB(aus))
	want := bytes.Join(frames, nil)
	if len(got) != len(want) {
		t.Fatalf("decoded %d bytes, want %d (%d frames)", len(got), len(want), len(frames))
	}
	for i := range frames {
		n := len(frames[i])
		if !bytes.Equal(got[i*n:(i+1)*n], frames[i]) {
			t.Fatalf("frame %d differs after decoding", i)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBitWriterExpGolomb(t *testing.T) {
	var b bitWriter
	b.ue(0)  // 1
	b.ue(1)  // 010
	b.ue(2)  // 011
	b.se(-1) // ue(2) 011
	b.ue(7)  // 0001000
	b.trailing()
	// 1 010 011 0 | 11 0001000 1 -> 1010 0110 1100 0100 0100 0000
	if got := b.bytes(); !bytes.Equal(got, []byte{0xa6, 0xc4, 0x40}) {
		t.Fatalf("%x", got)
	}
}
