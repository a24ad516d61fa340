// Package whep serves cordon's cameras to browsers over WHEP
// (draft-ietf-wish-whep): one pion PeerConnection per viewer, all ICE
// traffic on one UDP port (and optionally one ICE-TCP port), host
// candidates only (the configured host IPs, or the listen interfaces), no
// mDNS, media taken packetized from relay readers and written as is.
//
// Requests: POST /whep/{camera} (offer -> 201 + Location + answer with all
// candidates; ?stream=sub for the camera's sub stream, see StreamName; 422
// for a stream with B-frames, naming the fix and the sub stream if any), PATCH /whep/{camera}/{session} (trickle-ice-sdpfrag: remote
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
// Interceptors: only RTCP sender reports (lip sync in browsers) and NACK
// answers from the retransmission index (rtx.go: the shared payloads, not
// a per-viewer copy; a lost packet is otherwise a broken picture until the
// next keyframe, since cameras cannot make keyframes on demand). No TWCC, no
// receiver-side interceptors, no PLI handling: incoming RTCP is read and
// discarded.
//
// ICEServers, when set, add STUN/TURN candidates; pion gathers those on
// their own sockets, so the single-port property only holds without them.
package whep

import (
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"cordon/internal/httpx"
	"cordon/internal/icepolicy"
	"cordon/internal/ratelimit"
	"cordon/relay"
	"cordon/relay/session"
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
	// UDPGSO: "auto" (or "") batches each frame's packets to a viewer into
	// one UDP segmentation offload send where the kernel has it (cork.go);
	// "off" sends them one by one.
	UDPGSO string
	// SendBurst and SendRate pace every session's sends (pace.go): at most
	// SendBurst packets at once, SendRate packets a second (at least twice
	// the stream's rate). Defaults 48 and 2600.
	SendBurst int
	SendRate  int

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
	// ICEPolicy decides which remote ICE candidates a session may use
	// (candidates.go); nil = the zero icepolicy.Filter (no loopback,
	// link-local, multicast; 16 per session). SetICEPolicy replaces it.
	ICEPolicy *icepolicy.Filter
	// WrapTCP, when set, wraps the ICE-TCP listener (connection caps and
	// timeouts: internal/connlimit).
	WrapTCP func(net.Listener) (net.Listener, error)
	// Sessions is the registry of live sessions shared with the other doors
	// (list, kill, caps: past the protocol's cap 503, past a principal's
	// 429). nil = a registry of its own with the default caps.
	Sessions *session.Registry

	udpConn  net.PacketConn
	udpMux   *advertUDPMux
	tcpLn    net.Listener
	tcpMux   ice.TCPMux
	settings webrtc.SettingEngine
	certs    certSource
	limiter  *ratelimit.Limiter[string]
	idRe     *regexp.Regexp
	ice      atomic.Pointer[icePolicy]

	mu     sync.Mutex
	closed bool
	peers  map[string]*peer // this server's sessions, also in Sessions
	wg     sync.WaitGroup
}

// Initialize opens the sockets. It fails when a port is in use, naming it.
func (s *Server) Initialize() error {
	if s.Hub == nil || s.Access == nil {
		return errors.New("whep: Hub and Access are required")
	}
	if s.UDPListen == "" {
		return errors.New("whep: udp_listen is required")
	}
	s.defaults()
	return s.listen()
}

func (s *Server) defaults() {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.Log = s.Log.With("component", "whep")
	if s.Metrics == nil {
		s.Metrics = NewMetrics(nil)
	}
	if s.Sessions == nil {
		s.Sessions = &session.Registry{}
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
	if s.SendBurst <= 0 {
		s.SendBurst = DefaultSendBurst
	}
	if s.SendRate <= 0 {
		s.SendRate = DefaultSendRate
	}
	if s.RateLimit == 0 {
		s.RateLimit = 10
	}
	if s.RateBurst <= 0 {
		s.RateBurst = 20
	}
	s.limiter = ratelimit.New[string](s.RateLimit, s.RateBurst, 65536)
	s.idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	s.peers = map[string]*peer{}
	s.SetICEPolicy(s.ICEPolicy)
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
	all := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		all = append(all, p)
	}
	s.mu.Unlock()
	for _, p := range all {
		p.End("server_closed")
	}
	s.wg.Wait()
	s.closeSockets()
}

// ServeHTTP serves /whep/{camera} and /whep/{camera}/{session}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/whep/")
	if !ok {
		s.fail(w, http.StatusNotFound, "not_found", "no such resource")
		return
	}
	camera, sessionID, hasSession := strings.Cut(rest, "/")
	if !s.idRe.MatchString(camera) || (hasSession && !session.ValidID(sessionID)) {
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
	if ok, wait := s.limiter.Allow(httpx.RemoteHost(r), time.Now()); !ok {
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

// fail answers a JSON error and counts it.
func (s *Server) fail(w http.ResponseWriter, status int, reason, msg string) {
	s.Metrics.errors.WithLabelValues(reason).Inc()
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cordon"`)
	}
	httpx.WriteError(w, status, msg)
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

// authorize asks Access about a POST (camera != "") or a PATCH/DELETE
// (camera == "": authentication only) and answers a refusal.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, camera string) (Viewer, bool) {
	var v Viewer
	var err error
	if camera != "" {
		v, err = s.Access.Authorize(r, camera)
	} else {
		v, err = s.Access.Authenticate(r)
	}
	if err != nil {
		st := StatusOf(err)
		msg := err.Error()
		var he *HTTPError
		if errors.As(err, &he) {
			if he.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int((he.RetryAfter+time.Second-1)/time.Second))))
			}
			if he.Challenge != "" && st == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", he.Challenge)
			}
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
