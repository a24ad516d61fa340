package rtspserve

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"cordon/internal/testtool"
	"cordon/relay"
)

// BenchmarkFrameWriter: one RTSP/TCP reader's 1080p P-frame (19 packets)
// to a loopback TCP connection, as the frame writer sends it: its own
// records in one Write ("frame": a reader that dropped frames), the
// records another reader built ("shared": every reader that dropped
// nothing, after the first), and one Write per packet ("packet":
// gortsplib's writer, without its queue and closure):
// go test -run '^$' -bench FrameWriter ./relay/rtspserve/
func BenchmarkFrameWriter(b *testing.B) {
	d := benchPFrame()
	for _, name := range []string{"frame", "shared", "packet"} {
		perPacket := name == "packet"
		ssrc := uint32(0xabcd) // not the relay's (1): own records
		if name == "shared" {
			ssrc = 1
		}
		b.Run(name, func(b *testing.B) {
			client, server := tcpPair(b)
			go func() { _, _ = io.Copy(io.Discard, client) }()
			cc := &countConn{Conn: server}
			w := &frameWriter{conn: cc, timeout: 5 * time.Second, chans: []int{0}, ssrcs: []uint32{ssrc}, clocks: []int{90000},
				sr: make([]srState, 1), now: time.Now}
			frame := viewOf(d)
			if name == "shared" { // built by another reader
				if _, ok := frame.Frame.SharedEncoding(0, encodeRecords); !ok {
					b.Fatal("no shared records")
				}
			}
			ones := make([]*relay.View, len(d.Packets))
			for i := range d.Packets {
				ones[i] = viewOf(relay.Delivery{Track: 0, Packets: d.Packets[i : i+1]})
			}
			b.SetBytes(int64(19 * 1132))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if !perPacket {
					if err := w.write(frame); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, one := range ones {
					if err := w.write(one); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cc.writes)/float64(b.N), "writes/frame")
		})
	}
}

// tcpPair is a connected loopback TCP pair: client, server.
func tcpPair(b testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return testtool.DialAccepted(b, ln)
}

// BenchmarkReaderToWire: a relay reader's 1080p P-frames (21 KB, 19
// packets) to a loopback TCP connection through the frame writer, the way
// the pump reads them: "next" with Reader.Next (a copy of the frame's
// packet headers per reader, from the stream's pool, then written from
// the copies: the path before NextView), "view" with Reader.NextView (the
// shared packets, this reader's sequence numbers and timestamps written
// straight into the write buffer). ns/op is per frame (wall clock, with
// the reader's wake-up), cpu-ns/op the pumping thread's CPU time:
// go test -run '^$' -bench ReaderToWire -benchmem ./relay/rtspserve/
func BenchmarkReaderToWire(b *testing.B) {
	for _, path := range []string{"next", "view"} {
		b.Run(path, func(b *testing.B) {
			st := &relay.Stream{Camera: "bench", QueueFrames: 512}
			if err := st.Initialize(); err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := st.CameraConnected([]relay.Track{{Kind: relay.KindVideo, Codec: relay.CodecH264, ClockRate: 90000,
				ParamSets: [][]byte{benchSPS, benchPPS}}}); err != nil {
				b.Fatal(err)
			}
			r, err := st.AddReader(relay.ReaderConf{Protocol: "rtsp"})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			if _, err := r.WaitReady(ctx); err != nil {
				b.Fatal(err)
			}
			client, server := tcpPair(b)
			go func() { _, _ = io.Copy(io.Discard, client) }()
			w := &frameWriter{conn: server, timeout: 5 * time.Second, chans: []int{0}, ssrcs: []uint32{0xabcd}, clocks: []int{90000},
				sr: make([]srState, 1), now: time.Now}
			pslice := make([]byte, 20000)
			pslice[0], pslice[1] = 0x41, 0x9a
			idr := make([]byte, 20000)
			idr[0], idr[1] = 0x65, 0x88
			pts := time.Duration(0)
			unit := func(au [][]byte) {
				pts += 40 * time.Millisecond
				if err := st.WriteUnit(relay.Unit{Track: 0, PTS: pts, AU: au}); err != nil {
					b.Fatal(err)
				}
			}
			unit([][]byte{benchSPS, benchPPS, idr})
			var ptrs []*rtp.Packet
			view := relay.View{Frame: &relay.Frame{}}
			pump := func() {
				if path == "view" {
					v, err := r.NextView(ctx)
					if err == nil {
						err = w.write(&v)
					}
					if err != nil {
						b.Fatal(err)
					}
					return
				}
				d, err := r.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				ptrs = ptrs[:0]
				for i := range d.Packets {
					ptrs = append(ptrs, &d.Packets[i])
				}
				*view.Frame = relay.Frame{Track: d.Track, Packets: ptrs}
				view.Primed, view.Backlog = d.Primed, d.Backlog
				if err := w.write(&view); err != nil {
					b.Fatal(err)
				}
			}
			pump() // the keyframe
			b.SetBytes(20000)
			b.ReportAllocs()
			runtime.LockOSThread() // threadCPU is this thread's
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			var cpu time.Duration
			for done := 0; done < b.N; {
				n := min(256, b.N-done)
				b.StopTimer() // the camera side: sanitize, packetize, queue
				for range n {
					unit([][]byte{pslice})
				}
				b.StartTimer()
				c := threadCPU()
				for range n {
					pump()
				}
				cpu += threadCPU() - c
				done += n
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// A real x264 SPS/PPS (baseline 3.0, 640x480): the sanitizer drops
// parameter sets that do not parse.
var (
	benchSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48}
	benchPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

// BenchmarkFrameWriterReaders: the user-space cost of one new 1080p
// P-frame (19 packets) for 50 RTSP/TCP readers, without the system calls
// (each reader's connection discards): every reader building its own
// records ("own": readers that dropped frames, or before the records
// were shared) against the first building them and the others writing
// that slice ("shared"). ns/op is per frame for all 50 readers.
func BenchmarkFrameWriterReaders(b *testing.B) {
	d := benchPFrame()
	for _, name := range []string{"own", "shared"} {
		ssrc := uint32(0xabcd)
		if name == "shared" {
			ssrc = 1
		}
		b.Run(name, func(b *testing.B) {
			ws := make([]*frameWriter, 50)
			for i := range ws {
				ws[i] = &frameWriter{conn: discardConn{}, timeout: 5 * time.Second, chans: []int{0}, ssrcs: []uint32{ssrc}, clocks: []int{90000},
					sr: make([]srState, 1), now: time.Now}
			}
			b.SetBytes(int64(50 * 19 * 1132))
			b.ReportAllocs()
			for b.Loop() {
				frame := viewOf(d) // a new frame, as the relay publishes
				for _, w := range ws {
					if err := w.write(frame); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchPFrame is a 1080p P-frame as the relay sends it: 19 packets, SSRC 1.
func benchPFrame() relay.Delivery {
	d := relay.Delivery{Track: 0}
	for i := range 19 {
		n := 1128
		if i == 18 {
			n = 700
		}
		d.Packets = append(d.Packets, rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: 3600,
			SSRC: 1, Marker: i == 18}, Payload: bytes.Repeat([]byte{byte(i)}, n)})
	}
	return d
}
