package whep

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cordon/democam"
	"cordon/relay"
)

// A camera whose main stream has B-frames: a WHEP POST for it answers 422
// naming B-frames, the fix and the sub stream; ?stream=sub plays the sub
// stream (recorded as such in the session); a bad ?stream= is 400 and a
// camera without a sub stream 404.
func TestSubStreamAndBFrames(t *testing.T) {
	e := newEnv(t, nil)
	clip, err := democam.LoadClip(democam.ClipBFrames)
	if err != nil {
		t.Fatal(err)
	}
	main := &relay.Stream{Camera: "cam1"}
	if err := main.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(main.Close)
	e.hub.Put(main)
	if err := main.CameraConnected([]relay.Track{{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000,
		ParamSets: [][]byte{clip.SPS, clip.PPS}}}); err != nil {
		t.Fatal(err)
	}
	sub := startNamedCamera(t, e.hub, "cam1", "sub")
	startCamera(t, e.hub, "cam2")

	if c, _ := newClient(t, e, "cam1", clientOpts{}); c != nil {
		t.Fatal("a WebRTC session started on a B-frame stream")
	}
	_, resp := newClient(t, e, "cam1", clientOpts{})
	body, _ := io.ReadAll(resp.Body)
	var msg struct{ Error string }
	_ = json.Unmarshal(body, &msg)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(msg.Error, "B-frames") ||
		!strings.Contains(msg.Error, "without B-frames") || !strings.Contains(msg.Error, "?stream=sub") {
		t.Fatalf("POST for the B-frame main stream: %d %s", resp.StatusCode, body)
	}

	c, resp := newClient(t, e, "cam1?stream=sub", clientOpts{})
	if c == nil {
		t.Fatalf("POST ?stream=sub: %d", resp.StatusCode)
	}
	if au := c.nextAU(t, 5*time.Second); len(au.NALUs) == 0 {
		t.Fatal("empty access unit from the sub stream")
	}
	if !strings.HasPrefix(c.location, "/whep/cam1/") {
		t.Fatalf("Location %q", c.location)
	}
	e.events.mu.Lock()
	st := e.events.starts[len(e.events.starts)-1]
	e.events.mu.Unlock()
	if st.Camera != "cam1" || st.Stream != "sub" {
		t.Fatalf("session info %+v", st)
	}
	if in := sub.stream.Info(); in.Readers["webrtc"] != 1 {
		t.Fatalf("sub stream readers %v", in.Readers)
	}

	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"cam1?stream=hd", http.StatusBadRequest, "main or sub"},
		{"cam1?stream=sub&stream=main", http.StatusBadRequest, "main or sub"},
		{"cam2?stream=sub", http.StatusNotFound, "no sub stream"},
	} {
		resp := post(t, e, tc.path, "alice", "application/sdp", "v=0\r\n")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("POST /whep/%s: %d %s, want %d %q", tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	// the main stream of a clean camera still plays with ?stream=main
	if c, resp := newClient(t, e, "cam2?stream=main", clientOpts{}); c == nil {
		t.Fatalf("POST ?stream=main: %d", resp.StatusCode)
	}
}

// startNamedCamera is startCamera for a named stream of a camera.
func startNamedCamera(t testing.TB, hub *relay.Hub, id, name string) *camera {
	t.Helper()
	tmp := relay.NewHub()
	c := startCamera(t, tmp, id)
	tmp.RemoveStream(c.stream)
	c.stream.Name = name
	hub.Put(c.stream)
	return c
}
