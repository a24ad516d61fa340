package democam

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
)

// Picture of a PTZCamera (and of its sub stream: the same view at half
// the size).
const (
	ptzWidth     = 320
	ptzHeight    = 180
	ptzSubWidth  = 160
	ptzSubHeight = 90
	ptzFPS       = 10
	ptzGOP       = 2 * ptzFPS
)

// PTZCamera is a synthetic ONVIF pan-tilt-zoom dome: an ONVIF device,
// media and PTZ service over HTTP (SOAP with WS-Security digest or HTTP
// Digest) whose position moves a live picture, served over RTSP (TCP
// interleaved) as H.264 made by a pure-Go encoder (no ffmpeg, no cgo).
// The picture is a world of coloured landmarks that pan and tilt move and
// zoom scales, with the position and the time burnt in.
//
// Its device service also keeps the network settings the hardening work
// reads and sets (NTP, DNS, default gateway, protocols), with FactoryReset
// to provoke drift.
type PTZCamera struct {
	// ID names the camera (logs, serial number).
	ID string
	// Listen is the RTSP address ("127.0.0.5:0" picks a free port).
	Listen string
	// HTTPListen is the ONVIF address (default: Listen's host, port 0).
	HTTPListen string
	// Path is the RTSP path (default "ptz").
	Path string
	// SubPath, when set, adds a sub stream at that RTSP path: the same
	// view at 160x90 (SubURL).
	SubPath string
	// Username and Password guard RTSP (Basic/Digest) and ONVIF
	// (WS-Security digest or HTTP Digest); empty Username = open.
	Username, Password string
	Logger             *slog.Logger
	// ONVIF quirks of real cameras.
	ONVIF ONVIFQuirks

	log      *slog.Logger
	state    *ptzState
	onvif    *onvifServer
	httpSrv  *http.Server
	httpLn   net.Listener
	httpAddr string
	rtspSrv  *gortsplib.Server
	streamMu sync.Mutex
	outs     []*ptzOut // main first, then the sub stream if any
	nonce    string
	cancel   context.CancelFunc
	done     chan struct{}

	writeMu sync.Mutex // frame encode+write vs. PLAY (forced IDR)
}

// ptzOut is one RTSP stream of a PTZCamera: its path, encoder, picture
// and gortsplib stream.
type ptzOut struct {
	path     string
	enc      *pcmEncoder
	frame    yuvFrame
	stream   *gortsplib.ServerStream // guarded by streamMu
	media    *description.Media
	rtpEnc   *rtph264.Encoder
	seq      uint16
	forceIDR int // frames still to be coded as IDR (writeMu)
}

// Initialize starts the ONVIF HTTP server, the RTSP server and the frame
// clock.
func (c *PTZCamera) Initialize() error {
	c.log = cameraLogger(c.Logger, c.ID)
	if c.Listen == "" {
		return errors.New("democam: Listen is empty")
	}
	path := strings.Trim(c.Path, "/")
	if path == "" {
		path = "ptz"
	}
	if c.HTTPListen == "" {
		host, _, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return fmt.Errorf("democam: Listen: %w", err)
		}
		c.HTTPListen = net.JoinHostPort(host, "0")
	}
	c.state = newPTZState(time.Now)
	var err error
	if err := c.addOut(path, ptzWidth, ptzHeight); err != nil {
		return err
	}
	if sub := strings.Trim(c.SubPath, "/"); sub != "" {
		if sub == path {
			return errors.New("democam: SubPath equals Path")
		}
		if err := c.addOut(sub, ptzSubWidth, ptzSubHeight); err != nil {
			return err
		}
	}
	if c.nonce, err = auth.GenerateNonce(); err != nil {
		return err
	}
	if c.onvif, err = newONVIFServer(c); err != nil {
		return err
	}
	if err := c.startHTTP(); err != nil {
		return err
	}
	if err := c.startRTSP(); err != nil {
		c.httpSrv.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func() {
		defer close(c.done)
		c.run(ctx)
	}()
	c.log.Info("PTZ camera started", "rtsp", c.URL(), "onvif", c.ONVIFURL())
	return nil
}

func (c *PTZCamera) startHTTP() error {
	ln, err := net.Listen("tcp", c.HTTPListen)
	if err != nil {
		return fmt.Errorf("democam %s: %w", c.ID, err)
	}
	c.httpLn, c.httpAddr = ln, ln.Addr().String()
	c.httpSrv = &http.Server{Handler: c.onvif, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	go func() { _ = c.httpSrv.Serve(ln) }()
	return nil
}

// addOut adds an RTSP stream of the view at w x h.
func (c *PTZCamera) addOut(path string, w, h int) error {
	enc, err := newPCMEncoder(w, h, ptzFPS, ptzGOP)
	if err != nil {
		return err
	}
	o := &ptzOut{path: path, enc: enc, frame: enc.newFrame()}
	o.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, SPS: enc.SPS(), PPS: enc.PPS(), PacketizationMode: 1,
	}}}
	o.rtpEnc = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: payloadMax}
	if err := o.rtpEnc.Init(); err != nil {
		return err
	}
	c.outs = append(c.outs, o)
	return nil
}

func (c *PTZCamera) startRTSP() error {
	c.rtspSrv = &gortsplib.Server{Handler: &ptzHandler{c: c}, RTSPAddress: c.Listen, WriteQueueSize: 1024}
	if err := c.rtspSrv.Start(); err != nil {
		return fmt.Errorf("democam %s: %w", c.ID, err)
	}
	// the handler reads the streams under streamMu: gortsplib may serve a
	// DESCRIBE before Initialize has returned here
	c.streamMu.Lock()
	defer c.streamMu.Unlock()
	for _, o := range c.outs {
		o.stream = &gortsplib.ServerStream{Server: c.rtspSrv, Desc: &description.Session{Medias: []*description.Media{o.media}}}
		if err := o.stream.Initialize(); err != nil {
			c.rtspSrv.Close()
			return fmt.Errorf("democam %s: %w", c.ID, err)
		}
	}
	return nil
}

// Close stops the camera.
func (c *PTZCamera) Close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	for _, o := range c.outs {
		if o.stream != nil {
			o.stream.Close()
		}
	}
	if c.rtspSrv != nil {
		c.rtspSrv.Close()
	}
	if c.httpSrv != nil {
		_ = c.httpSrv.Close()
	}
}

// URL is the RTSP URL, without credentials.
func (c *PTZCamera) URL() string {
	return "rtsp://" + c.rtspSrv.NetListener().Addr().String() + "/" + c.outs[0].path
}

// SubURL is the sub stream's RTSP URL ("" without SubPath).
func (c *PTZCamera) SubURL() string {
	if len(c.outs) < 2 {
		return ""
	}
	return "rtsp://" + c.rtspSrv.NetListener().Addr().String() + "/" + c.outs[1].path
}

// ONVIFURL is the device service URL (config cameras[].onvif).
func (c *PTZCamera) ONVIFURL() string { return "http://" + c.httpAddr + DevicePath }

// Position returns pan, tilt (-1..1), zoom (0..1) and whether the dome
// is moving.
func (c *PTZCamera) Position() (pan, tilt, zoom float64, moving bool) {
	p, m := c.state.position()
	return p[0], p[1], p[2], m
}

// Calls returns the ONVIF operations received, oldest first (the last
// 1000; refused ones marked), for tests that check what cordon sent.
func (c *PTZCamera) Calls() []string {
	c.onvif.mu.Lock()
	defer c.onvif.mu.Unlock()
	return append([]string(nil), c.onvif.calls...)
}

// Settings returns the device-management settings now.
func (c *PTZCamera) Settings() DeviceSettings {
	c.onvif.mgmt.mu.Lock()
	defer c.onvif.mgmt.mu.Unlock()
	return c.onvif.mgmt.s.clone()
}

// FactoryReset puts the device settings back to FactorySettings (what a
// firmware reset does to a hardened camera) and the dome home.
func (c *PTZCamera) FactoryReset() {
	c.onvif.mgmt.mu.Lock()
	c.onvif.mgmt.s = FactorySettings()
	c.onvif.mgmt.mu.Unlock()
	c.state.stop()
}

// run renders, encodes and sends a frame of every stream every 1/ptzFPS s.
func (c *PTZCamera) run(ctx context.Context) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	tsBase := binary.BigEndian.Uint32(b[:4])
	for i, o := range c.outs {
		o.seq = binary.BigEndian.Uint16(b[4:]) + uint16(i)*10000
	}
	start := time.Now()
	tick := time.NewTicker(time.Second / ptzFPS)
	defer tick.Stop()
	for n := int64(0); ; n++ {
		at := start.Add(time.Duration(n) * time.Second / ptzFPS)
		pos, _ := c.state.position()
		for _, o := range c.outs {
			renderScene(o.enc, o.frame, pos, at.UTC().Format("15:04:05"))
			c.writeMu.Lock()
			c.send(o, tsBase+uint32(n*videoClock/ptzFPS), at)
			c.writeMu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ptzHandler implements the gortsplib server callbacks of a PTZCamera.
type ptzHandler struct{ c *PTZCamera }

// send encodes the stream's current picture and writes its packets
// (writeMu held).
func (c *PTZCamera) send(o *ptzOut, ts uint32, at time.Time) {
	if o.forceIDR > 0 {
		o.enc.frame = 0
		o.forceIDR--
	}
	au, _ := o.enc.Encode(o.frame)
	pkts, err := o.rtpEnc.Encode(au)
	if err != nil {
		c.log.Error("packetize", "err", err)
	}
	for _, p := range pkts {
		p.Timestamp = ts
		p.SequenceNumber = o.seq
		o.seq++
		if err := o.stream.WritePacketRTPWithNTP(o.media, p, at); err != nil {
			c.log.Debug("write RTP", "err", err)
		}
	}
}

func (h *ptzHandler) check(req *base.Request, path string) (*base.Response, *gortsplib.ServerStream) {
	c := h.c
	if c.Username != "" && auth.Verify(req, c.Username, c.Password, nil, "democam", c.nonce) != nil {
		return &base.Response{StatusCode: base.StatusUnauthorized,
			Header: base.Header{"WWW-Authenticate": auth.GenerateWWWAuthenticate(nil, "democam", c.nonce)}}, nil
	}
	if st := c.serverStream(strings.Trim(path, "/")); st != nil {
		return nil, st
	}
	return &base.Response{StatusCode: base.StatusNotFound}, nil
}

func (h *ptzHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	res, st := h.check(ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// serverStream returns the stream at path, nil for none.
func (c *PTZCamera) serverStream(path string) *gortsplib.ServerStream {
	c.streamMu.Lock()
	defer c.streamMu.Unlock()
	for _, o := range c.outs {
		if o.path == path {
			return o.stream
		}
	}
	return nil
}

func (h *ptzHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	res, st := h.check(ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnPlay makes the next two frames IDRs, so a new client starts on a
// keyframe at once (as cameras do on request). gortsplib activates the
// reader just after OnPlay returns: should the first IDR be written in
// that moment and missed, the client starts on the second, never on a P
// frame.
func (h *ptzHandler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if h.c.Username != "" && auth.Verify(ctx.Request, h.c.Username, h.c.Password, nil, "democam", h.c.nonce) != nil {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil
	}
	h.c.writeMu.Lock()
	for _, o := range h.c.outs {
		o.forceIDR = 2
	}
	h.c.writeMu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// DemoPTZCamera returns the PTZ dome of `cordon demo`, not yet
// initialized: id "dome", RTSP and ONVIF on host (free ports), path "ptz",
// a 160x90 sub stream at "ptz/sub", with the given credentials. Call
// Initialize, then use URL(), SubURL() and ONVIFURL(); Close when done.
func DemoPTZCamera(host, username, password string, logger *slog.Logger) *PTZCamera {
	return &PTZCamera{
		ID: "dome", Listen: net.JoinHostPort(host, "0"), Path: "ptz", SubPath: "ptz/sub",
		Username: username, Password: password, Logger: logger,
	}
}
