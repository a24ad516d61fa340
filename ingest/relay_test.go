package ingest

import (
	"context"
	"testing"
	"time"

	"cordon/relay"
)

// The types the gateway wires together fit.
var (
	_ Sink         = (*relay.Stream)(nil)
	_ relay.Demand = (*Camera)(nil)
)

// An on-demand camera feeding a real relay.Stream: the first reader starts
// the pull, frames reach the reader, the last reader leaving stops it after
// the linger.
func TestWithRelayStreamOnDemand(t *testing.T) {
	fc := newFakeCam(t, camOpts{host: "127.0.0.3", audio: true})
	stream := &relay.Stream{Camera: "cam1"}
	if err := stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	c := newTestCamera(t, fc.url("", ""), func(c *Camera) {
		c.Sink = stream
		c.OnDemand = true
		c.Linger = 300 * time.Millisecond
		c.Transport = "tcp"
	})
	stream.SetDemand(c.Camera)

	time.Sleep(200 * time.Millisecond)
	if fc.connCount() != 0 {
		t.Fatal("pulling without readers")
	}
	r, err := stream.AddReader(relay.ReaderConf{Protocol: "webrtc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tracks, err := r.WaitReady(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tracks) != 2 || tracks[0].Codec != relay.CodecH264 || tracks[1].Codec != relay.CodecPCMU {
		t.Fatalf("tracks %+v", tracks)
	}
	var video, audio int
	for video < 5 || audio < 5 {
		d, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d video, %d audio: %v", video, audio, err)
		}
		if len(d.Packets) == 0 {
			t.Fatal("empty delivery")
		}
		if d.Track == 0 {
			video++
		} else {
			audio++
		}
	}
	r.Close()
	waitFor(t, "camera stop after linger", 5*time.Second, func() bool { return !c.State().Online })
	if stream.Info().Online {
		t.Fatal("stream still online")
	}
}
