// Package whep serves cordon's cameras to browsers over WHEP
// (draft-ietf-wish-whep): one pion PeerConnection per viewer, all ICE
// traffic on one UDP port (and optionally one ICE-TCP port), host
// candidates only (the configured host IPs, or the listen interfaces), no
// mDNS, media taken packetized from relay readers and written as is.
//
// Requests: POST /whep/{camera} (offer -> 201 + Location + answer with all
// candidates), PATCH /whep/{camera}/{session} (trickle-ice-sdpfrag: remote
// candidates are added; an ICE restart, i.e. a new ice-ufrag, is answered
// 422 and the session is kept: the client should POST a new session),
// DELETE /whep/{camera}/{session} (200 once media has stopped). PATCH and
// DELETE need a Bearer of the session's own principal or of an admin; others
// get 404. OPTIONS answers CORS preflights for CORSOrigins only.
//
// A session ends on DELETE, Kill/KillWhere, Close, ICE failed or closed, ICE
// disconnected (pion: 5 s without traffic) for DisconnectTimeout more, no
// DTLS connection within ICEConnectTimeout, the reader ending (stream closed,
// codecs changed, kicked) or no media for IdleTimeout (camera away). ViewEnd
// is emitted exactly once, with the RTP payload bytes sent.
//
// Interceptors: only RTCP sender reports (lip sync in browsers) and a NACK
// responder (a lost packet is otherwise a broken picture until the next
// keyframe, since cameras cannot make keyframes on demand). No TWCC, no
// receiver-side interceptors, no PLI handling: incoming RTCP is read and
// discarded.
//
// ICEServers, when set, add STUN/TURN candidates; pion gathers those on
// their own sockets, so the single-port property only holds without them.
package whep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"

	"cordon/relay"
)

// Defaults of the Server's timeouts and limits.
const (
	DefaultICEConnectTimeout = 15 * time.Second
	DefaultDisconnectTimeout = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultReadyTimeout      = 8 * time.Second
	maxOfferBytes            = 64 << 10
	maxPatchBytes            = 16 << 10
)

// Server is the WHEP endpoint. Set the exported fields, call Initialize, mount
// it with mux.Handle("/whep/", srv), Close it at shutdown.
type Server struct {
	UDPListen   string   // ONE UDP port for all ICE/media traffic, e.g. ":8189"
	TCPListen   string   // ICE-TCP (passive) port; "" = off
	HostIPs     []string // addresses advertised in candidates; empty = the listen interfaces
	ICEServers  []string // STUN/TURN URLs (none by default: closed network)
	CORSOrigins []string // allowed browser origins; empty = CORS off

	Hub    *relay.Hub
	Access Access
	Events Events // optional
	Log    *slog.Logger
	// Metrics defaults to unregistered metrics.
	Metrics *Metrics

	ICEConnectTimeout time.Duration // POST to DTLS connected; default 15 s
	DisconnectTimeout time.Duration // ICE disconnected this long ends the session; default 10 s
	IdleTimeout       time.Duration // no media this long (camera gone) ends the session; default 60 s; <0 = never
	ReadyTimeout      time.Duration // wait for an offline camera before 503; default 8 s
	RateLimit         float64       // POST/PATCH/DELETE per second per address; default 10; <0 = off
	RateBurst         int           // default 20
	// MaxSessions caps live sessions (default 1000, <0 = no cap; 503 past
	// it); MaxSessionsPerViewer caps one principal's (default 64, <0 = no
	// cap; 429 past it), so one leaked token or runaway video wall cannot
	// take the gateway.
	MaxSessions          int
	MaxSessionsPerViewer int

	udpConn  net.PacketConn
	udpMux   *advertUDPMux
	tcpLn    net.Listener
	tcpMux   ice.TCPMux
	settings webrtc.SettingEngine
	limiter  *limiter
	idRe     *regexp.Regexp

	mu       sync.Mutex
	closed   bool
	sessions map[string]*session
	wg       sync.WaitGroup
}

// Initialize opens the sockets. It fails when a port is in use.
func (s *Server) Initialize() error {
	if s.Hub == nil || s.Access == nil {
		return errors.New("whep: Hub and Access are required")
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.Log = s.Log.With("component", "whep")
	if s.Metrics == nil {
		s.Metrics = NewMetrics(nil)
	}
	if s.ICEConnectTimeout <= 0 {
		s.ICEConnectTimeout = DefaultICEConnectTimeout
	}
	if s.DisconnectTimeout <= 0 {
		s.DisconnectTimeout = DefaultDisconnectTimeout
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.ReadyTimeout <= 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	if s.MaxSessions == 0 {
		s.MaxSessions = 1000
	}
	if s.MaxSessionsPerViewer == 0 {
		s.MaxSessionsPerViewer = 64
	}
	if s.RateLimit == 0 {
		s.RateLimit = 10
	}
	if s.RateBurst <= 0 {
		s.RateBurst = 20
	}
	s.limiter = newLimiter(s.RateLimit, s.RateBurst)
	s.idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	s.sessions = map[string]*session{}
	if s.UDPListen == "" {
		return errors.New("whep: udp_listen is required")
	}

	pionLog := pionLogs{log: s.Log}
	se := webrtc.SettingEngine{LoggerFactory: pionLog}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DisableMediaEngineCopy(true) // one MediaEngine per PeerConnection already
	// pion's ICE timeouts: our own DisconnectTimeout timer ends the session
	// first; "failed" is the backstop.
	se.SetICETimeouts(5*time.Second, s.DisconnectTimeout+5*time.Second, 2*time.Second)

	pc, err := net.ListenPacket("udp", s.UDPListen)
	if err != nil {
		return fmt.Errorf("whep: webrtc.udp_listen %q: %w", s.UDPListen, err)
	}
	local := pc.LocalAddr().(*net.UDPAddr)
	ips, err := advertisedIPs(local.IP, s.HostIPs)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("whep: %w", err)
	}
	advert := make([]net.Addr, len(ips))
	loopback := false
	for i, ip := range ips {
		advert[i] = &net.UDPAddr{IP: ip, Port: local.Port}
		loopback = loopback || ip.IsLoopback()
	}
	s.udpConn = pc
	s.udpMux = &advertUDPMux{
		UDPMuxDefault: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: pc, Logger: pionLog.NewLogger("udpmux")}),
		local:         local,
		advert:        advert,
	}
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}

	if s.TCPListen != "" {
		ln, err := net.Listen("tcp", s.TCPListen)
		if err != nil {
			s.closeSockets()
			return fmt.Errorf("whep: webrtc.tcp_listen %q: %w", s.TCPListen, err)
		}
		s.tcpLn = ln
		s.tcpMux = webrtc.NewICETCPMux(pionLog.NewLogger("tcpmux"), deadlineListener{Listener: ln, timeout: tcpWriteTimeout}, 8)
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
		// TCP host candidates come from the interface list: restrict it.
		if len(s.HostIPs) > 0 {
			allLocal := !slices.ContainsFunc(ips, func(ip net.IP) bool { return !isLocalIP(ip) })
			switch {
			case allLocal:
				se.SetIPFilter(func(ip net.IP) bool {
					return slices.ContainsFunc(ips, func(h net.IP) bool { return h.Equal(ip) })
				})
			case len(ips) == 1:
				// a 1:1 NAT address: rewrite the TCP host candidates only (UDP ones are ours already)
				if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
					External: []string{ips[0].String()}, AsCandidateType: webrtc.ICECandidateTypeHost,
					Mode: webrtc.ICEAddressRewriteReplace, Networks: []webrtc.NetworkType{webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6},
				}); err != nil {
					s.closeSockets()
					return fmt.Errorf("whep: host_ips: %w", err)
				}
			default:
				s.closeSockets()
				return errors.New("whep: with tcp_listen set, host_ips must be addresses of this host or a single 1:1 NAT address")
			}
		}
		if tl := ln.Addr().(*net.TCPAddr); tl.IP.IsLoopback() {
			loopback = true
		}
	}
	se.SetNetworkTypes(networks)
	se.SetIncludeLoopbackCandidate(loopback)
	s.settings = se
	s.Log.Info("WHEP listening", "udp", pc.LocalAddr().String(), "tcp", s.TCPListen, "advertise", fmt.Sprint(ips))
	return nil
}

func (s *Server) closeSockets() {
	if s.udpMux != nil {
		_ = s.udpMux.Close() // closes the socket too
	} else if s.udpConn != nil {
		_ = s.udpConn.Close()
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close() // closes the listener
	} else if s.tcpLn != nil {
		_ = s.tcpLn.Close()
	}
}

// UDPAddr is the bound UDP address (after Initialize).
func (s *Server) UDPAddr() net.Addr { return s.udpConn.LocalAddr() }

// TCPAddr is the bound ICE-TCP address, nil when off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// Close ends every session (ViewEnd is emitted for each), waits for their
// goroutines and frees the sockets.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.end("server_closed")
	}
	s.wg.Wait()
	s.closeSockets()
}

// Sessions lists the live sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss.info())
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Started.Compare(b.Started) })
	return out
}

// Kill ends one session; false if there is none with that id.
func (s *Server) Kill(id string) bool {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return false
	}
	ss.end("killed")
	return true
}

// KillWhere ends the sessions pred selects (a user removed, rights narrowed)
// and returns how many.
func (s *Server) KillWhere(pred func(SessionInfo) bool) int {
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	n := 0
	for _, ss := range all { // pred runs unlocked: it may call back into the Server
		if pred(ss.info()) {
			ss.end("killed")
			n++
		}
	}
	return n
}

// ServeHTTP serves /whep/{camera} and /whep/{camera}/{session}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/whep/")
	if !ok {
		s.fail(w, http.StatusNotFound, "not_found", "no such resource")
		return
	}
	camera, sessionID, hasSession := strings.Cut(rest, "/")
	if !s.idRe.MatchString(camera) || (hasSession && !validSessionID(sessionID)) {
		s.fail(w, http.StatusNotFound, "not_found", "no such camera or session")
		return
	}
	s.cors(w, r)
	if r.Method == http.MethodOptions {
		if hasSession {
			w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
		} else {
			w.Header().Set("Allow", "POST, OPTIONS")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	allowed := (!hasSession && r.Method == http.MethodPost) ||
		(hasSession && (r.Method == http.MethodPatch || r.Method == http.MethodDelete))
	if !allowed {
		if hasSession {
			w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
		} else {
			w.Header().Set("Allow", "POST, OPTIONS")
		}
		s.fail(w, http.StatusMethodNotAllowed, "method", "method not allowed")
		return
	}
	if ok, wait := s.limiter.allow(remoteHost(r), time.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
		s.fail(w, http.StatusTooManyRequests, "rate_limited", "too many requests; slow down")
		return
	}
	switch r.Method {
	case http.MethodPost:
		s.post(w, r, camera)
	case http.MethodPatch:
		s.patch(w, r, camera, sessionID)
	case http.MethodDelete:
		s.delete(w, r, camera, sessionID)
	}
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.CORSOrigins, origin) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		h.Set("Access-Control-Max-Age", "600")
	}
}

func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// overLimitLocked reports whether one more session for the named viewer
// would pass a cap: the status to answer and why, or 0. Called under s.mu.
func (s *Server) overLimitLocked(name string) (int, string) {
	if s.MaxSessions > 0 && len(s.sessions) >= s.MaxSessions {
		return http.StatusServiceUnavailable, "the gateway is at its session limit; try again later"
	}
	if s.MaxSessionsPerViewer > 0 {
		n := 0
		for _, ss := range s.sessions {
			if ss.viewer.Name == name {
				n++
			}
		}
		if n >= s.MaxSessionsPerViewer {
			return http.StatusTooManyRequests, fmt.Sprintf("you already have %d live sessions, the most one account may hold; end one first", n)
		}
	}
	return 0, ""
}

// fail answers a JSON error and counts it.
func (s *Server) fail(w http.ResponseWriter, status int, reason, msg string) {
	s.Metrics.errors.WithLabelValues(reason).Inc()
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cordon"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func reasonOf(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "access_error"
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, camera string) (Viewer, bool) {
	v, err := s.Access.Authorize(r, camera)
	if err != nil {
		st := StatusOf(err)
		msg := err.Error()
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((he.RetryAfter+time.Second-1)/time.Second))))
		}
		if st == http.StatusInternalServerError {
			s.Log.Warn("access check failed", "camera", camera, "err", err)
			msg = "internal error"
		}
		s.fail(w, st, reasonOf(st), msg)
		return Viewer{}, false
	}
	if v.Remote == "" {
		v.Remote = r.RemoteAddr
	}
	return v, true
}

func contentType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, camera string) {
	start := time.Now()
	viewer, ok := s.authorize(w, r, camera)
	if !ok {
		return
	}
	stream := s.Hub.Get(camera)
	if stream == nil {
		s.fail(w, http.StatusNotFound, "not_found", "unknown camera")
		return
	}
	s.mu.Lock()
	status, msg := s.overLimitLocked(viewer.Name)
	s.mu.Unlock()
	if status != 0 {
		w.Header().Set("Retry-After", "5")
		s.fail(w, status, "session_limit", msg)
		return
	}
	if rd, ok := s.Events.(Readier); ok {
		if err := rd.Ready(); err != nil {
			s.Log.Error("refusing to start a session: audit not ready", "err", err)
			w.Header().Set("Retry-After", "5")
			s.fail(w, http.StatusServiceUnavailable, "audit_unavailable", "viewing is unavailable: "+err.Error())
			return
		}
	}
	if ct := contentType(r); ct != "application/sdp" {
		s.fail(w, http.StatusUnsupportedMediaType, "content_type", "the offer must be sent as Content-Type: application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the offer is larger than 64 KiB")
			return
		}
		s.fail(w, http.StatusBadRequest, "bad_offer", "cannot read the offer")
		return
	}
	off, err := parseOffer(body)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "bad_offer", err.Error())
		return
	}

	reader, err := stream.AddReader(relay.ReaderConf{Protocol: "webrtc"})
	if err != nil {
		w.Header().Set("Retry-After", "5")
		s.fail(w, http.StatusServiceUnavailable, "camera_unreachable", "the camera is not available")
		return
	}
	ok = false
	defer func() {
		if !ok {
			reader.Close()
		}
	}()
	wctx, cancel := context.WithTimeout(r.Context(), s.ReadyTimeout)
	tracks, err := reader.WaitReady(wctx)
	cancel()
	if err != nil {
		s.Log.Info("camera unreachable for a WHEP viewer", "camera", camera, "user", viewer.Name, "err", err)
		w.Header().Set("Retry-After", "5")
		s.fail(w, http.StatusServiceUnavailable, "camera_unreachable", "the camera is unreachable; try again shortly")
		return
	}
	picks, err := chooseCodecs(off, tracks)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "no_codec", err.Error())
		return
	}
	sel := make([]int, len(picks))
	for i, p := range picks {
		sel[i] = p.track.Index
	}
	reader.SetTracks(sel)

	ss, answer, err := s.newSession(r.Context(), camera, viewer, reader, tracks, picks, string(body))
	if err != nil {
		var bad badOfferError
		if errors.As(err, &bad) {
			s.fail(w, http.StatusBadRequest, "bad_offer", bad.Error())
			return
		}
		s.Log.Warn("cannot set up WHEP session", "camera", camera, "err", err)
		s.fail(w, http.StatusInternalServerError, "internal", "cannot set up the session")
		return
	}
	ok = true // the session owns the reader now

	// fail closed: a session whose start cannot be recorded never starts
	// (recorded outside the lock: the audit write is fsynced)
	if s.Events != nil {
		if err := s.Events.ViewStart(ss.info()); err != nil {
			ss.teardown()
			w.Header().Set("Retry-After", "5")
			s.fail(w, http.StatusServiceUnavailable, "audit_unavailable", "the session cannot be recorded in the audit log; new sessions are refused")
			return
		}
	}
	s.mu.Lock()
	status, msg = s.overLimitLocked(viewer.Name) // authoritative: POSTs run concurrently
	if s.closed {
		status, msg = http.StatusServiceUnavailable, "the server is shutting down"
	}
	if status != 0 {
		s.mu.Unlock()
		ss.teardown()
		if s.Events != nil {
			s.Events.ViewEnd(ss.info(), 0, 0)
		}
		w.Header().Set("Retry-After", "5")
		s.fail(w, status, "session_limit", msg)
		return
	}
	s.sessions[ss.id] = ss
	s.wg.Add(1)
	s.mu.Unlock()

	s.Metrics.sessions.WithLabelValues(camera).Inc()
	go ss.run()

	h := w.Header()
	h.Set("Location", "/whep/"+camera+"/"+ss.id)
	h.Set("Content-Type", "application/sdp")
	h.Set("ETag", `"`+ss.etag+`"`)
	h.Set("Cache-Control", "no-store")
	for _, u := range s.ICEServers {
		if !strings.ContainsAny(u, "<>\"") {
			h.Add("Link", "<"+u+`>; rel="ice-server"`)
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	s.Metrics.setup.Observe(time.Since(start).Seconds())
	s.Log.Debug("WHEP session started", "session", ss.id[:8], "camera", camera, "user", viewer.Name, "remote", viewer.Remote)
}

// lookup authorizes a PATCH/DELETE: a valid Bearer of the session's own
// principal, or an admin. Others get 404, not revealing the session exists.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, camera, id string) (*session, bool) {
	v, ok := s.authorize(w, r, camera)
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil || ss.camera != camera || !(v.Admin || (v.Name == ss.viewer.Name && v.Kind == ss.viewer.Kind)) {
		s.fail(w, http.StatusNotFound, "not_found", "no such session")
		return nil, false
	}
	return ss, true
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, camera, id string) {
	ss, ok := s.lookup(w, r, camera, id)
	if !ok {
		return
	}
	ss.end("deleted")
	<-ss.finished // media has stopped when we answer
	w.WriteHeader(http.StatusOK)
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, camera, id string) {
	ss, ok := s.lookup(w, r, camera, id)
	if !ok {
		return
	}
	if ct := contentType(r); ct != "application/trickle-ice-sdpfrag" {
		s.fail(w, http.StatusUnsupportedMediaType, "content_type", "PATCH takes Content-Type: application/trickle-ice-sdpfrag")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != `"`+ss.etag+`"` {
		s.fail(w, http.StatusPreconditionFailed, "etag", "the session's ETag does not match")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPatchBytes))
	if err != nil {
		s.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the SDP fragment is too large")
		return
	}
	status, msg := ss.trickle(string(body))
	if status != http.StatusNoContent {
		s.fail(w, status, "trickle", msg)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// newPeerConnection builds a per-session API: a MediaEngine with exactly the
// chosen codecs and the two light interceptors.
func (s *Server) newPeerConnection(picks []pick) (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	for _, p := range picks {
		if err := me.RegisterCodec(p.codec, p.kind); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(sr)
	nr, err := nack.NewResponderInterceptor(nack.ResponderSize(512))
	if err != nil {
		return nil, err
	}
	reg.Add(nr)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(s.settings), webrtc.WithInterceptorRegistry(reg))
	conf := webrtc.Configuration{}
	if len(s.ICEServers) > 0 {
		conf.ICEServers = []webrtc.ICEServer{{URLs: s.ICEServers}}
	}
	return api.NewPeerConnection(conf)
}
