package rtspserve

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"cordon/internal/connlimit"
	"cordon/internal/testtool"
	"cordon/relay"
)

// knownFrame is a frame with every kind of packet the frame writer
// handles: full-size FU-A payloads, small ones, and a header with a CSRC
// list (pion's marshaller), sequence numbers and timestamps about to wrap.
// Every payload byte depends on its packet and offset, so a misplaced byte
// shows.
func knownFrame(packets int) relay.Delivery {
	d := relay.Delivery{Track: 0}
	for i := range packets {
		n := 1100
		switch i % 7 {
		case 3:
			n = 40
		case 5:
			n = 256
		}
		pl := make([]byte, n)
		for j := range pl {
			pl[j] = byte(i*31 + j*7)
		}
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(65530 + i), Timestamp: 0xfffffff0, SSRC: 1,
			Marker: i == packets-1}
		if i == 2 {
			h.CSRC = []uint32{5, 6}
		}
		d.Packets = append(d.Packets, rtp.Packet{Header: h, Payload: pl})
	}
	return d
}

// expectRecords is what a reader whose packets are shifted by seqDelta
// and tsDelta must receive for d on channel ch with the session's ssrc,
// built with pion's marshallers (not the frame writer's code), then the
// sender report due at now.
func expectRecords(t testing.TB, d relay.Delivery, seqDelta uint16, tsDelta uint32, ch byte, ssrc uint32, now time.Time) []byte {
	var out []byte
	var octets uint32
	for _, p := range d.Packets {
		c := p
		c.SSRC = ssrc
		c.SequenceNumber -= seqDelta
		c.Timestamp += tsDelta
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, '$', ch)
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
		octets += uint32(len(p.Payload))
	}
	last := d.Packets[len(d.Packets)-1]
	sr, err := (&rtcp.SenderReport{SSRC: ssrc, NTPTime: ntpTime(now), RTPTime: last.Timestamp + tsDelta,
		PacketCount: uint32(len(d.Packets)), OctetCount: octets}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '$', ch+1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(sr)))
	return append(out, sr...)
}

// The bytes a reader receives for a known frame are exactly the expected
// interleaved records and sender report, with this reader's SSRC,
// sequence numbers and timestamps (the relay's shared packets shifted by
// the reader's deltas; or the relay's own, from the records readers
// share), on each kind of connection: plain TCP, TCP behind
// the connection limiter (as the gateway's listener), TLS and a pipe. A
// frame larger than frameBufLimit is split across writes without a byte
// out of place. The four writers read the same shared packets, and build
// or share the same records, at once: -race flags a write to them, and
// they must be unchanged afterwards.
func TestFrameWriterExactBytes(t *testing.T) {
	small, big := knownFrame(23), knownFrame(1500) // big: > frameBufLimit
	orig := map[*byte][]byte{}
	for _, d := range []relay.Delivery{small, big} {
		for _, p := range d.Packets {
			orig[&p.Payload[0]] = bytes.Clone(p.Payload)
		}
	}
	now := time.Now() // the write deadline is set from it: net.Conn checks the real clock
	conns := []struct {
		name string
		pair func(t *testing.T) (client, server net.Conn)
	}{
		{"tcp", func(t *testing.T) (net.Conn, net.Conn) { return tcpPair(t) }},
		{"connlimit", limitedPair},
		{"tls", tlsPair},
		{"pipe", func(*testing.T) (net.Conn, net.Conn) { a, b := net.Pipe(); return b, a }},
	}
	// a reader that dropped frames (deltas) writes its own records; one
	// that dropped nothing and announced the relay's SSRC (1 here) writes
	// the records the first such reader built (relay.Frame.SharedEncoding)
	views := []*relay.View{viewOf(small), viewOf(big), viewOf(small), viewOf(big)}
	views[0].SeqDelta, views[0].TSDelta = 9, 1000 // wraps both
	views[1].SeqDelta = 65535
	ssrcs := []uint32{0x1234abcd, 0x1234abcd, 1, 1}
	var wants [][]byte
	for i, d := range []relay.Delivery{small, big, small, big} {
		wants = append(wants, expectRecords(t, d, views[i].SeqDelta, views[i].TSDelta, 4, ssrcs[i], now))
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		client, server := c.pair(t)
		w := &frameWriter{conn: server, timeout: 10 * time.Second, chans: []int{4}, ssrcs: []uint32{0x1234abcd},
			clocks: []int{90000}, sr: make([]srState, 1), now: func() time.Time { return now }}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, v := range views {
				// each frame starts a sender report period of its own
				w.sr[0], w.ssrcs[0] = srState{}, ssrcs[i]
				want := wants[i]
				got := make(chan []byte, 1)
				go func() {
					b := make([]byte, len(want))
					_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
					n, _ := io.ReadFull(client, b)
					got <- b[:n]
				}()
				if err := w.write(v); err != nil {
					t.Errorf("%s frame %d: %v", c.name, i, err)
					return
				}
				if b := <-got; !bytes.Equal(b, want) {
					t.Errorf("%s frame %d: %d bytes received, first difference at %d of %d", c.name, i, len(b), firstDiff(b, want), len(want))
				}
			}
		}()
	}
	wg.Wait()
	for _, d := range []relay.Delivery{small, big} {
		fresh := knownFrame(len(d.Packets))
		for i, p := range d.Packets {
			if !bytes.Equal(p.Payload, orig[&p.Payload[0]]) {
				t.Fatal("a shared payload was written to")
			}
			if f := fresh.Packets[i].Header; p.SequenceNumber != f.SequenceNumber || p.Timestamp != f.Timestamp || p.SSRC != f.SSRC {
				t.Fatal("a shared header was written to")
			}
		}
	}
}

// viewOf is d as the relay's shared frame (no deltas).
func viewOf(d relay.Delivery) *relay.View {
	f := &relay.Frame{Track: d.Track, Key: d.Key}
	for i := range d.Packets {
		f.Packets = append(f.Packets, &d.Packets[i])
		f.Bytes += len(d.Packets[i].Payload)
	}
	return &relay.View{Frame: f, Primed: d.Primed, Backlog: d.Backlog}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// limitedPair is a TCP pair whose server side is accepted through
// internal/connlimit, as the gateway's RTSP listener is.
func limitedPair(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &connlimit.Listener{Listener: ln, Protocol: "rtsp", IdleTimeout: time.Minute}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return testtool.DialAccepted(t, l)
}

// tlsPair is a TLS pair over loopback TCP with a throwaway certificate.
func tlsPair(t *testing.T) (net.Conn, net.Conn) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	c, s := tcpPair(t)
	client := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a throwaway certificate on loopback
	server := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
