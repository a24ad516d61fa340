package ingest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/democam"

	"github.com/pion/rtp"
)

// A real 352x288 H.264 SPS (from mediacommon's tests) and a typical PPS,
// as announced by hikSDP and the SDP tests.
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x0c, 0xac, 0x3b, 0x50, 0xb0, 0x4b, 0x42, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3d, 0x08}
	testPPS = []byte{0x68, 0xee, 0x3c, 0x80}
)

// hikSDP has vendor attributes and a private "m=vana" track, which
// gortsplib's SDP parser rejects outright.
const hikSDP = `v=0
o=- 1109162014219182 1109162014219182 IN IP4 0.0.0.0
s=HIK Media Server V3.4.106
i=HIK Media Server Session Description : standard
e=NONE
c=IN IP4 0.0.0.0
t=0 0
a=control:*
b=AS:4106
a=range:npt=now-
m=video 0 RTP/AVP 96
i=Video Media
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=4D0014;packetization-mode=0;sprop-parameter-sets=Z2QADKw7ULBLQgAAAwACAAADAD0I,aO48gA==
a=control:trackID=video
b=AS:4096
a=Media_header:MEDIAINFO=494D4B48010100000400000100000000000000000000000000000000000000000000000000000000;
a=appversion:1.0
m=vana 0 RTP/AVP 98
a=rtpmap:98 video.analysis/90000
a=control:trackID=vana
`

// rawCam is a minimal hand-written RTSP camera (TCP interleaved only) that
// answers with hikSDP and streams single-NAL H.264 packets.
type rawCam struct {
	l      net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	setups []string
}

func newRawCam(t *testing.T) *rawCam {
	l, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawCam{l: l}
	rc.wg.Add(1)
	go func() {
		defer rc.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			rc.wg.Add(1)
			go func() { defer rc.wg.Done(); rc.serve(c) }()
		}
	}()
	t.Cleanup(func() { l.Close(); rc.wg.Wait() })
	return rc
}

func (rc *rawCam) serve(c net.Conn) {
	defer c.Close()
	stop := make(chan struct{})
	var streamWG sync.WaitGroup
	defer func() { close(stop); streamWG.Wait() }()
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Write(b)
		return err
	}
	br := bufio.NewReader(c)
	for {
		line, h, _, err := democam.ReadRTSPRequest(br)
		if err != nil {
			return
		}
		method, uri, _ := strings.Cut(line, " ")
		cseq := h.Get("Cseq")
		res := "RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\nServer: Hikvision-Webs\r\n"
		body := ""
		switch method {
		case "OPTIONS":
			res += "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
		case "DESCRIBE":
			body = strings.ReplaceAll(hikSDP, "\n", "\r\n")
			res += "Content-Type: application/sdp\r\nContent-Base: " + strings.Fields(uri)[0] + "/\r\n"
		case "SETUP":
			rc.mu.Lock()
			rc.setups = append(rc.setups, strings.Fields(uri)[0])
			rc.mu.Unlock()
			res += "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678;timeout=60\r\n"
		case "PLAY":
			res += "Session: 12345678\r\n"
		case "TEARDOWN", "GET_PARAMETER":
		default:
			res = "RTSP/1.0 501 Not Implemented\r\nCSeq: " + cseq + "\r\n"
		}
		res += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		if write([]byte(res)) != nil {
			return
		}
		if method == "PLAY" { // media after the PLAY answer, as a camera sends it
			streamWG.Add(1)
			go func() {
				defer streamWG.Done()
				rc.stream(write, stop)
			}()
		}
	}
}

func (rc *rawCam) stream(write func([]byte) error, stop chan struct{}) {
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	ts := uint32(123456)
	for frame := 0; ; frame++ {
		au := [][]byte{{0x41, 0x9a, byte(frame)}}
		if frame%10 == 0 {
			au = [][]byte{testSPS, testPPS, append([]byte{0x65}, make([]byte, 300)...)}
		}
		for _, n := range au {
			seq++
			// Hikvision-style: the marker bit on every NAL unit
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 42, Marker: true}, Payload: n}
			b, _ := p.Marshal()
			frame := append([]byte{'$', 0, byte(len(b) >> 8), byte(len(b))}, b...)
			if write(frame) != nil {
				return
			}
		}
		ts += 3600
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

func TestVendorSDPWithUnparseableTrack(t *testing.T) {
	rc := newRawCam(t)
	p := startPull(t, "rtsp://admin:12345abc@"+rc.l.Addr().String()+"/Streaming/Channels/101", func(p *Puller) { p.Transport = "auto" })
	p.connected(t, 5*time.Second)
	p.waitUnits(t, 10, 0)
	p.stop()
	conn, transport, dropped := p.obs.get()
	if transport != "TCP" || conn.VideoCodec != "H264" {
		t.Fatalf("connection %+v transport %q", conn, transport)
	}
	if len(dropped) != 1 || !strings.HasPrefix(dropped[0], "other:") {
		t.Fatalf("dropped %q", dropped)
	}
	rc.mu.Lock()
	setups := rc.setups
	rc.mu.Unlock()
	if len(setups) != 1 || !strings.HasSuffix(setups[0], "trackID=video") {
		t.Fatalf("SETUPs %q", setups)
	}
	conns, units := p.sink.snapshot()
	checkUnits(t, units, conns[0], 0)
	if strings.Contains(p.logs.String(), "12345abc") {
		t.Fatal("password logged")
	}
}
