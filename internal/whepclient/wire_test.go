package whepclient

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// A sequence number that never arrives within the window is lost; one
// that arrives late (a retransmission, a reorder) is not; duplicates and
// packets older than the window are ignored; a jump past the window
// counts everything skipped.
func TestLossCounter(t *testing.T) {
	var l lossCounter
	for _, s := range []uint16{65530, 65531, 65533, 65534} { // 65532 missing, across the wrap below
		if !l.add(s, true) {
			t.Fatalf("add %d refused", s)
		}
	}
	if n, _ := l.pending(); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	if !l.add(65532, true) || l.add(65532, true) { // late: fills the hole; again: a duplicate
		t.Fatal("late packet not taken, or duplicate taken")
	}
	for s := uint16(0); s < 10; s++ { // wraps past 65535; 65535 is skipped
		l.add(s, false)
	}
	n, early := l.pending()
	if n != 1 || early != 0 || l.lost != 0 {
		t.Fatalf("pending %d (early %d), lost %d; want 1 pending, not early", n, early, l.lost)
	}
	for s := uint16(10); s < 10+lossWindow; s++ { // slides the hole out of the window
		l.add(s, false)
	}
	if l.lost != 1 || l.lostEarly != 0 {
		t.Fatalf("lost %d (early %d), want 1 (0)", l.lost, l.lostEarly)
	}
	if l.add(65535, false) { // older than the window
		t.Fatal("a packet older than the window was taken")
	}
	top := uint16(l.top)
	l.add(top+3000, true) // a jump of 2999 missing numbers
	n, early = l.pending()
	if got := l.lost - 1 + n; got != 2999 || l.lostEarly+early != 2999 {
		t.Fatalf("after a jump: %d lost+pending (%d early), want 2999", got, l.lostEarly+early)
	}
}

func rtpPacket(pt uint8, seq uint16, marker bool) []byte {
	b := make([]byte, 20)
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	return b
}

// The wire counts only the video payload types, tells RTCP and non-RTP
// apart, counts frames by marker bit and the time between them, and in
// light mode keeps video RTP from pion but never STUN, DTLS or RTCP.
func TestWireClassifies(t *testing.T) {
	w := &wire{}
	w.setVideoPT(102)
	now := time.Now()
	for i, c := range []struct {
		b    []byte
		pass bool
	}{
		{[]byte{0x00, 0x01, 0, 0}, true},                       // STUN
		{[]byte{22, 0xfe, 0xfd, 0, 0, 0}, true},                // DTLS
		{append([]byte{0x80, 200}, make([]byte, 26)...), true}, // RTCP SR
		{rtpPacket(0, 1, false), true},                         // audio (PCMU)
		{rtpPacket(102, 100, false), true},
		{rtpPacket(102, 101, true), true},
	} {
		if got := w.packet(c.b, now.Add(time.Duration(i)*40*time.Millisecond)); got != c.pass {
			t.Fatalf("datagram %d: pass %v, want %v", i, got, c.pass)
		}
	}
	w.light.Store(true)
	if w.packet(rtpPacket(102, 102, false), now.Add(time.Second)) || w.packet(rtpPacket(0, 2, false), now.Add(time.Second)) {
		t.Fatal("light mode passed RTP to pion")
	}
	if !w.packet(append([]byte{0x80, 201}, make([]byte, 30)...), now.Add(time.Second)) || !w.packet([]byte{0, 1, 0, 0}, now) {
		t.Fatal("light mode kept RTCP or STUN from pion")
	}
	w.packet(rtpPacket(102, 103, true), now.Add(1200*time.Millisecond))
	st := w.stats()
	if st.Packets != 4 || st.Frames != 2 || st.Lost != 0 || st.FrameGapMax < time.Second {
		t.Fatalf("stats %+v", st)
	}
}

// The batched reader returns every datagram, in order, with its source;
// the socket's drop counter reads (0 here).
func TestBatchReader(t *testing.T) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	const n = 40 // more than a batch
	for i := range n {
		if _, err := sc.WriteToUDP([]byte{byte(i), 1, 2, 3}, rc.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	var br batchReader
	for i := range n {
		b, from, err := br.next(rc)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 4 || b[0] != byte(i) || from.Port() != uint16(sc.LocalAddr().(*net.UDPAddr).Port) || !from.Addr().Is4() {
			t.Fatalf("datagram %d: %v from %v", i, b, from)
		}
	}
	if d := socketDrops(rc); d != 0 {
		t.Fatalf("drops %d", d)
	}
}
