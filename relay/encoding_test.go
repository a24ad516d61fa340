package relay

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A frame's shared encoding is built once, by the first reader that asks,
// and returned to every reader asking with the same key (even readers
// asking at once); a reader with another key is told to build its own.
// Once the frame is no longer among its track's encodingWindow newest, it
// keeps no encoding (the Stream holds a few frames' encodings per track,
// never a GOP's), and its Packets, SSRC and the announced OutTrack.SSRC
// agree.
func TestSharedEncoding(t *testing.T) {
	s := newTestStream(t, 64)
	if err := s.CameraConnected([]Track{h264Track, pcmuTrack}); err != nil {
		t.Fatal(err)
	}
	r, err := s.AddReader(ReaderConf{Protocol: "rtsp"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tracks, err := r.WaitReady(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tracks[0].SSRC == tracks[1].SSRC {
		t.Fatal("two tracks with one SSRC")
	}
	feed(t, s, 0, 0, 1, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := r.NextView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := v.Frame
	for _, p := range f.Packets {
		if p.SSRC != tracks[0].SSRC {
			t.Fatalf("packet SSRC %x, track SSRC %x", p.SSRC, tracks[0].SSRC)
		}
	}
	builds := 0
	var mu sync.Mutex
	build := func(f *Frame, key uint32) []byte {
		mu.Lock()
		builds++
		mu.Unlock()
		return []byte{byte(key), byte(len(f.Packets))}
	}
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			b, ok := f.SharedEncoding(7, build)
			if !ok {
				t.Error("no encoding for the first key")
			}
			got[i] = b
		})
	}
	wg.Wait()
	b, ok := f.SharedEncoding(7, build)
	if !ok || b[0] != 7 || &b[0] != &got[0][0] && builds == 1 {
		t.Fatalf("encoding %v, %v after %d builds", b, ok, builds)
	}
	if builds < 1 || builds > len(got) {
		t.Fatalf("%d builds", builds)
	}
	before := builds
	for range 10 {
		if _, ok := f.SharedEncoding(7, build); !ok {
			t.Fatal("encoding lost")
		}
	}
	if builds != before {
		t.Fatalf("%d more builds once built", builds-before)
	}
	if _, ok := f.SharedEncoding(8, build); ok {
		t.Fatal("another key shares the first key's encoding")
	}

	// audio frames do not age video's: the frame stays among the newest
	// while its own track has published fewer than encodingWindow more
	for i := range 20 {
		if err := s.WriteUnit(Unit{Track: 1, PTS: time.Duration(i) * 20 * time.Millisecond, AU: [][]byte{make([]byte, 160)}}); err != nil {
			t.Fatal(err)
		}
	}
	feed(t, s, 0, 1, encodingWindow-1, 25)
	if _, ok := f.SharedEncoding(7, build); !ok {
		t.Fatal("dropped while among its track's newest frames")
	}
	feed(t, s, 0, encodingWindow, 1, 25)
	if b, ok := f.SharedEncoding(7, build); ok || b != nil {
		t.Fatal("an encoding kept by a frame older than the window")
	}

	// a camera that goes offline leaves no frame holding an encoding (the
	// tracks, and so the ring, outlive a reconnect with the same codecs)
	var newest *Frame
	for {
		v, ok := r.TryNextView()
		if !ok {
			break
		}
		if v.Frame.Track == 0 {
			newest = v.Frame
		}
	}
	if newest == nil {
		t.Fatal("no video frame queued")
	}
	if _, ok := newest.SharedEncoding(7, build); !ok {
		t.Fatal("the newest frame keeps no encoding")
	}
	s.CameraDisconnected(nil)
	if _, ok := newest.SharedEncoding(7, build); ok {
		t.Fatal("an encoding kept while the camera is offline")
	}
	s.mu.Lock()
	for _, tr := range s.tracks {
		if tr.recent != (encodingRing{}) {
			s.mu.Unlock()
			t.Fatal("an offline track still holds frames")
		}
	}
	s.mu.Unlock()
}
