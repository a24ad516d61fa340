package camnet

import (
	"context"
	"cordon/internal/ratelimit"
	"cordon/internal/testtool"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type auditRec struct{ event, camera, remote, detail string }

type fakeAudit struct {
	mu   sync.Mutex
	recs []auditRec
}

func (a *fakeAudit) Record(event, camera, remote, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, auditRec{event, camera, remote, detail})
}

func (a *fakeAudit) all() []auditRec {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]auditRec(nil), a.recs...)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	camNorth = netip.MustParseAddr("127.0.0.2")
	camSouth = netip.MustParseAddr("127.0.0.3")
	stranger = netip.MustParseAddr("127.0.0.4")
)

type harness struct {
	s     *Sinkhole
	reg   *prometheus.Registry
	audit *fakeAudit
	logs  *testtool.SyncBuffer
	clock *fakeClock
}

func newHarness(t testing.TB, start bool, tweak func(*Sinkhole)) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), audit: &fakeAudit{}, logs: &testtool.SyncBuffer{},
		clock: &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
	h.s = &Sinkhole{
		Listen:  "127.0.0.1:0",
		Logger:  slog.New(slog.NewJSONHandler(h.logs, nil)),
		Metrics: NewMetrics(h.reg),
		Audit:   h.audit,
		Now:     h.clock.Now,
	}
	if tweak != nil {
		tweak(h.s)
	}
	h.s.SetCameras(map[netip.Addr]string{camNorth: "gate-north", camSouth: "gate-south"})
	if start {
		if err := h.s.Initialize(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.s.Close)
	}
	return h
}

// exchange sends a real DNS query from local (a camera host on loopback).
func exchange(t *testing.T, server netip.AddrPort, proto string, local netip.Addr, name string, qtype uint16, timeout time.Duration) (*dns.Msg, *dns.Msg, error) {
	t.Helper()
	d := &net.Dialer{Timeout: timeout}
	if proto == "tcp" {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	} else {
		d.LocalAddr = &net.UDPAddr{IP: local.AsSlice()}
	}
	c := &dns.Client{Net: proto, Dialer: d, Timeout: timeout}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(q, server.String())
	return q, r, err
}

func checkNXDOMAIN(t *testing.T, q, r *dns.Msg) {
	t.Helper()
	if !r.Response || r.Id != q.Id {
		t.Errorf("not a response to our query: QR=%v id=%d want %d", r.Response, r.Id, q.Id)
	}
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("rcode = %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if len(r.Answer) != 0 || len(r.Ns) != 0 {
		t.Errorf("sinkhole gave records: answer=%v ns=%v", r.Answer, r.Ns)
	}
	if len(r.Question) != 1 || r.Question[0] != q.Question[0] {
		t.Errorf("question not echoed: %v, want %v", r.Question, q.Question)
	}
}

// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestSinkholeAnswersNXDOMAINAndAttributes(t *testing.T) {
	h := newHarness(t, true, nil)
	addr := h.s.Addr()
	cases := []struct {
		proto, name string
		qtype       uint16
		from        netip.Addr
	}{
		{"udp", "litedev.hik-connect.com", dns.TypeA, camNorth},
		{"tcp", "litedev.hik-connect.com", dns.TypeAAAA, camNorth},
		{"udp", "P2P3.Reolink.com", dns.TypeA, camSouth},
		{"tcp", "www.easy4ipcloud.com", dns.TypeTXT, camSouth},
		{"udp", "example.org", dns.TypeA, stranger},
		{"udp", "version.bind", dns.TypeTXT, camNorth},
	}
	for _, c := range cases {
		q, r, err := exchange(t, addr, c.proto, c.from, c.name, c.qtype, 2*time.Second)
		if err != nil {
			t.Fatalf("%s query %s from %s: %v", c.proto, c.name, c.from, err)
		}
		checkNXDOMAIN(t, q, r)
	}

	count := func(camera, vendor string) float64 {
		return testutil.ToFloat64(h.s.Metrics.dnsQueries.WithLabelValues(camera, vendor))
	}
	for _, w := range []struct {
		camera, vendor string
		n              float64
	}{
		{"gate-north", "hikvision_hikconnect", 2},
		{"gate-north", "none", 1},
		{"gate-south", "reolink_p2p", 1},
		{"gate-south", "dahua_easy4ip", 1},
		{"unknown", "none", 1},
	} {
		if got := count(w.camera, w.vendor); got != w.n {
			t.Errorf("cordon_camera_dns_queries_total{camera=%q,vendor=%q} = %v, want %v", w.camera, w.vendor, got, w.n)
		}
	}

	rep := map[string]CameraEgress{}
	for _, e := range h.s.Report() {
		rep[e.Camera] = e
	}
	north := rep["gate-north"]
	if north.Queries != 3 || len(north.Vendors) != 1 || north.Vendors[0].Vendor != "hikvision_hikconnect" || north.Vendors[0].Queries != 2 {
		t.Errorf("gate-north report = %+v", north)
	}
	if len(north.TopNames) == 0 || north.TopNames[0].Name != "litedev.hik-connect.com" || north.TopNames[0].Queries != 2 {
		t.Errorf("gate-north top names = %+v", north.TopNames)
	}
	if south := rep["gate-south"]; south.Queries != 2 || len(south.Vendors) != 2 {
		t.Errorf("gate-south report = %+v", south)
	}
	if u := rep[UnknownCamera]; u.Queries != 1 || len(u.Remotes) != 1 || u.Remotes[0] != "127.0.0.4" {
		t.Errorf("unknown report = %+v", u)
	}

	recs := h.audit.all()
	if len(recs) != 5 { // hik-connect twice from the same camera within the hour: once
		t.Fatalf("audit records = %d, want 5: %+v", len(recs), recs)
	}
	var sawUnknown bool
	for _, r := range recs {
		if r.event != EventEgressAttempt {
			t.Errorf("audit event %q", r.event)
		}
		if r.camera == UnknownCamera && r.remote == "127.0.0.4" && strings.Contains(r.detail, "example.org") {
			sawUnknown = true
		}
		if r.camera == "gate-north" && strings.Contains(r.detail, "hik-connect") &&
			(r.remote != "127.0.0.2" || !strings.Contains(r.detail, "hikvision_hikconnect")) {
			t.Errorf("audit record %+v", r)
		}
	}
	if !sawUnknown {
		t.Errorf("no audit record for the unknown source: %+v", recs)
	}
	if !strings.Contains(h.logs.String(), `"vendor":"hikvision_hikconnect"`) {
		t.Errorf("log lacks the vendor field: %s", h.logs.String())
	}
}

func TestSinkholeRateLimitPerSource(t *testing.T) {
	h := newHarness(t, true, func(s *Sinkhole) { s.Rate = 1; s.Burst = 3 })
	addr := h.s.Addr()
	// The fake clock does not move: camNorth gets exactly its burst.
	for i := 0; i < 3; i++ {
		if _, _, err := exchange(t, addr, "udp", camNorth, fmt.Sprintf("n%d.example", i), dns.TypeA, 2*time.Second); err != nil {
			t.Fatalf("query %d within burst: %v", i, err)
		}
	}
	_, _, err := exchange(t, addr, "udp", camNorth, "over.example", dns.TypeA, 300*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("query over the limit: err = %v, want a timeout (silent drop)", err)
	}
	// Another camera is not starved by the first.
	if _, _, err := exchange(t, addr, "udp", camSouth, "south.example", dns.TypeA, 2*time.Second); err != nil {
		t.Fatalf("other camera starved: %v", err)
	}
	if got := testutil.ToFloat64(h.s.Metrics.dnsDropped.WithLabelValues("rate_limit")); got != 1 {
		t.Errorf("dropped{rate_limit} = %v, want 1", got)
	}
	// Dropped queries are not recorded.
	if got := testutil.ToFloat64(h.s.Metrics.dnsQueries.WithLabelValues("gate-north", "none")); got != 3 {
		t.Errorf("recorded queries = %v, want 3", got)
	}
	// Tokens come back with time.
	h.clock.Add(2 * time.Second)
	if _, _, err := exchange(t, addr, "tcp", camNorth, "later.example", dns.TypeA, 2*time.Second); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func packQuery(t testing.TB, name string) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSinkholeNoticeOncePerHour(t *testing.T) {
	h := newHarness(t, false, nil)
	ask := func(from netip.Addr, name string) {
		t.Helper()
		if resp := h.s.handle(packQuery(t, name), from, "udp"); resp == nil {
			t.Fatalf("no answer for %s", name)
		}
	}
	nAudit := func() int { return len(h.audit.all()) }
	nLogs := func() int { return strings.Count(h.logs.String(), "sinkholed") }

	ask(camNorth, "litedev.hik-connect.com")
	ask(camNorth, "LITEDEV.hik-connect.com.") // same name, normalised
	if nAudit() != 1 || nLogs() != 1 {
		t.Fatalf("after two identical queries: audit=%d logs=%d, want 1/1", nAudit(), nLogs())
	}
	h.clock.Add(59 * time.Minute)
	ask(camNorth, "litedev.hik-connect.com")
	if nAudit() != 1 || nLogs() != 1 {
		t.Fatalf("within the hour: audit=%d logs=%d, want 1/1", nAudit(), nLogs())
	}
	h.clock.Add(time.Minute)
	ask(camNorth, "litedev.hik-connect.com")
	if nAudit() != 2 || nLogs() != 2 {
		t.Fatalf("after the hour: audit=%d logs=%d, want 2/2", nAudit(), nLogs())
	}
	ask(camSouth, "litedev.hik-connect.com") // other camera: its own notice
	ask(camNorth, "other.example")           // other name: its own notice
	if nAudit() != 4 || nLogs() != 4 {
		t.Fatalf("other camera/name: audit=%d logs=%d, want 4/4", nAudit(), nLogs())
	}
	if got := testutil.ToFloat64(h.s.Metrics.dnsQueries.WithLabelValues("gate-north", "hikvision_hikconnect")); got != 4 {
		t.Errorf("every query is still counted: %v, want 4", got)
	}
}

func TestSinkholeBoundedTables(t *testing.T) {
	h := newHarness(t, false, func(s *Sinkhole) {
		s.MaxNotices = 3
		s.MaxNamesPerCamera = 4
		s.Rate = -1
	})
	for i := 0; i < 3; i++ {
		h.s.handle(packQuery(t, "keep.example"), camNorth, "udp")
	}
	for i := 0; i < 50; i++ {
		h.s.handle(packQuery(t, fmt.Sprintf("noise%d.example", i)), camNorth, "udp")
	}
	h.s.mu.Lock()
	notices, order := len(h.s.notices), h.s.order.Len()
	names := len(h.s.stats["gate-north"].names)
	h.s.mu.Unlock()
	if notices != 3 || order != 3 {
		t.Errorf("notice table = %d/%d entries, want 3", notices, order)
	}
	if names != 4 {
		t.Errorf("name table = %d entries, want 4", names)
	}
	rep := h.s.Report()
	var north CameraEgress
	for _, e := range rep {
		if e.Camera == "gate-north" {
			north = e
		}
	}
	if north.Queries != 53 || len(north.TopNames) != 4 || north.TopNames[0].Name != "keep.example" || north.TopNames[0].Queries != 3 {
		t.Errorf("report keeps the frequent name: %+v", north)
	}
	// The evicted notice for keep.example is gone: it is noticed again.
	before := len(h.audit.all())
	h.s.handle(packQuery(t, "keep.example"), camNorth, "udp")
	if len(h.audit.all()) != before+1 {
		t.Errorf("evicted notice not re-issued")
	}

	// the per-address limiter's table is bounded too
	l := ratelimit.New[netip.Addr](1, 1, 5)
	now := time.Unix(0, 0)
	for i := 0; i < 100; i++ {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
	}
	if l.Len() > 5 {
		t.Errorf("limiter table = %d entries, want <= 5", l.Len())
	}
}

func TestSinkholeOddMessages(t *testing.T) {
	h := newHarness(t, false, func(s *Sinkhole) { s.Rate = -1 })
	q := packQuery(t, "x.example")
	unpack := func(b []byte) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		return m
	}
	if r := h.s.handle(q[:5], camNorth, "udp"); r != nil {
		t.Errorf("short packet answered")
	}
	resp := append([]byte(nil), q...)
	resp[2] |= 0x80
	if r := h.s.handle(resp, camNorth, "udp"); r != nil {
		t.Errorf("a response was answered (reflection)")
	}
	if m := unpack(h.s.handle(q[:len(q)-3], camNorth, "udp")); m.Rcode != dns.RcodeFormatError || m.Id != binaryID(q) {
		t.Errorf("truncated question: rcode %s", dns.RcodeToString[m.Rcode])
	}
	noQ := append([]byte(nil), q[:12]...)
	noQ[5] = 0
	if m := unpack(h.s.handle(noQ, camNorth, "udp")); m.Rcode != dns.RcodeFormatError {
		t.Errorf("no question: rcode %s", dns.RcodeToString[m.Rcode])
	}
	n := new(dns.Msg)
	n.SetNotify("example.")
	nb, _ := n.Pack()
	if m := unpack(h.s.handle(nb, camNorth, "udp")); m.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: rcode %s", dns.RcodeToString[m.Rcode])
	}
	e := new(dns.Msg)
	e.SetQuestion("edns.example.", dns.TypeA)
	e.SetEdns0(4096, true)
	eb, _ := e.Pack()
	if m := unpack(h.s.handle(eb, camNorth, "udp")); m.Rcode != dns.RcodeNameError || m.IsEdns0() == nil {
		t.Errorf("EDNS query: rcode %s, opt %v", dns.RcodeToString[m.Rcode], m.IsEdns0())
	}
	e.IsEdns0().SetVersion(1)
	eb, _ = e.Pack()
	if m := unpack(h.s.handle(eb, camNorth, "udp")); m.Rcode != dns.RcodeBadVers {
		t.Errorf("EDNS version 1: rcode %d, want BADVERS", m.Rcode)
	}
}

func binaryID(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func TestSinkholeReloadCameras(t *testing.T) {
	h := newHarness(t, false, nil)
	h.s.handle(packQuery(t, "a.example"), camNorth, "udp")
	h.s.SetCameras(map[netip.Addr]string{camNorth: "renamed", netip.MustParseAddr("::ffff:127.0.0.9"): "mapped"})
	h.s.handle(packQuery(t, "b.example"), camNorth, "udp")
	h.s.handle(packQuery(t, "c.example"), netip.MustParseAddr("127.0.0.9"), "udp")
	for cam, want := range map[string]float64{"gate-north": 1, "renamed": 1, "mapped": 1} {
		if got := testutil.ToFloat64(h.s.Metrics.dnsQueries.WithLabelValues(cam, "none")); got != want {
			t.Errorf("%s: %v queries, want %v", cam, got, want)
		}
	}
}

func TestReportHandler(t *testing.T) {
	h := newHarness(t, false, nil)
	h.s.handle(packQuery(t, "litedev.hik-connect.com"), camNorth, "udp")
	srv := httptest.NewServer(h.s.ReportHandler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var got []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["camera"] != "gate-north" || got[1]["camera"] != "gate-south" {
		t.Fatalf("report = %v", got)
	}
	if got[0]["queries"].(float64) != 1 || got[0]["last_seen"] != "2025-03-01T12:00:00Z" {
		t.Errorf("gate-north = %v", got[0])
	}
	vendors := got[0]["vendors"].([]any)
	if len(vendors) != 1 || vendors[0].(map[string]any)["vendor"] != "hikvision_hikconnect" || vendors[0].(map[string]any)["name"] != "Hik-Connect" {
		t.Errorf("vendors = %v", vendors)
	}
	if got[1]["queries"].(float64) != 0 || got[1]["last_seen"] != nil {
		t.Errorf("quiet camera = %v", got[1])
	}
	post, err := http.Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", post.StatusCode)
	}
}

func TestSinkholeInitializeErrors(t *testing.T) {
	if err := (&Sinkhole{}).Initialize(); err == nil {
		t.Error("empty Listen accepted")
	}
	if err := (&Sinkhole{Listen: "256.0.0.1:53"}).Initialize(); err == nil {
		t.Error("bad Listen accepted")
	}
	h := newHarness(t, true, nil)
	other := &Sinkhole{Listen: h.s.Addr().String()}
	if err := other.Initialize(); err == nil {
		other.Close()
		t.Error("second sinkhole on a busy port accepted")
	}
	h.s.Close()
	h.s.Close() // idempotent
}

func TestResolveHosts(t *testing.T) {
	logs := &testtool.SyncBuffer{}
	r := Resolver{
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Timeout: 500 * time.Millisecond,
		Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			switch host {
			case "cam-a.local":
				return []netip.Addr{netip.MustParseAddr("10.20.0.21"), netip.MustParseAddr("::ffff:10.20.0.22")}, nil
			case "slow.local":
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return nil, errors.New("no such host")
		},
	}
	got := r.ResolveHosts(context.Background(), map[string]string{
		"lit":    "10.20.0.12",
		"port":   "10.20.0.13:554",
		"v6":     "[fd00::13]:554",
		"named":  "cam-a.local",
		"gone":   "gone.local",
		"slow":   "slow.local",
		"chan-2": "10.20.0.30:554",
		"chan-1": "10.20.0.30",
	})
	want := map[netip.Addr]string{
		netip.MustParseAddr("10.20.0.12"): "lit",
		netip.MustParseAddr("10.20.0.13"): "port",
		netip.MustParseAddr("fd00::13"):   "v6",
		netip.MustParseAddr("10.20.0.21"): "named",
		netip.MustParseAddr("10.20.0.22"): "named",
		netip.MustParseAddr("10.20.0.30"): "chan-1",
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for a, id := range want {
		if got[a] != id {
			t.Errorf("%s -> %q, want %q", a, got[a], id)
		}
	}
	for _, s := range []string{"camera=gone", "camera=slow", "cameras=chan-1,chan-2"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log lacks %q: %s", s, logs.String())
		}
	}
}

func TestSinkholeTCPConnLimitPerSource(t *testing.T) {
	h := newHarness(t, true, nil)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: camNorth.AsSlice()}, Timeout: time.Second}
	for i := 0; i < maxTCPConnsPerSource+1; i++ {
		c, err := d.Dial("tcp", h.s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The extra connection is closed by the server.
	last := held[len(held)-1]
	_ = last.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := last.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("connection over the per-source limit stayed open: %v", err)
	}
	// Another camera still gets TCP service.
	if _, _, err := exchange(t, h.s.Addr(), "tcp", camSouth, "south.example", dns.TypeA, 2*time.Second); err != nil {
		t.Fatalf("other camera locked out of TCP: %v", err)
	}
	if got := testutil.ToFloat64(h.s.Metrics.dnsDropped.WithLabelValues("tcp_conn_limit")); got != 1 {
		t.Errorf("dropped{tcp_conn_limit} = %v, want 1", got)
	}
}
