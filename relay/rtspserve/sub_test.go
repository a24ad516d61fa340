package rtspserve

import (
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"cordon/internal/testtool"
	"cordon/relay"
)

// rtsp://HOST/{camera}/sub serves the camera's sub stream (its own relay
// stream, its own session with Stream "sub"); a camera without one is 404
// there, and its main stream stays at /{camera}.
func TestSubStreamPath(t *testing.T) {
	f := newFixture(t, false)
	sub := &relay.Stream{Camera: "gate", Name: "sub"}
	_ = sub.Initialize()
	f.srv.Hub.Put(sub)
	t.Cleanup(sub.Close)
	if err := sub.CameraConnected([]relay.Track{{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000, ParamSets: [][]byte{testSPS, testPPS}}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			au := [][]byte{{0x41, 0x9a, 9, 9}}
			if i%5 == 0 {
				au = [][]byte{testSPS, testPPS, {0x65, 0x88, 7, 7}}
			}
			_ = sub.WriteUnit(relay.Unit{PTS: time.Duration(i) * 40 * time.Millisecond, AU: au})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()

	c, desc, err := dial(t, f.url("alice:s3cret-A", "gate/sub"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(desc.Medias) != 1 { // the main stream has audio too
		t.Fatalf("sub stream medias %d", len(desc.Medias))
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 64)
	c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, p *rtp.Packet) {
		select {
		case got <- append([]byte(nil), p.Payload...):
		default:
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	// the sub stream's own payloads (07 07 / 09 09 bodies), not the main's
	for {
		p := testtool.Recv(t, got, 5*time.Second, "a sub-stream packet")
		if len(p) >= 4 && (p[2] == 9 || p[2] == 7) {
			break
		}
	}
	var found bool
	for _, in := range f.srv.Sessions.List() {
		if in.Camera == "gate" && in.Stream == "sub" && in.Protocol == "rtsp" {
			found = true
		}
	}
	if !found {
		t.Fatalf("sessions %+v", f.srv.Sessions.List())
	}
	if in := sub.Info(); in.Readers["rtsp"] != 1 {
		t.Fatalf("sub readers %v", in.Readers)
	}
	if cl, _, err := dial(t, f.url("bob:s3cret-B", "yard/sub"), true); err == nil || !strings.Contains(err.Error(), "404") {
		if cl != nil {
			cl.Close()
		}
		t.Fatalf("yard/sub: %v, want 404", err)
	}
}
