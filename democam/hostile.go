package democam

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Attacks select the hostile behaviours of a HostileCamera, one switch per
// attack (issue "The camera is the attacker"). The zero value is an honest
// camera: RTSP over TCP (interleaved) only, the H.264 clip at 15 fps, Basic
// auth when Username is set. Attacks combine.
type Attacks struct {
	// RedirectLoop: every DESCRIBE is answered "302 Found" with Location
	// rtsp://<itself>/r<N>, N counting up: a client that follows redirects
	// recurses without end.
	RedirectLoop bool
	// RedirectTo, when set (host:port), answers DESCRIBE with "302 Found"
	// and Location rtsp://<RedirectTo>/stolen: a pivot to another host.
	RedirectTo string
	// RedirectOnFallback: the first SETUP asking for UDP is answered with a
	// TCP transport, which makes an "auto" client start over and DESCRIBE
	// again; that second DESCRIBE (and every later one) is redirected (to
	// RedirectTo, or itself).
	RedirectOnFallback bool
	// GiantHeaders: the OPTIONS and DESCRIBE answers carry 250 headers of
	// 2,000 bytes each (500 kB), inside gortsplib's own header limits.
	GiantHeaders bool
	// GiantSDP: the DESCRIBE answer is a 120 kB SDP (gortsplib accepts
	// bodies up to 128 KiB).
	GiantSDP bool
	// EndlessTracks: the SDP describes 1,000 video media sections.
	EndlessTracks bool
	// HugeNALUnits: after the first two seconds, a NAL unit is sent as FU-A
	// fragments that never end, at 100 Mbit/s (a camera's network port).
	HugeNALUnits bool
	// SPSChurn: every frame carries an SPS different from the previous one
	// (level_idc cycling through 40 values).
	SPSChurn bool
	// SlowDrip: every RTSP answer is sent one byte per DripInterval.
	SlowDrip bool
	// SilentTCP: connections are accepted and read, never answered.
	SilentTCP bool
	// BitrateFlood: every frame is padded with filler NAL units so that the
	// stream runs at FloodMbps.
	BitrateFlood bool
	// ParamSetTails: SPS and PPS carry VendorTail after their RBSP trailing
	// bits, in band and in the SDP's sprop-parameter-sets.
	ParamSetTails bool
	// TimestampJumps: RTP timestamps jump by a random hour-scale amount on
	// every frame.
	TimestampJumps bool
	// InterleavedAbuse: beside the picture, 50 interleaved frames per video
	// frame on channels that were never set up.
	InterleavedAbuse bool
	// RTCPFlood: 200 RTCP sender reports per video frame (3,000 a second) on
	// the track's RTCP channel.
	RTCPFlood bool
}

// String lists the attacks that are set.
func (a Attacks) String() string {
	var names []string
	add := func(on bool, name string) {
		if on {
			names = append(names, name)
		}
	}
	add(a.RedirectLoop, "RedirectLoop")
	add(a.RedirectTo != "", "RedirectTo")
	add(a.RedirectOnFallback, "RedirectOnFallback")
	add(a.GiantHeaders, "GiantHeaders")
	add(a.GiantSDP, "GiantSDP")
	add(a.EndlessTracks, "EndlessTracks")
	add(a.HugeNALUnits, "HugeNALUnits")
	add(a.SPSChurn, "SPSChurn")
	add(a.SlowDrip, "SlowDrip")
	add(a.SilentTCP, "SilentTCP")
	add(a.BitrateFlood, "BitrateFlood")
	add(a.ParamSetTails, "ParamSetTails")
	add(a.TimestampJumps, "TimestampJumps")
	add(a.InterleavedAbuse, "InterleavedAbuse")
	add(a.RTCPFlood, "RTCPFlood")
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// DefaultVendorTail is what Attacks.ParamSetTails appends to parameter sets:
// the kind of identifier a vendor would hide there.
var DefaultVendorTail = []byte("SN:DS-2CD2143G0-I20190101AACH123456789;MAC=44:19:b6:01:02:03")

// HostileCamera is a hand-written RTSP camera (not gortsplib's server: it
// must be able to break the protocol) that plays the H.264 clip over TCP
// interleaved and commits the Attacks. It is the camera side of cordon's
// hostile-camera tests.
type HostileCamera struct {
	// ID names the camera in logs.
	ID string
	// Listen is the TCP address, e.g. "127.0.0.7:0" (port 0: any free).
	Listen string
	// Path is the stream path (default "stream").
	Path string
	// Username and Password, when Username is set, require Basic auth on
	// DESCRIBE, SETUP and PLAY.
	Username, Password string
	// Attacks may be changed while running with SetAttacks.
	Attacks Attacks
	// DripInterval is SlowDrip's delay between bytes (default 1 s).
	DripInterval time.Duration
	// FloodMbps is BitrateFlood's target rate (default 100).
	FloodMbps int
	// VendorTail is ParamSetTails' appendix (default DefaultVendorTail).
	VendorTail []byte
	// TLS, when set, makes the camera speak RTSPS: every connection is TLS
	// (with this configuration's certificate) and URL is rtsps://. The
	// attacks are the same, inside TLS.
	TLS    *tls.Config
	Logger *slog.Logger

	log      *slog.Logger
	clip     *Clip
	l        net.Listener
	addr     string
	stop     chan struct{}
	wg       sync.WaitGroup
	connsMu  sync.Mutex
	open     map[net.Conn]struct{}
	closing  bool
	redirect atomic.Int64 // redirect counter for RedirectLoop
	attackMu sync.Mutex   // guards Attacks after Initialize

	conns     atomic.Int64
	describes atomic.Int64
	bytesOut  atomic.Int64
	authSeen  atomic.Int64
}

// Initialize loads the clip and starts listening.
func (h *HostileCamera) Initialize() error {
	h.log = cameraLogger(h.Logger, h.ID)
	if h.Path == "" {
		h.Path = "stream"
	}
	h.Path = strings.Trim(h.Path, "/")
	if h.DripInterval <= 0 {
		h.DripInterval = time.Second
	}
	if h.FloodMbps <= 0 {
		h.FloodMbps = 100
	}
	if h.VendorTail == nil {
		h.VendorTail = DefaultVendorTail
	}
	clip, err := LoadClip(ClipMain)
	if err != nil {
		return err
	}
	h.clip = clip
	l, err := net.Listen("tcp", h.Listen)
	if err != nil {
		return fmt.Errorf("democam %s: %w", h.ID, err)
	}
	h.addr = l.Addr().String()
	if h.TLS != nil {
		l = tls.NewListener(l, h.TLS)
	}
	h.l = l
	h.stop = make(chan struct{})
	h.open = map[net.Conn]struct{}{}
	h.wg.Add(1)
	go h.accept()
	h.log.Info("hostile camera started", "url", h.URL())
	return nil
}

// Close stops the camera and drops every connection.
func (h *HostileCamera) Close() {
	if h.l == nil {
		return
	}
	h.connsMu.Lock()
	if h.closing {
		h.connsMu.Unlock()
		return
	}
	h.closing = true
	close(h.stop)
	_ = h.l.Close()
	for c := range h.open {
		_ = c.Close()
	}
	h.connsMu.Unlock()
	h.wg.Wait()
}

// SetAttacks changes the attacks for the connections accepted from now on
// (DropConnections makes clients reconnect into them).
func (h *HostileCamera) SetAttacks(a Attacks) {
	h.attackMu.Lock()
	h.Attacks = a
	h.attackMu.Unlock()
	h.log.Info("hostile camera attacks changed", "attacks", a.String())
}

func (h *HostileCamera) attacks() Attacks {
	h.attackMu.Lock()
	defer h.attackMu.Unlock()
	return h.Attacks
}

// DropConnections closes every client connection, as a camera reboot.
func (h *HostileCamera) DropConnections() {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	for c := range h.open {
		_ = c.Close()
	}
}

// URL is the camera's RTSP URL without credentials.
func (h *HostileCamera) URL() string {
	if h.TLS != nil {
		return "rtsps://" + h.addr + "/" + h.Path
	}
	return "rtsp://" + h.addr + "/" + h.Path
}

// Addr is the camera's TCP address (host:port).
func (h *HostileCamera) Addr() string { return h.addr }

// Connections counts TCP connections accepted.
func (h *HostileCamera) Connections() int64 { return h.conns.Load() }

// Describes counts DESCRIBE requests received.
func (h *HostileCamera) Describes() int64 { return h.describes.Load() }

// BytesSent counts bytes written to clients.
func (h *HostileCamera) BytesSent() int64 { return h.bytesOut.Load() }

// AuthorizedRequests counts requests that carried the right credentials.
func (h *HostileCamera) AuthorizedRequests() int64 { return h.authSeen.Load() }

func (h *HostileCamera) accept() {
	defer h.wg.Done()
	for {
		c, err := h.l.Accept()
		if err != nil {
			return
		}
		h.connsMu.Lock()
		if h.closing {
			h.connsMu.Unlock()
			_ = c.Close()
			return
		}
		h.open[c] = struct{}{}
		h.wg.Add(1)
		h.connsMu.Unlock()
		h.conns.Add(1)
		go func() {
			defer h.wg.Done()
			hc := &hostileConn{h: h, c: c, a: h.attacks(), done: make(chan struct{})}
			hc.serve()
			h.connsMu.Lock()
			delete(h.open, c)
			h.connsMu.Unlock()
		}()
	}
}

// hostileConn is one client connection.
type hostileConn struct {
	h        *HostileCamera
	a        Attacks // as they were when the connection was accepted
	c        net.Conn
	wmu      sync.Mutex
	done     chan struct{}
	streamWG sync.WaitGroup
	udpAsked bool
	channel  int // interleaved RTP channel of the video track
	playing  bool
}

func (hc *hostileConn) serve() {
	defer func() {
		close(hc.done)
		_ = hc.c.Close()
		hc.streamWG.Wait()
	}()
	br := bufio.NewReaderSize(hc.c, 4096)
	if hc.a.SilentTCP {
		buf := make([]byte, 4096)
		for {
			if _, err := br.Read(buf); err != nil {
				return
			}
		}
	}
	for {
		line, hdr, _, err := ReadRTSPRequest(br)
		if err != nil {
			return
		}
		if !hc.answer(line, hdr) {
			return
		}
	}
}

// answer handles one request; false ends the connection.
func (hc *hostileConn) answer(line string, hdr textproto.MIMEHeader) bool {
	h := hc.h
	f := strings.Fields(line)
	if len(f) < 2 {
		return false
	}
	method, uri := f[0], f[1]
	res := response{code: 200, headers: []string{"CSeq: " + hdr.Get("Cseq"), "Server: Hostile-Webs"}}
	needsAuth := method == "DESCRIBE" || method == "SETUP" || method == "PLAY"
	if needsAuth && h.Username != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(h.Username+":"+h.Password))
		if hdr.Get("Authorization") != want {
			res.code = 401
			res.headers = append(res.headers, `WWW-Authenticate: Basic realm="hostile"`)
			return hc.send(res)
		}
		h.authSeen.Add(1)
	}
	switch method {
	case "OPTIONS":
		res.headers = append(res.headers, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
		hc.giantHeaders(&res)
	case "DESCRIBE":
		hc.describe(uri, &res)
	case "SETUP":
		hc.setup(hdr.Get("Transport"), &res)
	case "PLAY":
		res.headers = append(res.headers, "Session: 5e55104;timeout=60")
		if !hc.playing {
			hc.playing = true
			hc.streamWG.Add(1)
			go func() {
				defer hc.streamWG.Done()
				hc.stream()
			}()
		}
	case "TEARDOWN":
		hc.send(res)
		return false
	case "GET_PARAMETER":
		res.headers = append(res.headers, "Session: 5e55104")
	default:
		res.code = 501
	}
	return hc.send(res)
}

func (hc *hostileConn) giantHeaders(res *response) {
	if !hc.a.GiantHeaders {
		return
	}
	v := strings.Repeat("x", 2000)
	for i := range 250 {
		res.headers = append(res.headers, fmt.Sprintf("X-Vendor-%d: %s", i, v))
	}
}

func (hc *hostileConn) describe(uri string, res *response) {
	h := hc.h
	n := h.describes.Add(1)
	a := hc.a
	redirect := ""
	switch {
	case a.RedirectOnFallback && n >= 2: // gortsplib's fallback starts a new connection
		redirect = a.RedirectTo
		if redirect == "" {
			redirect = h.addr
		}
		redirect = "rtsp://" + redirect + "/after-fallback"
	case a.RedirectLoop:
		redirect = fmt.Sprintf("rtsp://%s/r%d", h.addr, h.redirect.Add(1))
	case a.RedirectTo != "" && !a.RedirectOnFallback:
		redirect = "rtsp://" + a.RedirectTo + "/stolen"
	}
	if redirect != "" {
		res.code = 302
		res.headers = append(res.headers, "Location: "+redirect)
		return
	}
	hc.giantHeaders(res)
	base := strings.TrimSuffix(uri, "/")
	res.headers = append(res.headers, "Content-Type: application/sdp", "Content-Base: "+base+"/")
	res.body = h.sdp(a)
}

func (hc *hostileConn) setup(transport string, res *response) {
	res.headers = append(res.headers, "Session: 5e55104;timeout=60")
	if !strings.Contains(transport, "RTP/AVP/TCP") {
		if hc.a.RedirectOnFallback && !hc.udpAsked {
			hc.udpAsked = true
			// "I only speak TCP": makes an auto client start over
			res.headers = append(res.headers, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
			return
		}
		res.code = 461
		return
	}
	ch := 0
	if i := strings.Index(transport, "interleaved="); i >= 0 {
		v := transport[i+len("interleaved="):]
		if j := strings.IndexAny(v, "-;"); j >= 0 {
			v = v[:j]
		}
		ch, _ = strconv.Atoi(v)
	}
	if !hc.playing {
		hc.channel = ch
	}
	res.headers = append(res.headers, fmt.Sprintf("Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d", ch, ch+1))
}
