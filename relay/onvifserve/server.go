package onvifserve

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"cordon/internal/addrlimit"
	"cordon/internal/httpdigest"
	"cordon/internal/soap"
)

// Service paths the face advertises (and answers).
const (
	DevicePath = "/onvif/device_service"
	MediaPath  = "/onvif/media_service"
	PTZPath    = "/onvif/ptz_service"
)

// Identity strings of cordon as a device.
const (
	Manufacturer = "cordon"
	Model        = "cordon video gateway"
	HardwareID   = "cordon"
	// Realm is the HTTP Digest realm (cordon's, never a camera's).
	Realm = "cordon-onvif"
)

// Defaults of the limits.
const (
	DefaultRate        = 50  // requests per second per address
	DefaultBurst       = 200 // a VMS asks for every profile's URI at once
	DefaultMaxInFlight = 64
	DefaultCallTimeout = 10 * time.Second
	// MaxRequestBytes bounds a request body: ONVIF requests are small.
	MaxRequestBytes = 64 << 10
	maxHeaderBytes  = 16 << 10
	maxLimiters     = 4096
)

// requestLimits bound the XML of a request.
var requestLimits = soap.Limits{MaxBytes: MaxRequestBytes, MaxDepth: 24, MaxTokens: 4000, MaxAttrs: 32}

// Server is the ONVIF device face. Set the fields, call Initialize (which
// listens), and Close when done.
type Server struct {
	// Listen is onvif.listen (e.g. ":8000").
	Listen string
	// TLSConfig, when set, serves HTTPS (the http.tls_cert/key pair).
	TLSConfig *tls.Config
	// RTSPPort is the port of cordon's RTSP re-serve (rtsp.listen) and
	// RTSPTLS whether it serves RTSPS; stream URIs point there.
	RTSPPort int
	RTSPTLS  bool
	// DeviceName is the name in scopes ("" = "cordon"); Version is the
	// firmware version shown; SerialNumber identifies this gateway (a
	// node id; "" = derived from the host name).
	DeviceName, Version, SerialNumber string
	// Rate and Burst limit requests per remote address; MaxInFlight caps
	// requests served at once (0 = defaults).
	Rate        float64
	Burst       int
	MaxInFlight int
	// CallTimeout bounds one request's work (PTZ camera calls included).
	CallTimeout time.Duration
	// WrapListener, when set, wraps the TCP listener before TLS (the
	// gateway's per-address and total connection caps).
	WrapListener func(net.Listener) (net.Listener, error)
	Access       Access
	Logger       *slog.Logger
	Metrics      *Metrics
	// Now is the clock (nil = time.Now).
	Now func() time.Time

	log      *slog.Logger
	ops      map[opKey]op
	verifier *soap.Verifier
	digest   *httpdigest.Server
	seen     *replayCache
	limits   *addrlimit.Limiter
	inflight chan struct{}
	ln       net.Listener
	srv      *http.Server
	wg       sync.WaitGroup
	uuid     string
}

// Initialize checks the fields, applies defaults and starts listening.
func (s *Server) Initialize() error {
	if err := s.prepare(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("onvif: listen %s: %w", s.Listen, err)
	}
	if s.WrapListener != nil {
		wrapped, err := s.WrapListener(ln)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("onvif: %w", err)
		}
		ln = wrapped
	}
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
		ln = tls.NewListener(ln, cfg)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.CallTimeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ONVIF server stopped", "err", err)
		}
	}()
	s.log.Info("ONVIF device face listening", "addr", ln.Addr().String(), "tls", s.TLSConfig != nil)
	return nil
}

// prepare validates the fields and builds the state; Initialize without
// the listener (tests and the fuzz target serve the handler directly).
func (s *Server) prepare() error {
	switch {
	case s.Access == nil:
		return errors.New("onvif: Access is nil")
	case s.RTSPPort <= 0 || s.RTSPPort > 65535:
		return errors.New("onvif: RTSPPort must be the RTSP re-serve's port (the face points stream URIs there)")
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "onvif")
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.DeviceName == "" {
		s.DeviceName = "cordon"
	}
	if s.SerialNumber == "" {
		h, _ := osHostname()
		sum := sha256.Sum256([]byte("cordon-onvif:" + h))
		s.SerialNumber = hex.EncodeToString(sum[:6])
	}
	if s.Version == "" {
		s.Version = "dev"
	}
	if s.Rate <= 0 {
		s.Rate = DefaultRate
	}
	if s.Burst <= 0 {
		s.Burst = DefaultBurst
	}
	if s.MaxInFlight <= 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	if s.CallTimeout <= 0 {
		s.CallTimeout = DefaultCallTimeout
	}
	s.uuid = deviceUUID(s.SerialNumber)
	s.verifier = soap.NewVerifier()
	s.verifier.Now = s.Now
	d, err := httpdigest.NewServer(Realm)
	if err != nil {
		return err
	}
	d.Now = s.Now
	s.seen = newReplayCache(65536, d.NonceTTL+time.Minute, s.Now)
	d.Seen = s.seen.seen
	s.digest = d
	s.limits = addrlimit.New(s.Rate, s.Burst, maxLimiters, s.Now)
	s.inflight = make(chan struct{}, s.MaxInFlight)
	s.ops = s.operations()
	return nil
}

// Addr is the listening address (after Initialize).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the device service URL on the listening address.
func (s *Server) URL() string {
	scheme := "http"
	if s.TLSConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String() + DevicePath
}

// Close stops the listener and waits for running requests (bounded by
// the call timeout).
func (s *Server) Close() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.CallTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
}

// opKey names an operation by its element's namespace and local name.
type opKey struct{ ns, local string }

// op is one operation: its handler and whether it is open (no sign-in).
type op struct {
	open bool
	fn   func(c *call) ([]soap.Node, *soap.Fault)
}

// call is one request being answered.
type call struct {
	s      *Server
	ctx    context.Context
	r      *http.Request
	req    *soap.Element // the operation element
	p      Principal
	remote string
	// host and port the client connected to (for XAddrs and stream URIs)
	host, port string
}

// ServeHTTP answers one SOAP request. (Function over 50 lines: the
// request pipeline, one check after the other.)
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case DevicePath, MediaPath, PTZPath:
	default:
		http.NotFound(w, r)
		return
	}
	v := soap.RequestVersion(r)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeFault(w, v, http.StatusMethodNotAllowed, soap.NewFault(soap.CodeSender, "SOAP requests are POSTs"))
		return
	}
	remote := remoteHost(r.RemoteAddr)
	if !s.limits.Allow(remote) {
		s.Metrics.request("", resultRateLimited)
		w.Header().Set("Retry-After", "1")
		writeFault(w, v, http.StatusTooManyRequests, soap.NewFault(soap.CodeReceiver, "too many requests from this address; slow down"))
		return
	}
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		s.Metrics.request("", resultBusy)
		w.Header().Set("Retry-After", "1")
		writeFault(w, v, http.StatusServiceUnavailable, soap.NewFault(soap.CodeReceiver, "too many requests in progress; try again shortly"))
		return
	}
	env, f := soap.ReadRequest(w, r, requestLimits)
	if env != nil {
		v = env.Version
	}
	if f != nil {
		s.Metrics.request("", resultFault)
		soap.WriteFault(w, v, f)
		return
	}
	payload := env.Payload()
	if payload == nil {
		soap.WriteFault(w, v, soap.WellFormed("empty SOAP Body"))
		return
	}
	if f := mustUnderstand(env); f != nil {
		s.Metrics.request("", resultFault)
		soap.WriteFault(w, v, f)
		return
	}
	o, known := s.ops[opKey{payload.Space, payload.Local}]
	name := opName(payload, known)
	ctx, cancel := context.WithTimeout(r.Context(), s.CallTimeout)
	defer cancel()
	c := &call{s: s, ctx: ctx, r: r, req: payload, remote: remote}
	c.host, c.port = s.hostOf(r)
	if !known || !o.open {
		p, ok := s.authenticate(w, r, env, remote, ctx)
		if !ok {
			s.Metrics.request(name, resultUnauthorized)
			return
		}
		c.p = p
	}
	if !known {
		s.Metrics.request(name, resultUnsupported)
		s.log.Debug("unsupported ONVIF operation", "op", soap.Clip(payload.Local, 64), "remote", remote)
		soap.WriteFault(w, v, soap.ActionNotSupported())
		return
	}
	res, f := o.fn(c)
	if f != nil {
		s.Metrics.request(name, resultFault)
		soap.WriteFault(w, v, f)
		return
	}
	s.Metrics.request(name, resultOK)
	soap.WriteResponse(w, v, res...)
}

// writeFault answers a fault with a given HTTP status (rate limits,
// 401, 405), where the SOAP binding's 400/500 would mislead clients.
func writeFault(w http.ResponseWriter, v soap.Version, status int, f *soap.Fault) {
	b := (&soap.Message{Version: v, Body: []soap.Node{f.Node(v)}}).Bytes()
	w.Header().Set("Content-Type", v.ContentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// mustUnderstand faults a header block the face does not understand but
// the client marked mustUnderstand (SOAP 1.2 section 5.2.3). WS-Security
// and WS-Addressing blocks are understood.
func mustUnderstand(env *soap.Envelope) *soap.Fault {
	if env.Header == nil {
		return nil
	}
	for _, h := range env.Header.Children {
		mu, _ := h.Attr("mustUnderstand")
		if mu != "1" && mu != "true" {
			continue
		}
		switch h.Space {
		case soap.NsWSSE, nsWSA, nsWSA2004:
			continue
		}
		return soap.NewFault(soap.CodeMustUnderstand, "header block "+soap.Clip(h.Local, 64)+" not understood")
	}
	return nil
}

// WS-Addressing namespaces (clients send Action/To/MessageID headers).
const (
	nsWSA     = "http://www.w3.org/2005/08/addressing"
	nsWSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
)

// opName is the metric label of an operation: known ones by name, the
// rest as "unknown" (labels stay bounded).
func opName(p *soap.Element, known bool) string {
	if !known {
		return "unknown"
	}
	return p.Local
}

func remoteHost(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
