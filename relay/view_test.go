package relay

import (
	"context"
	"testing"
	"time"
)

// NextView gives a reader the same packets as Next, without the header
// copies: two readers with the same history (primed from the GOP cache,
// so squeezed timestamps; overflowed, so shifted sequence numbers) see the
// same sequence numbers, timestamps, markers and the very same payloads,
// one through Next and one through NextView, and count the same bytes.
func TestNextViewMatchesNext(t *testing.T) {
	s := newTestStream(t, 8)
	if err := s.CameraConnected([]Track{h264Track}); err != nil {
		t.Fatal(err)
	}
	feed(t, s, 0, 0, 10, 5) // the cache holds frames 5-9
	var rs [2]*Reader
	for i := range rs {
		r, err := s.AddReader(ReaderConf{Protocol: "rtsp"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.WaitReady(context.Background()); err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	feed(t, s, 0, 10, 30, 5) // both queues overflow alike
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	compare := func(n int) (primed, shifted int) {
		for range n {
			d := next(t, rs[0])
			v, err := rs[1].NextView(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.Frame.Track != d.Track || v.Frame.Key != d.Key || v.Primed != d.Primed || v.Backlog != d.Backlog ||
				len(v.Frame.Packets) != len(d.Packets) {
				t.Fatalf("view %+v, delivery track %d key %v primed %v backlog %d, %d packets", v, d.Track, d.Key, d.Primed, d.Backlog, len(d.Packets))
			}
			for i, p := range v.Frame.Packets {
				w := &d.Packets[i]
				if v.Seq(p) != w.SequenceNumber || v.TS(p) != w.Timestamp || p.Marker != w.Marker || p.SSRC != w.SSRC ||
					p.PayloadType != w.PayloadType || &p.Payload[0] != &w.Payload[0] || len(p.Payload) != len(w.Payload) {
					t.Fatalf("packet %d: view seq %d ts %d, delivery seq %d ts %d", i, v.Seq(p), v.TS(p), w.SequenceNumber, w.Timestamp)
				}
			}
			if v.Primed && v.TSDelta != 0 {
				primed++
			}
			if v.SeqDelta != 0 {
				shifted++
			}
		}
		return primed, shifted
	}
	primed, _ := compare(len(rs[0].ch)) // the cached GOP and the live frames that fit
	feed(t, s, 0, 40, 10, 5)            // past the drops: frames 40-49
	_, shifted := compare(10)
	if primed == 0 || shifted != 10 {
		t.Fatalf("%d primed frames with squeezed timestamps, %d frames with shifted sequence numbers: the test covers neither", primed, shifted)
	}
	for i, r := range rs {
		if dropped, bytes := r.Stats(); dropped == 0 || bytes == 0 {
			t.Fatalf("reader %d: %d dropped, %d bytes", i, dropped, bytes)
		}
	}
	d0, b0 := rs[0].Stats()
	d1, b1 := rs[1].Stats()
	if d0 != d1 || b0 != b1 {
		t.Fatalf("Next counted %d dropped, %d bytes; NextView %d, %d", d0, b0, d1, b1)
	}
}
