package rtspserve

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"

	"cordon/relay"
)

// BenchmarkFrameWriter: one RTSP/TCP reader's 1080p P-frame (19 packets)
// to a loopback TCP connection, as the frame writer sends it (one Write
// per frame) and one Write per packet (gortsplib's writer, without its
// queue and closure): go test -run '^$' -bench FrameWriter ./relay/rtspserve/
func BenchmarkFrameWriter(b *testing.B) {
	d := relay.Delivery{Track: 0}
	for i := range 19 {
		n := 1128
		if i == 18 {
			n = 700
		}
		d.Packets = append(d.Packets, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: 3600,
			SSRC: 1, Marker: i == 18}, Payload: bytes.Repeat([]byte{byte(i)}, n)})
	}
	for _, perPacket := range []bool{false, true} {
		name := "frame"
		if perPacket {
			name = "packet"
		}
		b.Run(name, func(b *testing.B) {
			client, server := tcpPair(b)
			go func() { _, _ = io.Copy(io.Discard, client) }()
			cc := &countConn{Conn: server}
			w := &frameWriter{conn: cc, timeout: 5 * time.Second, chans: []int{0}, ssrcs: []uint32{0xabcd}, clocks: []int{90000},
				sr: make([]srState, 1), now: time.Now}
			one := relay.Delivery{Track: 0, Packets: make([]rtp.Packet, 1)}
			b.SetBytes(int64(19 * 1132))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if !perPacket {
					if err := w.write(&d); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for i := range d.Packets {
					one.Packets[0] = d.Packets[i]
					if err := w.write(&one); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cc.writes)/float64(b.N), "writes/frame")
		})
	}
}

// tcpPair is a connected loopback TCP pair.
func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server := <-acc
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
