package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"cordon/relay"
)

// fuzzSep separates the camera's answers in a FuzzCameraRTSP input.
var fuzzSep = []byte("\x00|\x00")

const fuzzCamPassword = "fuzz-Camera-pw-77"

// fuzzSinkStream is a real relay.Stream that also tells when the ingest
// session ended.
type fuzzSinkStream struct {
	*relay.Stream
	once      sync.Once
	done      chan struct{}
	mu        sync.Mutex
	connected int
	units     int
}

func (s *fuzzSinkStream) CameraConnected(tr []relay.Track) error {
	s.mu.Lock()
	s.connected++
	s.mu.Unlock()
	return s.Stream.CameraConnected(tr)
}

func (s *fuzzSinkStream) WriteUnit(u relay.Unit) error {
	s.mu.Lock()
	s.units++
	s.mu.Unlock()
	return s.Stream.WriteUnit(u)
}

func (s *fuzzSinkStream) CameraDisconnected(err error) {
	s.Stream.CameraDisconnected(err)
	s.once.Do(func() { close(s.done) })
}

// fuzzCameraServer plays the scripted answers: after each request from
// cordon (or 30 ms without one) it writes the next answer, then it closes
// the connection. It accepts a single connection.
func fuzzCameraServer(l net.Listener, answers [][]byte, wg *sync.WaitGroup) {
	defer wg.Done()
	c, err := l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	var pending []byte
	for _, a := range answers {
		// wait for the end of a request (or give up waiting)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		for !bytes.Contains(pending, []byte("\r\n\r\n")) {
			n, err := c.Read(buf)
			pending = append(pending, buf[:n]...)
			if err != nil {
				break
			}
		}
		if i := bytes.Index(pending, []byte("\r\n\r\n")); i >= 0 {
			pending = pending[i+4:]
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(a); err != nil {
			return
		}
	}
}

// fuzzConversation is a valid camera: OPTIONS, DESCRIBE, SETUP, PLAY
// answers, the last one followed by interleaved RTP (SPS, PPS, IDR).
func fuzzConversation() []byte {
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1;sprop-parameter-sets=" + base64.StdEncoding.EncodeToString(sps) + "," + base64.StdEncoding.EncodeToString(pps) +
		"\r\na=control:trackID=0\r\n"
	answers := []string{
		"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER\r\n\r\n",
		fmt.Sprintf("RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Base: rtsp://127.0.0.1/s/\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp),
		"RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1234;timeout=60\r\n\r\n",
		"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 1234\r\n\r\n",
	}
	var b bytes.Buffer
	for i, a := range answers {
		if i > 0 {
			b.Write(fuzzSep)
		}
		b.WriteString(a)
	}
	for i, n := range [][]byte{sps, pps, append([]byte{0x65, 0x88}, make([]byte, 200)...), {0x41, 0x9a, 1, 2}} {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i/3) * 3000, Marker: i >= 2}, Payload: n}
		raw, _ := p.Marshal()
		b.Write([]byte{'$', 0, byte(len(raw) >> 8), byte(len(raw))})
		b.Write(raw)
	}
	return b.Bytes()
}

// FuzzCameraRTSP plays arbitrary camera answers (status lines, headers,
// SDP, interleaved frames) to the ingest path through a real TCP socket:
// gortsplib's client, the guard (redirects, bounds, tokenizer), track
// selection, depacketizing and a real relay.Stream behind it. Answers are
// separated by "\x00|\x00", one per request. Nothing may panic, hang or
// leak a goroutine, and the camera's password must never show in its last
// error.
func FuzzCameraRTSP(f *testing.F) {
	conv := fuzzConversation()
	f.Add(conv)
	f.Add([]byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n\x00|\x00RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: rtsp://user:pw@10.9.9.9:554/x\r\n\r\n"))
	f.Add([]byte("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n\x00|\x00RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n"))
	f.Add(bytes.ReplaceAll(conv, []byte("interleaved=0-1"), []byte("interleaved=0-1;source=10.1.1.1;destination=10.2.2.2")))
	f.Add(append([]byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\nX: "), bytes.Repeat([]byte("y"), 20000)...))
	f.Add(append([]byte("$\x05\x00\x04abcd"), conv...))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, _ := playCamera(t, data)
		if strings.Contains(msg, fuzzCamPassword) {
			t.Fatalf("last error shows the password: %q", msg)
		}
	})
}

// playCamera runs one Pull against the scripted camera and returns why it
// ended ("" when it did not fail) and the sink.
func playCamera(t *testing.T, data []byte) (string, *fuzzSinkStream) {
	answers := bytes.Split(data, fuzzSep)
	if len(answers) > 8 {
		answers = answers[:8]
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go fuzzCameraServer(l, answers, &wg)
	st := &relay.Stream{Camera: "fuzz", QueueFrames: 8}
	if err := st.Initialize(); err != nil {
		t.Fatal(err)
	}
	sink := &fuzzSinkStream{Stream: st, done: make(chan struct{})}
	u, _ := url.Parse("rtsp://cam:" + fuzzCamPassword + "@" + l.Addr().String() + "/s")
	p := &Puller{ID: "fuzz", URL: u, Transport: "tcp", ReadTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = p.Pull(ctx, sink, &fakeObserver{})
	if ctx.Err() != nil {
		t.Fatal("the session did not end")
	}
	sink.CameraDisconnected(err)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	st.Close()
	_ = l.Close()
	wg.Wait()
	return msg, sink
}

// TestFuzzConversationPlays: the fuzz target's main seed really gets
// through PLAY to media (the fuzzer mutates from there).
func TestFuzzConversationPlays(t *testing.T) {
	_, sink := playCamera(t, fuzzConversation())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.connected != 1 || sink.units < 1 {
		t.Fatalf("connected %d times, %d units", sink.connected, sink.units)
	}
}
