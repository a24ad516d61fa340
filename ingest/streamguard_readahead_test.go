package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/conn"

	"cordon/internal/testtool"
)

// readCounter counts the Read calls that reach the camera's socket.
type readCounter struct {
	net.Conn
	reads atomic.Int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// guardedPair is a loopback TCP connection: the camera's end, and
// cordon's end read through a stream guard of a session of p, as
// gortsplib reads it (a 4 KiB bufio.Reader under pkg/conn).
func guardedPair(t *testing.T, p *Puller) (camera net.Conn, rc *readCounter, g *streamGuard, c *conn.Conn) {
	t.Helper()
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, camera := testtool.DialAccepted(t, ln)
	s := &session{c: p, faultCh: make(chan struct{}), rate: newByteBucket(p.Limits.MaxBitrate, p.Limits.BitrateWindow), media: newMediaGuard()}
	s.channels.add(0)
	rc = &readCounter{Conn: dialed}
	g = newStreamGuard(rc, rc, s)
	return camera, rc, g, conn.NewConn(bufio.NewReader(g), g)
}

// TestStreamGuardReadsAhead: a frame's worth of interleaved RTP that the
// camera sent at once reaches gortsplib unchanged through a handful of
// socket reads, not one per 4 KiB.
func TestStreamGuardReadsAhead(t *testing.T) {
	camera, rc, _, c := guardedPair(t, &Puller{ID: "cam1", URL: mustURL(t, "rtsp://127.0.0.1:554/x")})
	var sent bytes.Buffer
	var payloads [][]byte
	for i := range 30 { // 30 packets of 1400 bytes: about 42 KB, ten 4 KiB reads
		pl := bytes.Repeat([]byte{byte(i)}, 1400)
		payloads = append(payloads, pl)
		b, err := (&base.InterleavedFrame{Channel: 0, Payload: pl}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		sent.Write(b)
	}
	if _, err := camera.Write(sent.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = camera.Close()
	for i, want := range payloads {
		msg, err := c.Read()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		f, ok := msg.(*base.InterleavedFrame)
		if !ok || f.Channel != 0 || !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame %d differs from what the camera sent", i)
		}
	}
	if _, err := c.Read(); err == nil {
		t.Fatal("read past the camera's close")
	}
	// the 42 KB may arrive in more than one segment; without the read-ahead
	// it took at least 11 reads
	if n := rc.reads.Load(); n > 5 {
		t.Fatalf("%d socket reads for 42 KB; want the guard to read ahead", n)
	}
}

// TestStreamGuardReadAheadStillBounds: bytes read ahead are checked when
// they arrive: over the bitrate bound the read fails with the violation
// and the connection is closed, before gortsplib sees the frames.
func TestStreamGuardReadAheadStillBounds(t *testing.T) {
	p := &Puller{ID: "cam1", URL: mustURL(t, "rtsp://127.0.0.1:554/x")}
	p.Limits.MaxBitrate, p.Limits.BitrateWindow = 8000, 1e9 // 1 kB in the bucket
	camera, _, g, c := guardedPair(t, p)
	b, err := (&base.InterleavedFrame{Channel: 0, Payload: make([]byte, 5000)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := camera.Write(b); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read()
	var v *Violation
	if !errors.As(err, &v) || v.Reason != ReasonBitrate {
		t.Fatalf("read: %v; want the bitrate violation", err)
	}
	if _, err := g.Read(make([]byte, 10)); !errors.As(err, &v) {
		t.Fatalf("a read after the violation: %v; want the violation again", err)
	}
}
