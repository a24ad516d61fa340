package democam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
)

// Camera is a synthetic RTSP camera: a gortsplib Server and ServerStream
// publishing a looped clip in real time to any number of clients over TCP
// (interleaved) and UDP unicast.
//
// RTP timestamps and sequence numbers are continuous across clip loops and,
// unless Quirks.TimestampResetOnReconnect is set, across Stop/Start too: the
// camera's "sensor" keeps running while its server is down.
type Camera struct {
	// ID names the camera in logs.
	ID string
	// Listen is the RTSP TCP address, e.g. "127.0.0.2:8554". Port 0 picks a
	// free port on the first Initialize; Start and Restart reuse it.
	Listen string
	// Path is the URL path, e.g. "Streaming/Channels/101" (leading "/" optional).
	Path string
	// Username and Password, when Username is set, require RTSP Basic or
	// Digest (MD5) auth on DESCRIBE, SETUP and PLAY.
	Username string
	Password string
	// DisableUDP turns off UDP unicast (TCP interleaved only). Otherwise a
	// free even/odd UDP port pair on Listen's host is used for RTP/RTCP.
	DisableUDP bool
	// Logger (nil = discard).
	Logger *slog.Logger
	// Audio adds an audio track: by default PCMU 8 kHz, a 500 Hz tone in
	// 20 ms packets; AudioCodec picks another codec (AudioOpus, AudioAAC).
	Audio      bool
	AudioCodec string
	// AuthMethods restricts the auth methods offered and accepted (nil =
	// Basic and Digest).
	AuthMethods []auth.VerifyMethod
	// SessionTimeout is the RTSP session timeout announced to clients and
	// enforced (0 = gortsplib's 60 s); clients must keep the session alive.
	SessionTimeout time.Duration
	// Quirks reproduce field behaviours of real cameras (zero = clean camera).
	Quirks Quirks

	log     *slog.Logger
	clip    *Clip
	sei     seiSet
	realm   string
	server  string // RTSP Server header
	nonce   string
	path    string
	addr    string // resolved TCP address
	udpPort int    // RTP port; RTCP is +1; 0 = no UDP
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	audio  *audioTrack
	paused atomic.Bool

	countMu   sync.Mutex
	requests  map[base.Method]int
	conns     int
	open      int
	connTimes []time.Time
	// RTSP sessions (from the first SETUP to their close): opened in all,
	// open now, the most open at once
	sessOpened, sessOpen, sessMax int

	mu      sync.RWMutex
	srv     *gortsplib.Server
	stream  *gortsplib.ServerStream
	medias  streamMedias
	running bool
	resetTS bool // set by Start when the timestamps must restart (quirk)
}

type streamMedias struct {
	video, audio, meta, back *description.Media
}

// orDiscard is l, or a logger that drops everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// cameraLogger is a camera's logger: l (nil = discard) naming the camera.
func cameraLogger(l *slog.Logger, id string) *slog.Logger {
	return orDiscard(l).With("democam", id)
}

// Initialize loads the clip, starts the RTSP server and the frame clock.
func (c *Camera) Initialize() error {
	c.log = cameraLogger(c.Logger, c.ID)
	if c.Listen == "" {
		return errors.New("democam: Listen is empty")
	}
	c.path = strings.Trim(c.Path, "/")
	clip, err := LoadClip(c.Quirks.clipName())
	if err != nil {
		return err
	}
	c.clip = clip
	if c.sei, err = newSEISet(clip.Codec); err != nil {
		return err
	}
	c.realm, c.server = "democam", "cordon-democam"
	switch {
	case c.Quirks.HikvisionSDP:
		c.realm, c.server = "hikvision", "Hikvision-Webs"
	case c.Quirks.DahuaTracks:
		c.realm, c.server = "Login to "+randomUUID(), "Dahua Rtsp Server"
	}
	if c.nonce, err = auth.GenerateNonce(); err != nil {
		return err
	}
	if c.Audio {
		if c.audio, err = c.newAudioTrack(); err != nil {
			return err
		}
	}
	// A free UDP pair found by probing can be taken by another process
	// before the server binds it (tests run packages in parallel): retry.
	for try := 0; ; try++ {
		if !c.DisableUDP {
			host, _, err := net.SplitHostPort(c.Listen)
			if err != nil {
				return fmt.Errorf("democam: Listen: %w", err)
			}
			if c.udpPort, err = freeUDPPair(host); err != nil {
				return err
			}
		}
		c.addr = c.Listen
		err := c.startServer(false)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || try == 20 {
			return err
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.done = make(chan struct{})
	e, err := newEmitter(c)
	if err != nil {
		c.Stop()
		return err
	}
	go func() {
		defer close(c.done)
		e.run(c.ctx)
	}()
	c.log.Info("camera started", "url", c.URL(), "codec", clip.Codec, "quirks", c.Quirks.String())
	return nil
}

// Close stops the camera for good.
func (c *Camera) Close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	c.Stop()
}

// URL returns the camera's RTSP URL, without credentials.
func (c *Camera) URL() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return "rtsp://" + c.addr + "/" + c.path
}

// Addr returns the resolved RTSP TCP address (host:port).
func (c *Camera) Addr() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.addr
}

// Stop closes the RTSP server and drops every client, as a camera that
// reboots or loses its network. The frame clock keeps running.
func (c *Camera) Stop() {
	c.mu.Lock()
	st, srv := c.stream, c.srv
	c.stream, c.srv, c.running = nil, nil, false
	c.mu.Unlock()
	if st != nil {
		st.Close()
	}
	if srv != nil {
		srv.Close()
	}
}

// Start reopens the RTSP server on the same address after Stop.
func (c *Camera) Start() error {
	return c.startServer(true)
}

// Restart is Stop then Start.
func (c *Camera) Restart() error {
	c.Stop()
	return c.Start()
}

func (c *Camera) startServer(restart bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	srv := &gortsplib.Server{
		Handler:     &handler{c: c},
		RTSPAddress: c.addr,
		// the camera never waits on a slow client
		WriteQueueSize: 1024,
		IdleTimeout:    c.SessionTimeout,
	}
	if c.udpPort != 0 {
		host, _, _ := net.SplitHostPort(c.addr)
		srv.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(c.udpPort))
		srv.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(c.udpPort+1))
	}
	var err error
	for try := 0; ; try++ {
		err = srv.Start()
		// the previous server's port can take a moment to be released
		if err == nil || !restart || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("democam %s: %w", c.ID, err)
	}
	c.addr = srv.NetListener().Addr().String()
	medias := c.buildMedias()
	desc := &description.Session{Medias: []*description.Media{medias.video}}
	for _, m := range []*description.Media{medias.audio, medias.meta, medias.back} {
		if m != nil {
			desc.Medias = append(desc.Medias, m)
		}
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := st.Initialize(); err != nil {
		srv.Close()
		return fmt.Errorf("democam %s: %w", c.ID, err)
	}
	c.srv, c.stream, c.medias, c.running = srv, st, medias, true
	if restart && c.Quirks.TimestampResetOnReconnect {
		c.resetTS = true
	}
	return nil
}

func (c *Camera) buildMedias() streamMedias {
	var m streamMedias
	if c.clip.Codec == CodecH265 {
		m.video = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H265{
			PayloadTyp: 96, VPS: c.clip.VPS, SPS: c.clip.SPS, PPS: c.clip.PPS,
		}}}
	} else {
		// PacketizationMode0 is advertised by rewriting the SDP: gortsplib's
		// ServerStream refuses mode 0 formats.
		m.video = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
			PayloadTyp: 96, SPS: c.clip.SPS, PPS: c.clip.PPS, PacketizationMode: 1,
		}}}
	}
	if c.audio != nil {
		m.audio = &description.Media{Type: description.MediaTypeAudio, Formats: c.audio.media.Formats}
	}
	if c.Quirks.DahuaTracks {
		meta := &format.Generic{PayloadTyp: 107, RTPMa: "vnd.onvif.metadata/90000"}
		_ = meta.Init()
		m.meta = &description.Media{Type: description.MediaTypeApplication, Formats: []format.Format{meta}}
		m.back = &description.Media{Type: description.MediaTypeAudio, IsBackChannel: true, Formats: []format.Format{&format.G711{
			PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1,
		}}}
	}
	return m
}

// current returns the stream to write to (nil while stopped) and its medias.
func (c *Camera) current() (*gortsplib.ServerStream, streamMedias, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reset := c.resetTS
	c.resetTS = false
	return c.stream, c.medias, reset
}

func (c *Camera) verify(req *base.Request) bool {
	if c.Username == "" {
		return true
	}
	return auth.Verify(req, c.Username, c.Password, c.AuthMethods, c.realm, c.nonce) == nil
}

func (c *Camera) unauthorized() *base.Response {
	return &base.Response{
		StatusCode: base.StatusUnauthorized,
		Header:     base.Header{"WWW-Authenticate": auth.GenerateWWWAuthenticate(c.AuthMethods, c.realm, c.nonce)},
	}
}

func (c *Camera) pathMatches(p string) bool {
	return strings.Trim(p, "/") == c.path
}

// handler implements the gortsplib server callbacks for one Camera.
type handler struct{ c *Camera }

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.streamFor(ctx.Request, ctx.Path)
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.streamFor(ctx.Request, ctx.Path)
}

// streamFor answers DESCRIBE and SETUP: auth, path, then the stream.
func (h *handler) streamFor(req *base.Request, path string) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.c.verify(req) {
		return h.c.unauthorized(), nil, nil
	}
	if !h.c.pathMatches(path) {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	h.c.mu.RLock()
	st := h.c.stream
	h.c.mu.RUnlock()
	if st == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if !h.c.verify(ctx.Request) {
		return h.c.unauthorized(), nil
	}
	h.c.log.Debug("client playing", "remote", ctx.Conn.NetConn().RemoteAddr().String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnResponse sets the vendor Server header and rewrites DESCRIBE bodies for
// the SDP quirks.
func (h *handler) OnResponse(_ *gortsplib.ServerConn, res *base.Response) {
	res.Header["Server"] = base.HeaderValue{h.c.server}
	if ct := res.Header["Content-Type"]; len(ct) == 1 && ct[0] == "application/sdp" && len(res.Body) > 0 {
		res.Body = h.c.rewriteSDP(res.Body)
	}
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.c.countMu.Lock()
	h.c.open--
	h.c.countMu.Unlock()
	h.c.log.Debug("client connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

func freeUDPPair(host string) (int, error) {
	for range 100 {
		l1, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("democam: UDP: %w", err)
		}
		p := l1.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p > 65000 {
			l1.Close()
			continue
		}
		l2, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p+1)))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, errors.New("democam: no free UDP port pair")
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
