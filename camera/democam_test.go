package camera

import (
	"net"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/internal/clock"
	"cordon/internal/testtool"
	"cordon/relay"
)

// The unit with its real puller against a real (synthetic) camera.

func newDemoCam(t *testing.T, host string) *democam.Camera {
	t.Helper()
	c := &democam.Camera{ID: t.Name(), Listen: net.JoinHostPort(host, "0"), Path: "Streaming/Channels/101",
		Username: "viewer", Password: "cam-pw-4711", Audio: true}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func demoConfig(c *democam.Camera, id string, onDemand bool) config.Camera {
	return config.Camera{ID: id, URL: c.URL(), Username: "viewer", Password: "cam-pw-4711", Transport: "tcp", OnDemand: onDemand}
}

// A camera that goes away and comes back: the same reader resumes on a
// keyframe, the unit counts the reconnect, the events say offline then
// online, and the first retry after a healthy connection comes after the
// shortest backoff.
func TestCameraRestartReaderResumes(t *testing.T) {
	t.Parallel()
	cam := newDemoCam(t, "127.0.0.2")
	ev := newEventRec()
	u := &Unit{Config: demoConfig(cam, "flaky", false), Events: ev, Logger: quiet,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond, HealthyAfter: time.Nanosecond}
	if err := u.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	r, _ := u.Stream("").AddReader(relay.ReaderConf{Protocol: "webrtc", AU: true})
	defer r.Close()
	waitReady(t, r)
	ev.wait(t, "online flaky")
	for {
		if d := nextDelivery(t, r); d.Track == 0 {
			if !d.Key || len(d.AU) == 0 {
				t.Fatal("first video delivery is no keyframe")
			}
			break
		}
	}
	cam.Stop()
	stopped := time.Now()
	select {
	case e := <-ev.ch:
		if !strings.HasPrefix(e, "offline flaky: ") || strings.Contains(e, "cam-pw-4711") {
			t.Fatalf("event %q", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offline event")
	}
	if st := u.State(); st.Online || st.LastError == "" || strings.Contains(st.LastError, "cam-pw-4711") {
		t.Fatalf("state while away %+v", st)
	}
	// Frames the old session queued before the camera went away may still
	// wait in the reader; everything that reached the stream after this
	// moment comes from the new session.
	restarted := time.Now()
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, "online flaky")
	if u.State().Reconnects < 1 {
		t.Fatalf("reconnects %d", u.State().Reconnects)
	}
	conns := cam.ConnectedAt()
	if gap := conns[1].Sub(stopped); gap < 70*time.Millisecond || gap > 3*time.Second {
		t.Fatalf("first retry %v after the camera went away, want about 100 ms", gap)
	}
	for {
		d := nextDelivery(t, r)
		if d.Track == 0 && d.Time.After(restarted) {
			if !d.Key {
				t.Fatal("first video after the restart is no keyframe")
			}
			break
		}
	}
	if r.Err() != nil {
		t.Fatalf("reader ended: %v", r.Err())
	}
}

// An on-demand camera with its real puller: no connection before the
// first reader, frames while read, the connection closed once the linger
// ran out (fake clock), and no new connection after.
func TestOnDemandRealCamera(t *testing.T) {
	t.Parallel()
	cam := newDemoCam(t, "127.0.0.3")
	clk := clock.NewFake(time.Time{})
	u := &Unit{Config: demoConfig(cam, "lazy", true), Clock: clk, Logger: quiet}
	if err := u.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	parked(t, u)
	if n := cam.Connections(); n != 0 {
		t.Fatalf("%d connections without readers", n)
	}
	r, _ := u.Stream("").AddReader(relay.ReaderConf{Protocol: "webrtc"})
	tracks, err := waitTracks(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(tracks) != 2 || tracks[0].Codec != relay.CodecH264 || tracks[1].Codec != relay.CodecPCMU {
		t.Fatalf("tracks %+v", tracks)
	}
	var video, audio int
	for video < 3 || audio < 3 {
		if d := nextDelivery(t, r); d.Track == 0 {
			video++
		} else {
			audio++
		}
	}
	r.Close()
	clk.Advance(DefaultLinger)
	parked(t, u)
	if st := u.State(); st.Online || st.LastError != "" {
		t.Fatalf("state after the linger %+v", st)
	}
	testtool.WaitFor(t, 5*time.Second, "the camera to see its client leave", func() bool { return cam.OpenConnections() == 0 })
	if n := cam.Connections(); n != 1 {
		t.Fatalf("%d connections, want the one while read", n)
	}
}

func waitTracks(r *relay.Reader) ([]relay.OutTrack, error) {
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	return r.WaitReady(ctx)
}
