package whep

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/internal/testtool"
	"cordon/internal/whepclient"
)

// rtxWire records what an interceptor writes, marshaled.
type rtxWire struct {
	mu  sync.Mutex
	out [][]byte
}

func (w *rtxWire) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	b, err := (&rtp.Packet{Header: *h, Payload: payload}).Marshal()
	w.mu.Lock()
	w.out = append(w.out, b)
	w.mu.Unlock()
	return len(b), err
}

func (w *rtxWire) take() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.out
	w.out = nil
	return out
}

// rtcpFeed hands marshaled RTCP to an interceptor's reader, once each.
type rtcpFeed struct{ pkts chan []byte }

func (f rtcpFeed) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	return copy(b, <-f.pkts), a, nil
}

// A NACK is answered from the index with exactly the bytes first sent
// (the viewer's own sequence numbers and timestamps, the shared payload,
// no copy of it); a sequence number no longer indexed, past the per-NACK
// bound or past the budget is refused; a stream without NACK feedback is
// not indexed.
func TestRTXIndexAnswersNACK(t *testing.T) {
	m := newRTXMetrics()
	it, _ := rtxFactory{m: m}.NewInterceptor("")
	r := it.(*rtxResponder)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	wire := &rtxWire{}
	info := &interceptor.StreamInfo{SSRC: 0x1234, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	w := r.BindLocalStream(info, wire)
	plain := r.BindLocalStream(&interceptor.StreamInfo{SSRC: 0x9999}, wire)
	payloads := make([][]byte, 2000)
	for i := range payloads {
		payloads[i] = bytes.Repeat([]byte{byte(i)}, 100+i%7)
		h := rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: uint16((64000 + i) % 65536), Timestamp: uint32(9000 * (i / 10)), Marker: i%10 == 9, SSRC: 0x1234}
		if _, err := w.Write(&h, payloads[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plain.Write(&rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 0x9999}, []byte{1}, nil); err != nil {
		t.Fatal(err)
	}
	sent := wire.take()
	seq := func(i int) uint16 { return uint16(64000 + i) } // wraps past 65535
	if &r.streams[0x1234].ring[seq(1999)%rtxRing].payload[0] != &payloads[1999][0] {
		t.Fatal("the index copied the payload instead of referencing it")
	}
	feed := rtcpFeed{pkts: make(chan []byte, 4)}
	reader := r.BindRTCPReader(feed)
	nack := func(ssrc uint32, seqs ...uint16) {
		b, err := (&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		feed.pkts <- b
		if _, _, err := reader.Read(make([]byte, 1500), nil); err != nil {
			t.Fatal(err)
		}
	}
	// the last 1024 are indexed (seq 64976 = packet 976 onwards, wrapping past 65535)
	nack(0x1234, seq(1999), seq(1500), seq(976), seq(975), seq(900))
	got := wire.take()
	if len(got) != 3 || !bytes.Equal(got[0], sent[1999]) || !bytes.Equal(got[1], sent[1500]) || !bytes.Equal(got[2], sent[976]) {
		t.Fatalf("resent %d packets, want packets 1999, 1500, 976 byte for byte", len(got))
	}
	nack(0x9999, 1)
	if len(wire.take()) != 0 {
		t.Fatal("a stream without NACK feedback was indexed")
	}
	// one NACK asks for at most rtxPerNACK; the budget is rtxBurst at once
	var all []uint16
	for i := 976; i < 2000; i++ {
		all = append(all, seq(i))
	}
	nack(0x1234, all...)
	if n := len(wire.take()); n != rtxPerNACK {
		t.Fatalf("one NACK of %d resent %d, want %d", len(all), n, rtxPerNACK)
	}
	nack(0x1234, all[:rtxPerNACK]...)
	if n := len(wire.take()); n != rtxBurst-rtxPerNACK-3 {
		t.Fatalf("second NACK resent %d, want the burst's rest %d", n, rtxBurst-rtxPerNACK-3)
	}
	now = now.Add(100 * time.Millisecond) // rtxRate/10 tokens back
	nack(0x1234, all[:rtxPerNACK]...)
	if n := len(wire.take()); n != rtxRate/10 {
		t.Fatalf("after 100 ms resent %d, want %d", n, rtxRate/10)
	}
	if testutil.ToFloat64(m.resent) != float64(3+rtxBurst-3+rtxRate/10) || testutil.ToFloat64(m.refused) == 0 {
		t.Fatalf("metrics: resent %v refused %v", testutil.ToFloat64(m.resent), testutil.ToFloat64(m.refused))
	}
	r.UnbindLocalStream(info)
	nack(0x1234, seq(1999))
	if len(wire.take()) != 0 {
		t.Fatal("an unbound stream answered")
	}
}

// Through the real server: a viewer that loses every 40th video packet
// (the first time it comes) NACKs it (pion's generator, as a browser) and
// gets it back from the index, with its own sequence number and
// timestamp: in the end no sequence number is missing, and the server
// counted the resends.
func TestNACKAnsweredThroughServer(t *testing.T) {
	e := newEnv(t, nil)
	startCamera(t, e.hub, "cam1")
	var mu sync.Mutex
	dropped := map[uint16]bool{}
	drop := func(seq uint16) bool {
		mu.Lock()
		defer mu.Unlock()
		if seq%40 != 7 || dropped[seq] {
			return false
		}
		dropped[seq] = true
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, whepclient.Options{URL: e.http.URL + "/whep/cam1", Token: "alice", HTTP: e.http.Client(), DropVideo: drop})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	testtool.WaitFor(t, 15*time.Second, "60 frames and 10 retransmissions", func() bool {
		return wc.Stats().Frames >= 60 && testutil.ToFloat64(e.srv.Metrics.rtx.resent) >= 10
	})
	mu.Lock()
	n := len(dropped)
	mu.Unlock()
	w := wc.Wire()
	if n < 10 || w.Lost > 0 {
		t.Fatalf("dropped %d packets, %d never came back", n, w.Lost)
	}
	// a resent packet carries its frame's timestamp (the viewer's own,
	// as first sent: its neighbours in the frame have it too)
	ts := map[uint16]uint32{}
	for _, h := range wc.Headers() {
		ts[h.SequenceNumber] = h.Timestamp
	}
	checked := 0
	for seq := range dropped {
		got, ok := ts[seq]
		if !ok {
			continue // resent after the snapshot
		}
		checked++
		if got != ts[seq-1] && got != ts[seq+1] {
			t.Fatalf("resent seq %d: timestamp %d, neighbours %d and %d", seq, got, ts[seq-1], ts[seq+1])
		}
	}
	if checked < 5 {
		t.Fatalf("only %d resent packets seen", checked)
	}
}
