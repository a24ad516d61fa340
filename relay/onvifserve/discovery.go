package onvifserve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/time/rate"

	"cordon/internal/soap"
)

// WS-Discovery (2005/04, what ONVIF uses).
const (
	nsWSD          = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	nsDN           = "http://www.onvif.org/ver10/network/wsdl"
	wsdGroup       = "239.255.255.250"
	DiscoveryPort  = 3702
	actionProbe    = nsWSD + "/Probe"
	actionMatches  = nsWSD + "/ProbeMatches"
	wsaAnonymous   = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	maxProbeBytes  = 8 << 10
	discoveryRate  = 10 // answers per second in total
	discoveryBurst = 20
)

var probeLimits = soap.Limits{MaxBytes: maxProbeBytes, MaxDepth: 12, MaxTokens: 400, MaxAttrs: 16}

// Discovery is the optional WS-Discovery responder (onvif.discovery): it
// answers Probe messages for ONVIF devices with one ProbeMatch naming
// cordon's device service. It joins the multicast group on the one
// interface that holds IP (the operator-side address of onvif.listen)
// and answers only probes that arrived on that interface, so the camera
// network never hears from it. Answers are unicast to the prober and
// rate-limited in total. It sends no Hello or Bye.
type Discovery struct {
	// IP is the operator-side address (a specific IPv4 address of one
	// interface, never the unspecified address).
	IP string
	// Port is the UDP port (0 = DiscoveryPort; tests pick a free one with
	// PickPort).
	Port     int
	PickPort bool
	// XAddr is the device service URL to announce
	// (http(s)://IP:port/onvif/device_service).
	XAddr string
	// Endpoint is the device's urn:uuid; Scopes the scopes it announces
	// (Server.EndpointUUID and Server.Scopes).
	Endpoint string
	Scopes   []string
	Logger   *slog.Logger
	Metrics  *Metrics

	log     *slog.Logger
	ifIndex int
	conn    net.PacketConn
	pc      *ipv4.PacketConn
	limiter *rate.Limiter
	done    chan struct{}
	mu      sync.Mutex
	seq     uint64
	inst    uint32
}

// EndpointUUID is the device's WS-Discovery endpoint reference.
func (s *Server) EndpointUUID() string { return s.uuid }

// Scopes are the scopes the device announces.
func (s *Server) Scopes() []string { return s.scopeList() }

// Initialize finds the interface, joins the group there and starts
// answering.
func (d *Discovery) Initialize() error {
	ip := net.ParseIP(d.IP).To4()
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("onvif discovery: %q is not a specific IPv4 address of the operator side", d.IP)
	}
	if d.XAddr == "" || d.Endpoint == "" {
		return errors.New("onvif discovery: XAddr and Endpoint are required")
	}
	d.log = d.Logger
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "onvif-discovery")
	ifi, err := interfaceOf(ip)
	if err != nil {
		return err
	}
	if ifi.Flags&net.FlagMulticast == 0 {
		return fmt.Errorf("onvif discovery: interface %s cannot receive multicast", ifi.Name)
	}
	port := d.Port
	if port == 0 && !d.PickPort {
		port = DiscoveryPort
	}
	lc := net.ListenConfig{Control: reuseAddr}
	conn, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort("0.0.0.0", itoa(port)))
	if err != nil {
		return fmt.Errorf("onvif discovery: %w", err)
	}
	pc := ipv4.NewPacketConn(conn)
	if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: net.ParseIP(wsdGroup)}); err != nil {
		conn.Close()
		return fmt.Errorf("onvif discovery: join %s on %s: %w", wsdGroup, ifi.Name, err)
	}
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		conn.Close()
		return fmt.Errorf("onvif discovery: %w", err)
	}
	var ib [4]byte
	_, _ = rand.Read(ib[:])
	d.inst = uint32(ib[0])<<24 | uint32(ib[1])<<16 | uint32(ib[2])<<8 | uint32(ib[3])
	d.ifIndex, d.conn, d.pc = ifi.Index, conn, pc
	d.limiter = rate.NewLimiter(discoveryRate, discoveryBurst)
	d.done = make(chan struct{})
	go d.run()
	d.log.Info("WS-Discovery responder on", "interface", ifi.Name, "port", d.LocalPort())
	return nil
}

// LocalPort is the UDP port listened on.
func (d *Discovery) LocalPort() int { return d.conn.LocalAddr().(*net.UDPAddr).Port }

// Close stops the responder.
func (d *Discovery) Close() {
	if d.conn == nil {
		return
	}
	_ = d.conn.Close()
	<-d.done
}

func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	return errors.Join(err, serr)
}

// interfaceOf returns the interface holding ip.
func interfaceOf(ip net.IP) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("onvif discovery: %w", err)
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return &ifs[i], nil
			}
		}
	}
	return nil, fmt.Errorf("onvif discovery: no interface holds %s", ip)
}

func (d *Discovery) run() {
	defer close(d.done)
	buf := make([]byte, maxProbeBytes+1)
	for {
		n, cm, src, err := d.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if cm == nil || cm.IfIndex != d.ifIndex {
			d.Metrics.probe("ignored") // another interface: the camera side never gets an answer
			continue
		}
		if n > maxProbeBytes {
			d.Metrics.probe("malformed")
			continue
		}
		resp, result := d.answer(buf[:n])
		if resp == nil {
			d.Metrics.probe(result)
			continue
		}
		if !d.limiter.Allow() {
			d.Metrics.probe("rate_limited")
			continue
		}
		_ = d.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := d.conn.WriteTo(resp, src); err != nil {
			d.log.Debug("ProbeMatch not sent", "err", err)
			continue
		}
		d.Metrics.probe("answered")
	}
}

// answer returns the ProbeMatches for a Probe that asks for an ONVIF
// device (or for anything), nil otherwise with the reason.
func (d *Discovery) answer(msg []byte) ([]byte, string) {
	env, err := soap.ParseEnvelopeBytes(msg, probeLimits)
	if err != nil {
		return nil, "malformed"
	}
	p := env.Payload()
	if p == nil || p.Space != nsWSD || p.Local != "Probe" {
		return nil, "ignored"
	}
	if !typesMatch(p.Child(nsWSD, "Types")) || !scopesMatch(p.Child(nsWSD, "Scopes"), d.Scopes) {
		return nil, "ignored"
	}
	relates := ""
	if env.Header != nil {
		relates = env.Header.TextOf("MessageID")
	}
	if len(relates) > 256 {
		return nil, "malformed"
	}
	return d.matches(relates), "answered"
}

// typesMatch: no Types matches everything; otherwise every type asked
// for must be one cordon is (dn:NetworkVideoTransmitter, tds:Device).
func typesMatch(t *soap.Element) bool {
	if t == nil || t.Text == "" {
		return true
	}
	fields := strings.Fields(t.Text)
	if len(fields) > 8 {
		return false
	}
	for _, f := range fields {
		q := t.ResolveQName(f)
		switch {
		case q.Space == nsDN && q.Local == "NetworkVideoTransmitter":
		case q.Space == soap.NsDevice && q.Local == "Device":
		default:
			return false
		}
	}
	return true
}

// scopesMatch: every scope asked for must prefix (by path segment) one of
// the device's scopes (the default rfc3986 matching rule).
func scopesMatch(s *soap.Element, have []string) bool {
	if s == nil || s.Text == "" {
		return true
	}
	if by, ok := s.Attr("MatchBy"); ok && by != "" && by != nsWSD+"/rfc3986" {
		return false
	}
	want := strings.Fields(s.Text)
	if len(want) > 16 {
		return false
	}
	for _, w := range want {
		ok := false
		for _, h := range have {
			if h == w || strings.HasPrefix(h, strings.TrimSuffix(w, "/")+"/") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *Discovery) matches(relatesTo string) []byte {
	d.mu.Lock()
	d.seq++
	seq := d.seq
	d.mu.Unlock()
	var id [16]byte
	_, _ = rand.Read(id[:])
	h := hex.EncodeToString(id[:])
	msgID := "urn:uuid:" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	header := []soap.Node{
		soap.Text("wsa:MessageID", msgID),
		soap.Text("wsa:To", wsaAnonymous),
		soap.Text("wsa:Action", actionMatches),
		soap.Node{Name: "wsd:AppSequence"}.With("InstanceId", fmt.Sprint(d.inst)).With("MessageNumber", fmt.Sprint(seq)),
	}
	if relatesTo != "" {
		header = append(header, soap.Text("wsa:RelatesTo", relatesTo))
	}
	m := &soap.Message{
		Version:    soap.SOAP12,
		Namespaces: map[string]string{"wsa": nsWSA2004, "wsd": nsWSD, "dn": nsDN},
		Header:     header,
		Body: []soap.Node{soap.El("wsd:ProbeMatches", soap.El("wsd:ProbeMatch",
			soap.El("wsa:EndpointReference", soap.Text("wsa:Address", d.Endpoint)),
			soap.Text("wsd:Types", "dn:NetworkVideoTransmitter tds:Device"),
			soap.Text("wsd:Scopes", strings.Join(d.Scopes, " ")),
			soap.Text("wsd:XAddrs", d.XAddr),
			soap.Text("wsd:MetadataVersion", "1")))},
	}
	return m.Bytes()
}
