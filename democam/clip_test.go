package democam

import (
	"time"

	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestClips(t *testing.T) {
	cases := []struct {
		name      ClipName
		frames    int
		wantBFrms bool
	}{
		{ClipMain, 60 * FPS, false},
		{ClipSliced, 60 * FPS, false},
		{ClipBFrames, 4 * FPS, true},
		{ClipH265, 4 * FPS, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.name), func(t *testing.T) {
			c, err := LoadClip(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if c.Frames() != tc.frames {
				t.Fatalf("got %d access units, want %d", c.Frames(), tc.frames)
			}
			gop := 2 * FPS
			seen := make(map[int]bool)
			reordered := false
			for i, au := range c.AUs {
				if au.Key != (i%gop == 0) {
					t.Fatalf("AU %d: key=%v, want keyframes exactly every %d frames", i, au.Key, gop)
				}
				if au.PTS != i {
					reordered = true
				}
				if seen[au.PTS] {
					t.Fatalf("AU %d: duplicate PTS %d", i, au.PTS)
				}
				seen[au.PTS] = true
				if au.PTS/gop != i/gop {
					t.Fatalf("AU %d: PTS %d outside its GOP", i, au.PTS)
				}
				if au.Key {
					types := nalTypes(c.Codec, au.NALUs)
					want := []int{7, 8, 5}
					if c.Codec == CodecH265 {
						want = []int{32, 33, 34}
					}
					for j, w := range want {
						if j >= len(types) || types[j] != w {
							t.Fatalf("GOP at AU %d starts with NAL types %v, want prefix %v", i, types, want)
						}
					}
				}
				for _, n := range au.NALUs {
					if c.Codec == CodecH264 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSEI {
						t.Fatalf("AU %d: clean clip carries SEI", i)
					}
				}
			}
			if reordered != tc.wantBFrms {
				t.Fatalf("reordered=%v, want %v", reordered, tc.wantBFrms)
			}
		})
	}
}

func TestSlicedClipFitsOnePacket(t *testing.T) {
	c, err := LoadClip(ClipSliced)
	if err != nil {
		t.Fatal(err)
	}
	multi := false
	for i, au := range c.AUs {
		slices := 0
		for _, n := range au.NALUs {
			if len(n) > 1200 {
				t.Fatalf("AU %d: NAL of %d bytes", i, len(n))
			}
			if t := n[0] & 0x1f; t == 1 || t == 5 {
				slices++
			}
		}
		if slices > 1 {
			multi = true
		}
	}
	if !multi {
		t.Fatal("no multi-slice picture: AU splitting by first_mb_in_slice is untested")
	}
}

func TestSplitAnnexB(t *testing.T) {
	got := SplitAnnexB([]byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0})
	if len(got) != 3 || got[0][0] != 0x67 || len(got[0]) != 3 || got[1][0] != 0x68 || len(got[1]) != 2 || got[2][0] != 0x65 || len(got[2]) != 2 {
		t.Fatalf("got %x", got)
	}
}

func nalTypes(codec string, nalus [][]byte) []int {
	out := make([]int, len(nalus))
	for i, n := range nalus {
		if codec == CodecH264 {
			out[i] = int(n[0] & 0x1f)
		} else {
			out[i] = int(n[0]>>1) & 0x3f
		}
	}
	return out
}

func TestWallClockAlignment(t *testing.T) {
	c := &Camera{ID: "clock"}
	clip, err := LoadClip(ClipMain)
	if err != nil {
		t.Fatal(err)
	}
	c.clip = clip
	before := time.Now()
	e, err := newEmitter(c)
	if err != nil {
		t.Fatal(err)
	}
	if !clip.AUs[e.g%int64(len(clip.AUs))].Key {
		t.Fatal("camera does not start at a keyframe")
	}
	at := e.videoAt(e.g)
	if at.After(before) || before.Sub(at) > 2*time.Second+time.Millisecond {
		t.Fatalf("first frame due at %v, %v before start", at, before.Sub(at))
	}
	// The burnt-in text of frame g is floor((g mod 900) / 15) seconds; it
	// must equal the wall-clock second of the minute the frame is sent at.
	for g := e.g; g < e.g+3*int64(len(clip.AUs)); g += 7 {
		shown := (g % int64(len(clip.AUs))) / FPS
		if sent := e.videoAt(g); int64(sent.Second()) != shown {
			t.Fatalf("frame %d shows second %d, sent at %v", g, shown, sent)
		}
	}
}
