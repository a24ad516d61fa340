package relay

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A reader borrows its delivery's header copies only while it handles a
// frame: two readers holding deliveries at once get separate, correct
// packets, and a reader waiting in Next (or returning from it) holds none.
func TestIdleReaderHoldsNoDeliveryBuffer(t *testing.T) {
	s := newTestStream(t, 64)
	if err := s.CameraConnected([]Track{h264Track}); err != nil {
		t.Fatal(err)
	}
	var rs [2]*Reader
	for i := range rs {
		r, err := s.AddReader(ReaderConf{Protocol: "webrtc"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.WaitReady(context.Background()); err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	if err := s.WriteUnit(Unit{Track: 0, PTS: time.Second, AU: [][]byte{testSPS, testPPS, idr(100000)}}); err != nil {
		t.Fatal(err)
	}
	d0, d1 := next(t, rs[0]), next(t, rs[1])
	if len(d0.Packets) < 50 || len(d0.Packets) != len(d1.Packets) {
		t.Fatalf("keyframe packets: %d and %d", len(d0.Packets), len(d1.Packets))
	}
	if &d0.Packets[0] == &d1.Packets[0] {
		t.Fatal("two readers holding a delivery share its packets")
	}
	for _, d := range []Delivery{d0, d1} {
		(&checker{t: t}).check(d)
		if !d.Packets[len(d.Packets)-1].Marker {
			t.Fatal("last packet of the keyframe has no marker")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, r := range rs {
		if r.buf == nil {
			t.Fatalf("reader %d: no delivery buffer while handling a frame", i)
		}
		if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("reader %d: Next on an empty queue: %v", i, err)
		}
		if r.buf != nil {
			t.Fatalf("reader %d still holds its last delivery's packets (%d) while waiting", i, cap(*r.buf))
		}
	}
}
