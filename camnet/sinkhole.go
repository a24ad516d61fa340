package camnet

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"

	"cordon/internal/ratelimit"
)

// UnknownCamera is the camera id recorded for queries from a source address
// that is not one of the configured cameras' addresses.
const UnknownCamera = "unknown"

// EventEgressAttempt is the audit event the sinkhole records.
const EventEgressAttempt = "egress_attempt"

// Auditor receives egress attempts; the gateway adapts it to the audit log
// (event "egress_attempt", camera, remote address, detail) through an
// audit.Aggregator, since anyone on the camera network can send queries at
// will: one line per camera (or address) and minute, then a count. Record
// must not block for long: it is called on the DNS serving path.
type Auditor interface {
	Record(event, camera, remote, detail string)
}

// Defaults for the Sinkhole's tunables.
const (
	DefaultDNSRate           = 50  // queries per second per source address
	DefaultDNSBurst          = 100 // bucket size per source address
	DefaultNoticeInterval    = time.Hour
	DefaultMaxNotices        = 10000 // (camera, name) pairs remembered for log/audit de-duplication
	DefaultMaxNamesPerCamera = 256   // distinct names counted per camera for the report
	DefaultMaxTCPConns       = 64
	maxTCPConnsPerSource     = 4
	DefaultReportTopNames    = 25
	maxRemotesPerCamera      = 16
	tcpIdleTimeout           = 10 * time.Second
)

// Sinkhole is the camera-side DNS server. It answers every query with
// NXDOMAIN (never a real answer, never forwarded), echoing the question, and
// records the asking camera (by source address), the name and the vendor
// cloud the name belongs to. It serves UDP and TCP on the same address.
//
// Exported fields are configuration: set them before Initialize. The camera
// mapping is set with SetCameras, before or after Initialize (reload).
type Sinkhole struct {
	// Listen is the address to serve on, e.g. "10.20.0.1:53". With port 0,
	// UDP and TCP share one ephemeral port (see Addr).
	Listen string
	// Catalogue classifies names; nil means DefaultCatalogue().
	Catalogue *Catalogue
	// Logger for notices and errors; nil discards.
	Logger *slog.Logger
	// Metrics; nil means unregistered metrics.
	Metrics *Metrics
	// Audit receives one egress_attempt per (camera, name) per
	// NoticeInterval; nil: no auditing.
	Audit Auditor
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Rate and Burst limit queries per source address (token bucket). Over
	// the limit, packets are dropped silently and counted
	// (cordon_camera_dns_dropped_total{reason="rate_limit"}). 0 = defaults;
	// Rate < 0 disables limiting.
	Rate  float64
	Burst int
	// NoticeInterval: a (camera, name) pair is logged and audited at most
	// once per interval. 0 = one hour.
	NoticeInterval time.Duration
	// MaxNotices bounds the de-duplication table (oldest evicted). 0 = default.
	MaxNotices int
	// MaxNamesPerCamera bounds the per-camera name table of the report
	// (least-queried evicted). 0 = default.
	MaxNamesPerCamera int
	// MaxTCPConns bounds concurrent TCP connections. 0 = default.
	MaxTCPConns int

	setupOnce sync.Once
	now       func() time.Time
	log       *slog.Logger
	metrics   *Metrics
	cat       *Catalogue
	catErr    error
	limit     *ratelimit.Limiter[netip.Addr]

	camMu   sync.RWMutex
	cameras map[netip.Addr]string

	mu      sync.Mutex
	stats   map[string]*camStats
	notices map[noticeKey]*list.Element
	order   *list.List // of *noticeEntry, front = most recent notice

	udp      *net.UDPConn
	tcp      *net.TCPListener
	addr     netip.AddrPort
	connMu   sync.Mutex
	conns    map[net.Conn]struct{}
	perSrc   map[netip.Addr]int
	closing  bool
	wg       sync.WaitGroup
	closeOne sync.Once
}

type noticeKey struct{ camera, name string }

type noticeEntry struct {
	key noticeKey
	at  time.Time
}

func (s *Sinkhole) setup() {
	s.setupOnce.Do(func() {
		s.now = s.Now
		if s.now == nil {
			s.now = time.Now
		}
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		s.log = s.log.With("component", "camnet.sinkhole")
		s.metrics = s.Metrics
		if s.metrics == nil {
			s.metrics = NewMetrics(nil)
		}
		s.cat = s.Catalogue
		if s.cat == nil {
			s.cat, s.catErr = DefaultCatalogue()
		}
		rate, burst := s.Rate, s.Burst
		if rate == 0 {
			rate = DefaultDNSRate
		}
		if burst <= 0 {
			burst = DefaultDNSBurst
		}
		s.limit = ratelimit.New[netip.Addr](rate, burst, 0)
		if s.NoticeInterval <= 0 {
			s.NoticeInterval = DefaultNoticeInterval
		}
		if s.MaxNotices <= 0 {
			s.MaxNotices = DefaultMaxNotices
		}
		if s.MaxNamesPerCamera <= 0 {
			s.MaxNamesPerCamera = DefaultMaxNamesPerCamera
		}
		if s.MaxTCPConns <= 0 {
			s.MaxTCPConns = DefaultMaxTCPConns
		}
		s.stats = map[string]*camStats{}
		s.notices = map[noticeKey]*list.Element{}
		s.order = list.New()
		s.conns = map[net.Conn]struct{}{}
		s.perSrc = map[netip.Addr]int{}
	})
}

// SetCameras replaces the source address -> camera id mapping (see
// ResolveHosts). Safe to call at any time, before or after Initialize.
func (s *Sinkhole) SetCameras(cameras map[netip.Addr]string) {
	s.setup()
	m := make(map[netip.Addr]string, len(cameras))
	for a, id := range cameras {
		m[a.Unmap()] = id
	}
	s.camMu.Lock()
	s.cameras = m
	s.camMu.Unlock()
}

func (s *Sinkhole) camera(addr netip.Addr) string {
	s.camMu.RLock()
	defer s.camMu.RUnlock()
	if id, ok := s.cameras[addr]; ok {
		return id
	}
	return UnknownCamera
}

func (s *Sinkhole) configuredCameras() []string {
	s.camMu.RLock()
	defer s.camMu.RUnlock()
	ids := make([]string, 0, len(s.cameras))
	for _, id := range s.cameras {
		ids = append(ids, id)
	}
	return ids
}

// Initialize binds UDP and TCP on Listen and starts serving.
func (s *Sinkhole) Initialize() error {
	s.setup()
	if s.catErr != nil {
		return s.catErr
	}
	if s.Listen == "" {
		return errors.New("camnet: sinkhole Listen is empty")
	}
	udp, tcp, err := listenPair(s.Listen)
	if err != nil {
		return fmt.Errorf("camnet: sinkhole listen %s: %w", s.Listen, err)
	}
	s.udp, s.tcp = udp, tcp
	s.addr = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	s.log.Info("DNS sinkhole listening", "addr", s.addr.String())
	return nil
}

// listenPair binds UDP and TCP on the same address; with port 0 it retries
// until both get the same ephemeral port.
func listenPair(address string) (*net.UDPConn, *net.TCPListener, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		ua, err := net.ResolveUDPAddr("udp", address)
		if err != nil {
			return nil, nil, err
		}
		u, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, nil, err
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		ta, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			_ = u.Close()
			return nil, nil, err
		}
		t, err := net.ListenTCP("tcp", ta)
		if err == nil {
			return u, t, nil
		}
		_ = u.Close()
		if port != "0" || try >= 10 {
			return nil, nil, err
		}
	}
}

// Addr is the bound address (UDP and TCP share it). Valid after Initialize.
func (s *Sinkhole) Addr() netip.AddrPort { return s.addr }

// Close stops serving and waits for the serving goroutines. Idempotent.
func (s *Sinkhole) Close() {
	s.closeOne.Do(func() {
		if s.udp != nil {
			_ = s.udp.Close()
		}
		if s.tcp != nil {
			_ = s.tcp.Close()
		}
		s.connMu.Lock()
		s.closing = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.connMu.Unlock()
		s.wg.Wait()
	})
}

func (s *Sinkhole) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, src, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("DNS sinkhole UDP read failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		resp := s.handle(buf[:n], src.Addr().Unmap(), "udp")
		if resp == nil {
			continue
		}
		if _, err := s.udp.WriteToUDPAddrPort(resp, src); err != nil {
			s.log.Debug("DNS sinkhole UDP write failed", "remote", src.String(), "err", err)
		}
	}
}

func (s *Sinkhole) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("DNS sinkhole TCP accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		s.connMu.Lock()
		// Bounded overall and per source: one camera holding connections
		// open cannot lock the others out of TCP.
		if s.closing || len(s.conns) >= s.MaxTCPConns || s.perSrc[src] >= maxTCPConnsPerSource {
			s.connMu.Unlock()
			s.metrics.dnsDropped.WithLabelValues("tcp_conn_limit").Inc()
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.perSrc[src]++
		s.wg.Add(1)
		s.connMu.Unlock()
		go s.serveConn(c, src)
	}
}

func (s *Sinkhole) serveConn(c *net.TCPConn, src netip.Addr) {
	defer s.wg.Done()
	defer func() {
		s.connMu.Lock()
		delete(s.conns, c)
		if s.perSrc[src]--; s.perSrc[src] <= 0 {
			delete(s.perSrc, src)
		}
		s.connMu.Unlock()
		_ = c.Close()
	}()
	var lenBuf [2]byte
	buf := make([]byte, 65535)
	for {
		_ = c.SetDeadline(time.Now().Add(tcpIdleTimeout))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		resp := s.handle(buf[:n], src, "tcp")
		if resp == nil {
			return // dropped: end the connection rather than leave it hanging
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// handle processes one raw DNS message from src and returns the raw
// response, or nil to send nothing. It never panics on any input.
func (s *Sinkhole) handle(raw []byte, src netip.Addr, proto string) []byte {
	s.setup()
	now := s.now()
	if ok, _ := s.limit.Allow(src, now); !ok {
		s.metrics.dnsDropped.WithLabelValues("rate_limit").Inc()
		return nil
	}
	if len(raw) < 12 {
		s.metrics.dnsDropped.WithLabelValues("malformed").Inc()
		return nil
	}
	if raw[2]&0x80 != 0 { // QR set: a response; never answer it (no reflection loops)
		s.metrics.dnsDropped.WithLabelValues("response").Inc()
		return nil
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil || len(req.Question) != 1 {
		s.metrics.dnsDropped.WithLabelValues("malformed").Inc()
		return headerReply(raw, dns.RcodeFormatError)
	}
	if req.Opcode != dns.OpcodeQuery {
		s.metrics.dnsDropped.WithLabelValues("not_query").Inc()
		return headerReply(raw, dns.RcodeNotImplemented)
	}
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeNameError)
	resp.Authoritative = false
	resp.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(1232, false)
		if opt.Version() != 0 {
			resp.Rcode = dns.RcodeBadVers // extended rcode, carried in the OPT record
		}
	}
	out, err := resp.Pack()
	if err != nil {
		s.metrics.dnsDropped.WithLabelValues("malformed").Inc()
		return headerReply(raw, dns.RcodeServerFailure)
	}
	q := req.Question[0]
	s.record(now, src, proto, q.Name, dns.TypeToString[q.Qtype])
	return out
}

// headerReply answers with a bare header: the request's id and opcode, QR
// set, the given rcode, no sections.
func headerReply(raw []byte, rcode int) []byte {
	if len(raw) < 12 {
		return nil
	}
	out := make([]byte, 12)
	copy(out[0:2], raw[0:2])                      // id
	out[2] = 0x80 | (raw[2] & 0x78) | raw[2]&0x01 // QR, opcode, RD
	out[3] = byte(rcode & 0x0f)
	return out
}

func (s *Sinkhole) record(now time.Time, src netip.Addr, proto, qname, qtype string) {
	camera := s.camera(src)
	name := NormalizeName(qname)
	if name == "" {
		name = "."
	}
	vendorID, vendorName := VendorNone, ""
	if v, ok := s.cat.Match(name); ok {
		vendorID, vendorName = v.ID, v.Name
	}
	s.metrics.dnsQueries.WithLabelValues(camera, vendorID).Inc()
	remote := src.String()

	s.mu.Lock()
	st := s.stats[camera]
	if st == nil {
		st = newCamStats(now)
		s.stats[camera] = st
	}
	st.add(now, name, vendorID, vendorName, remote, s.MaxNamesPerCamera)
	notice := s.shouldNotice(noticeKey{camera, name}, now)
	s.mu.Unlock()

	if !notice {
		return
	}
	attrs := []any{"camera", camera, "remote", remote, "name", name, "qtype", qtype, "vendor", vendorID, "proto", proto}
	detail := fmt.Sprintf("dns query %s %s answered NXDOMAIN", name, qtype)
	if vendorID != VendorNone {
		detail += fmt.Sprintf("; vendor cloud %s (%s)", vendorID, vendorName)
		s.log.Warn("camera tried to reach a vendor cloud; sinkholed", attrs...)
	} else {
		s.log.Info("camera DNS query sinkholed", attrs...)
	}
	if s.Audit != nil {
		s.Audit.Record(EventEgressAttempt, camera, remote, detail)
	}
}

// shouldNotice reports whether (camera, name) is due a log line and audit
// record; the table is bounded (oldest notice evicted). Called with mu held.
func (s *Sinkhole) shouldNotice(k noticeKey, now time.Time) bool {
	if el, ok := s.notices[k]; ok {
		e := el.Value.(*noticeEntry)
		if now.Sub(e.at) < s.NoticeInterval && !now.Before(e.at) {
			return false
		}
		e.at = now
		s.order.MoveToFront(el)
		return true
	}
	for len(s.notices) >= s.MaxNotices {
		back := s.order.Back()
		s.order.Remove(back)
		delete(s.notices, back.Value.(*noticeEntry).key)
	}
	s.notices[k] = s.order.PushFront(&noticeEntry{key: k, at: now})
	return true
}
