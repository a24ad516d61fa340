package whep

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"

	"cordon/internal/testtool"
	"cordon/internal/whepclient"
	"cordon/relay"
)

// The bucket lets a burst out at once, then the rate; refills while idle
// up to the burst; and never runs slower than twice the stream's own rate.
func TestPacerReserve(t *testing.T) {
	p := newPacer(48, 2600)
	t0 := time.Unix(0, 0)
	if w := p.reserve(48, t0); w != 0 {
		t.Fatalf("first burst waits %v", w)
	}
	if w := p.reserve(26, t0); w != 10*time.Millisecond {
		t.Fatalf("26 more packets at once wait %v, want 10 ms", w)
	}
	// after a long idle, the bucket is full again, not fuller
	if w := p.reserve(48, t0.Add(time.Hour)); w != 0 {
		t.Fatalf("after idle: wait %v", w)
	}
	if w := p.reserve(1, t0.Add(time.Hour)); w <= 0 {
		t.Fatal("the bucket held more than its burst")
	}
	// a stream of 2000 packets a second paces at 4000
	q := newPacer(48, 2600)
	for i := range 5 { // 2000 packets over 1 s of PTS
		q.observe(time.Duration(i)*250*time.Millisecond, 400)
	}
	q.reserve(48, t0)
	if w := q.reserve(40, t0); w != 10*time.Millisecond {
		t.Fatalf("a 2000 packet/s stream: 40 packets wait %v, want 10 ms at 4000/s", w)
	}
}

// While catching up, video timestamps follow the send time (at least one
// tick apart, never backwards); once live (not primed, nothing queued) the
// offset is fixed and live frames keep their spacing.
func TestRestamper(t *testing.T) {
	r := &restamper{clock: 90000}
	t0 := time.Unix(0, 0)
	frame := func(ts uint32, primed bool, backlog int) *relay.Delivery {
		return &relay.Delivery{Primed: primed, Backlog: backlog, Packets: []rtp.Packet{{Header: rtp.Header{Timestamp: ts}}, {Header: rtp.Header{Timestamp: ts}}}}
	}
	var got []uint32
	send := func(d *relay.Delivery, at time.Duration) {
		r.apply(d, t0.Add(at))
		if d.Packets[0].Timestamp != d.Packets[1].Timestamp {
			t.Fatal("a frame's packets got different timestamps")
		}
		got = append(got, d.Packets[0].Timestamp)
	}
	// cached frames squeezed one tick apart by the relay, sent 10 ms apart
	send(frame(1000, true, 3), 0)
	send(frame(1001, true, 2), 10*time.Millisecond)
	send(frame(1002, true, 1), 10*time.Millisecond)  // same instant: one tick
	send(frame(1003, false, 0), 25*time.Millisecond) // the first live frame, nothing queued: caught up
	send(frame(1003+3600, false, 0), 65*time.Millisecond)
	send(frame(1003+7200, false, 2), 200*time.Millisecond) // late and queued again: the offset stays
	want := []uint32{1000, 1900, 1901, 3251, 3251 + 3600, 3251 + 7200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("timestamps %v, want %v", got, want)
		}
	}
}

// Through the real server, a new viewer with the system's default UDP
// receive buffer gets the whole cached GOP (a 150 KB keyframe, more than
// the buffer holds when sent at once, and up to 24 frames behind it, sent
// in paced bursts) without one lost packet: the first decoded access unit
// is the keyframe, sequence numbers continue, timestamps never go back,
// and every frame of the GOP arrives in order. Unpaced, the keyframe
// alone overflows the buffer (with GSO it leaves in three system calls).
func TestPacedPrimingLosesNothing(t *testing.T) {
	// small bursts, slow: a loaded machine's scheduling delays stay under
	// what the receive buffer holds
	e := newEnv(t, func(s *Server) { s.SendBurst, s.SendRate = 16, 500 })
	cam := startCameraSized(t, e.hub, "cam1", 150000, 2000)
	// wait until the cache holds most of a GOP
	testtool.WaitFor(t, 5*time.Second, "20 cached frames", func() bool { return cam.frames.Load()%testGOP >= 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, whepclient.Options{URL: e.http.URL + "/whep/cam1", Token: "alice", HTTP: e.http.Client(), NoInterceptors: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	first := testtool.Recv(t, wc.AUs(), 10*time.Second, "the first access unit")
	if !first.Key {
		t.Fatalf("first access unit %v is not a keyframe", naluTypes(first.NALUs))
	}
	start := frameNo(first.NALUs[len(first.NALUs)-1])
	next := start + 1
	for next < start+30 {
		au := testtool.Recv(t, wc.AUs(), 10*time.Second, "the next access unit")
		if n := frameNo(au.NALUs[len(au.NALUs)-1]); n != next {
			t.Fatalf("frame %d after %d: reordered or lost", n, next-1)
		}
		next++
	}
	st, w := wc.Stats(), wc.Wire()
	if w.Lost != 0 || st.SeqGaps != 0 || st.TSBackwards != 0 || w.Drops != 0 {
		t.Fatalf("lost %d, gaps %d, timestamps back %d, socket drops %d", w.Lost, st.SeqGaps, st.TSBackwards, w.Drops)
	}
}
