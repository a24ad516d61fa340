package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// A camera with B-frames (served over RTSP as it is) is recorded with its
// decode times: the playback MP4 decodes cleanly with ffmpeg, holds every
// recorded frame with its B-frames, presented one frame apart in order,
// decode times always forward; a window that ends between an anchor frame
// and the B-frames shown before it has no hole either.
func TestRecordingBFrames(t *testing.T) {
	dir := t.TempDir()
	cam := &democam.Camera{ID: "rec-bf", Listen: "127.0.0.147:0", Path: "Streaming/Channels/101", Username: "cam",
		Password: "cam-rec-bf-pw", Quirks: democam.Quirks{BFrames: true}}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	cfg := recConfig(t, dir, []config.Camera{{ID: "rec-bf", URL: cam.URL(), Username: cam.Username, Password: cam.Password,
		Transport: config.TransportTCP, Record: true}})
	g := e2eutil.Start(t, cfg)
	tok := e2eutil.Login(t, g.Base, "olivia", "olivia-pw")
	span := recWaitRecorded(t, g.Base, tok, "rec-bf", 5*time.Second, 60*time.Second)

	status, _, clip := recGet(t, recPlaybackURL(g.Base, "rec-bf", span.Start, span.Duration()), tok, nil)
	if status != http.StatusOK {
		t.Fatalf("playback: %d %.200s", status, clip)
	}
	file := filepath.Join(dir, "bframes.mp4")
	if err := os.WriteFile(file, clip, 0o600); err != nil {
		t.Fatal(err)
	}
	recDecode(t, file)
	frames := recProbeFrames(t, file)
	recorded := 0
	for _, l := range recIndex(t, cfg.Recording.Path, "rec-bf") {
		recorded += l.Frames
	}
	p := recFFprobe(t, file)
	if len(frames) == 0 || p.Frames != len(frames) {
		t.Fatalf("ffprobe: %d frames decoded, %d counted", len(frames), p.Frames)
	}
	// the clip covers the span up to its last closed fragment
	if want := span.Duration().Seconds() * democam.FPS; math.Abs(float64(len(frames))-want) > 3 {
		t.Fatalf("%d frames in %s of %d fps video (want about %.0f; %d in closed segments)", len(frames), span.Duration(), democam.FPS, want, recorded)
	}
	types := recCheckPresented(t, "the span", frames)
	if types["B"] < len(frames)/3 || types["P"] < len(frames)/6 {
		t.Fatalf("picture types %v: the recording lost its B-frames", types)
	}
	pkts := recProbePackets(t, file)
	for i := 1; i < len(pkts); i++ {
		if pkts[i] <= pkts[i-1] {
			t.Fatalf("packet %d decodes at %d, after %d", i, pkts[i], pkts[i-1])
		}
	}
	t.Logf("B-frame camera recorded: span %s, %d frames %v, %d packets", span.Duration(), len(frames), types, len(pkts))

	// windows ending one frame apart: wherever the end falls between an
	// anchor frame and the B-frames shown before it, the clip ends without
	// a hole (the anchor is left out)
	for i := range 6 {
		d := 2*time.Second + time.Duration(i)*time.Second/democam.FPS + time.Millisecond
		status, _, clip := recGet(t, recPlaybackURL(g.Base, "rec-bf", span.Start, d), tok, nil)
		if status != http.StatusOK {
			t.Fatalf("playback of %s: %d", d, status)
		}
		f := filepath.Join(dir, "window.mp4")
		if err := os.WriteFile(f, clip, 0o600); err != nil {
			t.Fatal(err)
		}
		recDecode(t, f)
		fr := recProbeFrames(t, f)
		recCheckPresented(t, "a window of "+d.String(), fr)
		if want := d.Seconds() * democam.FPS; math.Abs(float64(len(fr))-want) > 4 {
			t.Fatalf("a window of %s holds %d frames", d, len(fr))
		}
	}
}

// recCheckPresented: the clip starts on a keyframe and its frames are
// presented one frame interval apart; it returns the picture types seen.
func recCheckPresented(t *testing.T, what string, frames []recProbeFrame) map[string]int {
	t.Helper()
	types := map[string]int{}
	step := 1.0 / democam.FPS
	for i, f := range frames {
		types[f.PictType]++
		if i == 0 {
			if f.PictType != "I" {
				t.Fatalf("%s: the clip starts with a %s frame", what, f.PictType)
			}
			continue
		}
		pts, _ := strconv.ParseFloat(f.PTSTime, 64)
		prev, _ := strconv.ParseFloat(frames[i-1].PTSTime, 64)
		if d := pts - prev; math.Abs(d-step) > 0.002 {
			t.Fatalf("%s: frame %d of %d (%s) presented %.4f s after the previous, want %.4f", what, i, len(frames), f.PictType, d, step)
		}
	}
	return types
}

// recProbeFrame is one video frame ffprobe decoded from a file.
type recProbeFrame struct {
	PictType string `json:"pict_type"`
	PTSTime  string `json:"pts_time"`
}

// recProbeFrames decodes every video frame of file (presentation order).
func recProbeFrames(t *testing.T, file string) []recProbeFrame {
	t.Helper()
	ffprobe := testtool.Require(t, "ffprobe")
	out, errOut, err := coreRun(context.Background(), 2*time.Minute, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=pict_type,pts_time", "-of", "json", file)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, errOut)
	}
	var doc struct {
		Frames []recProbeFrame `json:"frames"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return doc.Frames
}

// recProbePackets returns the decode times of file's video packets in
// file order.
func recProbePackets(t *testing.T, file string) []int64 {
	t.Helper()
	ffprobe := testtool.Require(t, "ffprobe")
	out, errOut, err := coreRun(context.Background(), 2*time.Minute, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=dts", "-of", "json", file)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, errOut)
	}
	var doc struct {
		Packets []struct {
			DTS *int64 `json:"dts"`
		} `json:"packets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	dts := make([]int64, 0, len(doc.Packets))
	for i, p := range doc.Packets {
		if p.DTS == nil {
			t.Fatalf("packet %d has no decode time", i)
		}
		dts = append(dts, *p.DTS)
	}
	return dts
}
