package ffcam

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"go.uber.org/goleak"

	"cordon/internal/testtool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// describe sends DESCRIBE to u and returns its error (nil: served).
func describe(t *testing.T, u string) error {
	t.Helper()
	pu, err := base.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	proto := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Describe(pu)
	return err
}

// ffmpeg's clip is served at /live and /live/1..Paths, not past Paths;
// a player is counted; Close ends ffmpeg (Done, Err); a clip ffmpeg
// cannot read fails Initialize with ffmpeg's own words.
func TestCamera(t *testing.T) {
	ffmpeg := testtool.Require(t, "ffmpeg")
	clip := filepath.Join(t.TempDir(), "clip.mkv")
	testtool.EncodeClip(t, clip, "160x120", 25, 2)
	c := &Camera{Listen: "127.0.0.1:0", Clip: clip, FFmpeg: ffmpeg, Paths: 2}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.URL(), "rtsp://127.0.0.1:") || !strings.HasSuffix(c.URL(), "/live") {
		t.Fatalf("URL %q", c.URL())
	}
	for _, path := range []string{"", "/1", "/2"} {
		if err := describe(t, c.URL()+path); err != nil {
			t.Errorf("DESCRIBE /live%s: %v", path, err)
		}
	}
	for _, path := range []string{"/3", "/0", "/x", "2"} {
		if err := describe(t, c.URL()+path); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("DESCRIBE /live%s: %v, want 404", path, err)
		}
	}

	pu, _ := base.ParseURL(c.URL() + "/1")
	proto := gortsplib.ProtocolTCP
	rc := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto}
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	desc, _, err := rc.Describe(pu)
	if err == nil {
		err = rc.SetupAll(desc.BaseURL, desc.Medias)
	}
	if err == nil {
		_, err = rc.Play(nil)
	}
	rc.Close()
	if err != nil {
		t.Fatalf("play /live/1: %v", err)
	}
	if n := c.Players(); n != 1 {
		t.Errorf("%d players counted, want 1", n)
	}
	if c.Err() != nil {
		t.Fatalf("Err while ffmpeg runs: %v", c.Err())
	}
	c.Close() // returns once ffmpeg has exited
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if c.Err() == nil {
		t.Fatal("no Err after ffmpeg ended")
	}
	c.Close() // again: nothing

	bad := &Camera{Listen: "127.0.0.1:0", Clip: filepath.Join(t.TempDir(), "missing.mkv"), FFmpeg: ffmpeg}
	if err := bad.Initialize(); err == nil || !strings.Contains(err.Error(), "ffmpeg exited") || !strings.Contains(err.Error(), "missing.mkv") {
		t.Fatalf("a missing clip: %v", err)
	}
	bad.Close()
}
