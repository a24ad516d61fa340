package ingest

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"cordon/relay"
)

// A real 352x288 H.264 SPS (from mediacommon's tests) and a typical PPS.
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x0c, 0xac, 0x3b, 0x50, 0xb0, 0x4b, 0x42, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3d, 0x08}
	testPPS = []byte{0x68, 0xee, 0x3c, 0x80}
)

// H.265 parameter sets: NAL headers VPS (32), SPS (33), PPS (34); the
// bodies only need to survive gortsplib's SDP handling.
var (
	testVPS    = mustB64("QAEMAf//AWAAAAMAkAAAAwAAAwBdlZgJ")
	testSPS265 = mustB64("QgEBAWAAAAMAkAAAAwAAAwBdoAKAgC0WWVmkkyvAQEAAAAMAQAAABkI=")
	testPPS265 = mustB64("RAHBcrRiQA==")
)

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// audioFrameSize is the size of the fake camera's audio frames.
func audioFrameSize(codec string) int {
	switch codec {
	case "opus":
		return 80
	case "aac":
		return 100
	}
	return 160
}

// camOpts configures a fake camera: an in-process gortsplib server that
// publishes synthetic H.264 (+ PCMU) on a loopback host.
type camOpts struct {
	host        string // e.g. 127.0.0.2
	user, pass  string // require credentials when user != ""
	authMethods []auth.VerifyMethod
	audio       bool   // an audio track (PCMU unless audioCodec says otherwise)
	audioCodec  string // "", "opus", "aac"
	h265        bool   // H.265 video instead of H.264
	metadata    bool   // ONVIF metadata application track
	udp         bool   // enable UDP transport on the server
	idleTimeout time.Duration
	// mode0: packetization-mode=0, every NAL unit in its own packet, and
	// the marker bit set on SPS and PPS packets too (field quirk).
	mode0 bool
	// noMarker: never set the marker bit (units split by timestamp).
	noMarker bool
	bigIDR   bool // IDR large enough to need FU-A
}

type fakeCam struct {
	t    *testing.T
	opts camOpts
	port int
	udpP int // RTP port (RTCP = +1)

	mu       sync.Mutex
	srv      *gortsplib.Server
	stream   *gortsplib.ServerStream
	video    *description.Media
	audioM   *description.Media
	meta     *description.Media
	setups   []string
	methods  map[base.Method]int
	conns    []time.Time
	sessions int // sessions closed
	stopPub  chan struct{}
	pubDone  chan struct{}
	paused   atomic.Bool
}

func freeTCPPort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPair(t *testing.T, host string) int {
	t.Helper()
	for range 100 {
		p := 20000 + 2*rand.IntN(15000)
		a, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p+1)))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free UDP port pair")
	return 0
}

func newFakeCam(t *testing.T, o camOpts) *fakeCam {
	t.Helper()
	if o.host == "" {
		o.host = "127.0.0.2"
	}
	fc := &fakeCam{t: t, opts: o, methods: map[base.Method]int{}}
	fc.port = freeTCPPort(t, o.host)
	if o.udp {
		fc.udpP = freeUDPPair(t, o.host)
	}
	fc.start()
	t.Cleanup(fc.stop)
	return fc
}

// url returns the camera URL, with userinfo when given.
func (fc *fakeCam) url(user, pass string) string {
	ui := ""
	if user != "" {
		ui = user + ":" + pass + "@"
	}
	return fmt.Sprintf("rtsp://%s%s:%d/stream1", ui, fc.opts.host, fc.port)
}

func (fc *fakeCam) start() {
	t := fc.t
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.srv != nil {
		return
	}
	srv := &gortsplib.Server{
		Handler:     fc,
		RTSPAddress: net.JoinHostPort(fc.opts.host, strconv.Itoa(fc.port)),
		IdleTimeout: fc.opts.idleTimeout,
		AuthMethods: fc.opts.authMethods,
	}
	if fc.opts.udp {
		srv.UDPRTPAddress = net.JoinHostPort(fc.opts.host, strconv.Itoa(fc.udpP))
		srv.UDPRTCPAddress = net.JoinHostPort(fc.opts.host, strconv.Itoa(fc.udpP+1))
	}
	var err error
	for range 50 { // the port may linger briefly after a restart
		if err = srv.Start(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("fake camera start: %v", err)
	}
	pm := 1 // the server refuses mode 0 at Initialize: set it afterwards
	fc.video = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, SPS: testSPS, PPS: testPPS, PacketizationMode: pm,
	}}}
	if fc.opts.h265 {
		fc.video.Formats = []format.Format{&format.H265{PayloadTyp: 96, VPS: testVPS, SPS: testSPS265, PPS: testPPS265}}
	}
	desc := &description.Session{Medias: []*description.Media{fc.video}}
	if fc.opts.metadata {
		g := &format.Generic{PayloadTyp: 107, RTPMa: "vnd.onvif.metadata/90000"}
		if err := g.Init(); err != nil {
			t.Fatal(err)
		}
		fc.meta = &description.Media{Type: description.MediaTypeApplication, Formats: []format.Format{g}}
		desc.Medias = append(desc.Medias, fc.meta)
	}
	if fc.opts.audio {
		fc.audioM = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{
			PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1,
		}}}
		switch fc.opts.audioCodec {
		case "opus":
			fc.audioM.Formats = []format.Format{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}
		case "aac":
			fc.audioM.Formats = []format.Format{&format.MPEG4Audio{PayloadTyp: 97, Config: &mpeg4audio.AudioSpecificConfig{
				Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelConfig: 1,
			}, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}}
		}
		desc.Medias = append(desc.Medias, fc.audioM)
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := st.Initialize(); err != nil {
		t.Fatal(err)
	}
	if fc.opts.mode0 {
		// ReloadDesc re-reads the format without the Initialize check
		fc.video.Formats[0].(*format.H264).PacketizationMode = 0
		st.ReloadDesc()
	}
	fc.srv, fc.stream = srv, st
	fc.stopPub, fc.pubDone = make(chan struct{}), make(chan struct{})
	go fc.publish(st, fc.video, fc.audioM, fc.meta, fc.stopPub, fc.pubDone)
}

// stop kills the camera (server and every connection).
func (fc *fakeCam) stop() {
	fc.mu.Lock()
	srv, st, stopPub, pubDone := fc.srv, fc.stream, fc.stopPub, fc.pubDone
	fc.srv, fc.stream = nil, nil
	fc.mu.Unlock()
	if srv == nil {
		return
	}
	close(stopPub)
	<-pubDone
	st.Close()
	srv.Close()
}

func (fc *fakeCam) connCount() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.conns)
}

func (fc *fakeCam) methodCount(m base.Method) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.methods[m]
}

func (fc *fakeCam) setupURLs() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]string(nil), fc.setups...)
}

func (fc *fakeCam) publish(st *gortsplib.ServerStream, video, audio, meta *description.Media, stop, done chan struct{}) {
	defer close(done)
	var encode func([][]byte) ([]*rtp.Packet, error)
	if fc.opts.h265 {
		enc := &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: 1200}
		if err := enc.Init(); err != nil {
			panic(err)
		}
		encode = enc.Encode
	} else {
		enc := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: 1200, PacketizationMode: 1}
		if err := enc.Init(); err != nil {
			panic(err)
		}
		encode = enc.Encode
	}
	var aacEnc *rtpmpeg4audio.Encoder
	if audio != nil {
		if f, ok := audio.Formats[0].(*format.MPEG4Audio); ok {
			var err error
			if aacEnc, err = f.CreateEncoder(); err != nil {
				panic(err)
			}
		}
	}
	var aSeq, vSeq uint16
	vTS := rand.Uint32()
	aTS := rand.Uint32()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if fc.paused.Load() {
			continue
		}
		now := time.Now()
		if audio != nil {
			payload := make([]byte, audioFrameSize(fc.opts.audioCodec))
			for i := range payload {
				payload[i] = 0xff
			}
			if fc.opts.audioCodec == "opus" {
				payload[0] = 0xfc // TOC: one frame (code 0); 0xff would be a padded code-3 packet
			}
			aSeq++
			pkts := []*rtp.Packet{{Header: rtp.Header{
				Version: 2, PayloadType: audio.Formats[0].PayloadType(), SequenceNumber: aSeq, Timestamp: aTS, SSRC: 1234, Marker: true,
			}, Payload: payload}}
			switch fc.opts.audioCodec {
			case "opus":
				aTS += 960 // 20 ms at 48 kHz
			case "aac":
				var err error
				if pkts, err = aacEnc.Encode([][]byte{payload}); err != nil {
					panic(err)
				}
				for _, p := range pkts {
					p.Timestamp = aTS
				}
				aTS += 320 // one frame per 20 ms tick at 16 kHz (real AAC frames are 1024 samples)
			default:
				aTS += 160
			}
			for _, p := range pkts {
				_ = st.WritePacketRTPWithNTP(audio, p, now)
			}
		}
		if meta != nil && n%25 == 0 {
			_ = st.WritePacketRTPWithNTP(meta, &rtp.Packet{Header: rtp.Header{
				Version: 2, PayloadType: 107, SequenceNumber: uint16(n), Timestamp: vTS, SSRC: 99, Marker: true,
			}, Payload: []byte("<tt:MetadataStream/>")}, now)
		}
		if n%2 == 0 {
			frame := n / 2
			var au [][]byte
			idrSize := 200
			if fc.opts.bigIDR {
				idrSize = 3000
			}
			switch {
			case fc.opts.h265 && frame%10 == 0:
				idr := make([]byte, idrSize)
				idr[0], idr[1] = 19<<1, 1 // IDR_W_RADL
				au = [][]byte{testVPS, testSPS265, testPPS265, idr}
			case fc.opts.h265:
				au = [][]byte{{1 << 1, 1, 0xd0, byte(frame)}} // TRAIL_R
			case frame%10 == 0:
				idr := make([]byte, idrSize)
				idr[0] = 0x65
				au = [][]byte{testSPS, testPPS, idr}
			default:
				au = [][]byte{{0x41, 0x9a, byte(frame)}}
			}
			var pkts []*rtp.Packet
			if fc.opts.mode0 || fc.opts.noMarker {
				for _, nalu := range au {
					pkts = append(pkts, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 5678,
						Marker: fc.opts.mode0}, Payload: nalu})
				}
			} else {
				var err error
				pkts, err = encode(au)
				if err != nil {
					panic(err)
				}
			}
			for _, p := range pkts {
				vSeq++
				p.SequenceNumber = vSeq
				p.Timestamp = vTS
				if fc.opts.noMarker {
					p.Marker = false
				}
				_ = st.WritePacketRTPWithNTP(video, p, now)
			}
			vTS += 3600 // 25 fps at 90 kHz
		}
		n++
	}
}

// Server handler.

func (fc *fakeCam) OnConnOpen(*gortsplib.ServerHandlerOnConnOpenCtx) {
	fc.mu.Lock()
	fc.conns = append(fc.conns, time.Now())
	fc.mu.Unlock()
}

func (fc *fakeCam) OnSessionClose(*gortsplib.ServerHandlerOnSessionCloseCtx) {
	fc.mu.Lock()
	fc.sessions++
	fc.mu.Unlock()
}

func (fc *fakeCam) OnRequest(_ *gortsplib.ServerConn, req *base.Request) {
	fc.mu.Lock()
	fc.methods[req.Method]++
	if req.Method == base.Setup {
		fc.setups = append(fc.setups, req.URL.Path)
	}
	fc.mu.Unlock()
}

func (fc *fakeCam) checkAuth(sc *gortsplib.ServerConn, req *base.Request) bool {
	if fc.opts.user == "" {
		return true
	}
	return sc.VerifyCredentials(req, fc.opts.user, fc.opts.pass)
}

func (fc *fakeCam) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !fc.checkAuth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, fc.stream, nil
}

func (fc *fakeCam) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !fc.checkAuth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, fc.stream, nil
}

func (fc *fakeCam) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// fakeSink records what a camera hands to its Stream.
type fakeSink struct {
	mu          sync.Mutex
	connected   [][]relay.Track
	units       []relay.Unit
	unitConn    []int // index into connected of each unit
	disconnects []error
	// failAfter > 0: WriteUnit returns failErr on that many-th unit of a
	// connection.
	failAfter int
	failErr   error
	perConn   int
	events    chan string
}

func newFakeSink() *fakeSink { return &fakeSink{events: make(chan string, 10000)} }

func (s *fakeSink) CameraConnected(tr []relay.Track) error {
	s.mu.Lock()
	s.connected = append(s.connected, tr)
	s.perConn = 0
	s.mu.Unlock()
	s.events <- "connected"
	return nil
}

func (s *fakeSink) WriteUnit(u relay.Unit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perConn++
	if s.failAfter > 0 && s.perConn == s.failAfter {
		return s.failErr
	}
	au := make([][]byte, len(u.AU))
	for i, b := range u.AU {
		au[i] = append([]byte(nil), b...)
	}
	u.AU = au
	s.units = append(s.units, u)
	s.unitConn = append(s.unitConn, len(s.connected)-1)
	return nil
}

func (s *fakeSink) CameraDisconnected(err error) {
	s.mu.Lock()
	s.disconnects = append(s.disconnects, err)
	s.mu.Unlock()
	s.events <- "disconnected"
}

func (s *fakeSink) snapshot() (conns [][]relay.Track, units []relay.Unit, disc []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]relay.Track(nil), s.connected...), append([]relay.Unit(nil), s.units...), append([]error(nil), s.disconnects...)
}

// unitsOf returns the units written during connection i.
func (s *fakeSink) unitsOf(i int) []relay.Unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []relay.Unit
	for j, u := range s.units {
		if s.unitConn[j] == i {
			out = append(out, u)
		}
	}
	return out
}

// waitUnits waits until connection conn has at least n video units (track 0).
func (s *fakeSink) waitUnits(t *testing.T, conn, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, "video units", timeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		k := 0
		for j, u := range s.units {
			if s.unitConn[j] == conn && u.Track == 0 {
				k++
			}
		}
		return k >= n
	})
}

// waitEvent waits for the named sink event, skipping others.
func (s *fakeSink) waitEvent(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-s.events:
			if e == name {
				return
			}
		case <-deadline:
			t.Fatalf("no %q event within %s", name, timeout)
		}
	}
}

// noEvent fails if the named event happens within d.
func (s *fakeSink) noEvent(t *testing.T, name string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-s.events:
			if e == name {
				t.Fatalf("unexpected %q event", name)
			}
		case <-deadline:
			return
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
