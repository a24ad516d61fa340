package camera

import (
	"errors"
	"testing"

	"cordon/config"
	"cordon/relay"
)

func subConfig(id string, onDemand bool) config.Camera {
	c := camConfig(id, onDemand)
	c.SubURL = "rtsp://10.20.0.12:554/Streaming/Channels/102"
	return c
}

// A camera with sub_url has two streams, each with its own source built
// with the camera's credentials; the sub stream is registered in the hub
// as "id/sub", its state is reported apart, and on demand each stream is
// pulled only while it has readers.
func TestSubStream(t *testing.T) {
	hub := relay.NewHub()
	u, src, _ := newUnit(t, subConfig("dome", true), func(u *Unit) { u.Hub = hub })
	main, sub := src.next(t), src.next(t)
	if main.spec.Stream != "" || sub.spec.Stream != SubStream {
		t.Fatalf("specs %q %q", main.spec.Stream, sub.spec.Stream)
	}
	if sub.spec.URL.Path != "/Streaming/Channels/102" || sub.spec.URL.User.String() != "viewer:cam-secret-1" {
		t.Fatalf("sub URL %s", sub.spec.URL.Redacted())
	}
	if u.Stream(SubStream) == nil || hub.Lookup("dome", SubStream) != u.Stream(SubStream) || hub.Lookup("dome", "") != u.Stream("") {
		t.Fatal("streams not in the hub")
	}
	main.noPull(t, u)
	// a grid viewer of the sub stream pulls the sub stream only
	r, _ := u.Stream(SubStream).AddReader(relay.ReaderConf{Protocol: "webrtc"})
	defer r.Close()
	p := sub.nextPull(t)
	p.play(t)
	waitReady(t, r)
	st := u.State()
	if st.Online || !st.Streams[SubStream].Online || st.Streams[SubStream].Viewers != 1 || st.Viewers != 0 {
		t.Fatalf("state %+v", st)
	}
	select {
	case <-main.pulls:
		t.Fatal("the main stream is pulled for a sub-stream viewer")
	default:
	}
}

// Reloading without sub_url closes the sub stream (its readers end, the hub
// forgets it); adding it back creates a new one.
func TestSubStreamReload(t *testing.T) {
	hub := relay.NewHub()
	cfg := subConfig("dome", false)
	u, src, _ := newUnit(t, cfg, func(u *Unit) { u.Hub = hub })
	src.next(t)
	src.next(t)
	r, _ := u.Stream(SubStream).AddReader(relay.ReaderConf{Protocol: "rtsp"})
	defer r.Close()
	noSub := cfg
	noSub.SubURL = ""
	if err := u.Reload(noSub); err != nil {
		t.Fatal(err)
	}
	src.next(t) // the main stream's new source
	<-r.Done()
	if !errors.Is(r.Err(), relay.ErrStreamClosed) {
		t.Fatalf("sub reader ended with %v", r.Err())
	}
	if u.Stream(SubStream) != nil || hub.Lookup("dome", SubStream) != nil {
		t.Fatal("the sub stream outlived its config")
	}
	if err := u.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	src.next(t)
	if s := src.next(t); s.spec.Stream != SubStream {
		t.Fatalf("second source %q", s.spec.Stream)
	}
	if u.Stream(SubStream) == nil || hub.Lookup("dome", SubStream) == nil {
		t.Fatal("sub stream not back")
	}
}

type closeRec struct{ closed int }

func (c *closeRec) Reload(config.Camera) {}
func (c *closeRec) Close()               { c.closed++ }

// Detach removes and closes an attachment; a unit closing later does not
// close it again.
func TestDetach(t *testing.T) {
	u, _, _ := newUnit(t, camConfig("cam1", true), nil)
	a := &closeRec{}
	u.Attach("ptz", a)
	u.Detach("ptz")
	u.Detach("ptz")
	if u.Attachment("ptz") != nil || a.closed != 1 {
		t.Fatalf("attachment %v, closed %d times", u.Attachment("ptz"), a.closed)
	}
	u.Close()
	if a.closed != 1 {
		t.Fatalf("closed %d times after the unit closed", a.closed)
	}
}
