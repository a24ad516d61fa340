package connlimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"cordon/internal/addrlimit"
	"cordon/internal/testtool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type event struct {
	accepted bool
	reason   string
	conn     net.Conn
}

// serve starts a capped listener on 127.0.0.1:0 whose accept loop reports
// every admitted connection (held open until the test ends) and every
// refusal on events.
func serve(t *testing.T, l *Listener) (addr string, events chan event) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	events = make(chan event, 100)
	l.Listener = inner
	hook := l.OnReject
	l.OnReject = func(c net.Conn, reason string) {
		if hook != nil {
			hook(c, reason)
		}
		events <- event{reason: reason}
	}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			events <- event{accepted: true, conn: c}
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return inner.Addr().String(), events
}

// dialFrom is testtool.DialFrom under this file's name (kept so that tests
// other branches add here keep compiling).
func dialFrom(t *testing.T, local, addr string) net.Conn { return testtool.DialFrom(t, local, addr) }

func next(t *testing.T, events chan event) event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no accept or refusal")
	}
	return event{}
}

// waitEOF waits until the server closed c.
func waitEOF(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("still open after %v", limit)
	}
}

func TestPerAddressAndTotalCaps(t *testing.T) {
	m := NewMetrics(nil)
	l := &Listener{Protocol: "rtsp", PerAddress: 3, Total: 5, Metrics: m, OnReject: RTSPReject}
	addr, events := serve(t, l)
	var fromA, srvA []net.Conn
	for i := range 4 {
		c := dialFrom(t, "127.0.0.1", addr)
		e := next(t, events)
		switch {
		case i < 3 && !e.accepted, i == 3 && (e.accepted || e.reason != ReasonPerAddress):
			t.Fatalf("connection %d from A: %+v", i+1, e)
		}
		fromA, srvA = append(fromA, c), append(srvA, e.conn)
	}
	// The refused one got an RTSP answer, then the close.
	line, _ := bufio.NewReader(fromA[3]).ReadString('\n')
	if !strings.HasPrefix(line, "RTSP/1.0 503") {
		t.Fatalf("refusal answer %q", line)
	}
	waitEOF(t, fromA[3], 5*time.Second)
	// Another address is not affected by A's cap...
	for range 2 {
		dialFrom(t, "127.0.0.2", addr)
		if e := next(t, events); !e.accepted {
			t.Fatalf("B refused: %+v", e)
		}
	}
	// ...but the total cap holds for everyone.
	dialFrom(t, "127.0.0.3", addr)
	if e := next(t, events); e.accepted || e.reason != ReasonTotal {
		t.Fatalf("over the total: %+v", e)
	}
	if total, a := l.Open("127.0.0.1:5555"); total != 5 || a != 3 {
		t.Fatalf("open %d, from A %d", total, a)
	}
	// A connection the server closes gives its place back.
	_ = srvA[0].Close()
	if total, _ := l.Open("127.0.0.1"); total != 4 {
		t.Fatalf("open %d after a close", total)
	}
	dialFrom(t, "127.0.0.1", addr)
	if e := next(t, events); !e.accepted {
		t.Fatalf("after a close: %+v", e)
	}
	if testutil.ToFloat64(m.Rejected.WithLabelValues("rtsp", ReasonPerAddress)) != 1 ||
		testutil.ToFloat64(m.Rejected.WithLabelValues("rtsp", ReasonTotal)) != 1 ||
		testutil.ToFloat64(m.Open.WithLabelValues("rtsp")) != 5 {
		t.Fatal("metrics")
	}
}

// An exempt address (a cluster's node) passes the per-address cap, not
// the total; other addresses keep their cap.
func TestPerAddressExempt(t *testing.T) {
	node := netip.MustParseAddr("127.0.0.7")
	l := &Listener{Protocol: "rtsp", PerAddress: 1, Total: 4, PerAddressExempt: func(ip netip.Addr) bool { return ip == node }}
	addr, events := serve(t, l)
	for i := range 3 {
		dialFrom(t, "127.0.0.7", addr)
		if e := next(t, events); !e.accepted {
			t.Fatalf("node connection %d refused: %+v", i+1, e)
		}
	}
	dialFrom(t, "127.0.0.8", addr)
	if e := next(t, events); !e.accepted {
		t.Fatalf("first connection of another address: %+v", e)
	}
	dialFrom(t, "127.0.0.7", addr)
	if e := next(t, events); e.accepted || e.reason != ReasonTotal {
		t.Fatalf("node over the total: %+v", e)
	}
	if total, _ := l.Open("127.0.0.7"); total != 4 {
		t.Fatalf("open %d", total)
	}
}

// The server side's accounting: the place is freed when the server
// closes an accepted connection (twice is harmless).
func TestServerCloseReleasesOnce(t *testing.T) {
	l := &Listener{Protocol: "http", PerAddress: 1}
	addr, events := serve(t, l)
	dialFrom(t, "127.0.0.1", addr)
	e := next(t, events)
	_ = e.conn.Close()
	_ = e.conn.Close()
	if total, _ := l.Open("127.0.0.1"); total != 0 {
		t.Fatalf("open %d after close", total)
	}
	dialFrom(t, "127.0.0.1", addr)
	if e := next(t, events); !e.accepted {
		t.Fatal("refused after the place was freed")
	}
}

// A connection that never sends is closed after HandshakeTimeout; one
// that sends survives it; an idle one is closed after IdleTimeout while
// an active one stays.
func TestHandshakeAndIdleTimeouts(t *testing.T) {
	m := NewMetrics(nil)
	l := &Listener{Protocol: "ice_tcp", HandshakeTimeout: 300 * time.Millisecond, IdleTimeout: time.Second, Metrics: m}
	addr, events := serve(t, l)
	silent := dialFrom(t, "127.0.0.1", addr)
	next(t, events)
	talker := dialFrom(t, "127.0.0.2", addr)
	if _, err := talker.Write([]byte{'h'}); err != nil { // its first bytes, at once
		t.Fatal(err)
	}
	srv := next(t, events).conn
	echo := make(chan struct{})
	go func() { // the server side reads (that is activity) and echoes
		defer close(echo)
		buf := make([]byte, 16)
		for {
			n, err := srv.Read(buf)
			if err != nil {
				return
			}
			if _, err := srv.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	waitEOF(t, silent, 10*time.Second)
	if time.Since(start) > 5*time.Second {
		t.Fatal("silent connection closed late")
	}
	// The talker keeps talking for 2.5 idle periods.
	buf := make([]byte, 1)
	if _, err := io.ReadFull(talker, buf); err != nil {
		t.Fatalf("the talker was closed: %v", err)
	}
	pace := time.NewTicker(100 * time.Millisecond) // paced traffic is what the test is about
	defer pace.Stop()
	for time.Since(start) < 2500*time.Millisecond {
		_ = talker.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := talker.Write([]byte{'x'}); err != nil {
			t.Fatalf("active connection closed: %v", err)
		}
		if _, err := io.ReadFull(talker, buf); err != nil {
			t.Fatalf("active connection closed: %v", err)
		}
		<-pace.C
	}
	// Then it goes quiet and is closed as idle.
	waitEOF(t, talker, 10*time.Second)
	<-echo
	if testutil.ToFloat64(m.TimedOut.WithLabelValues("ice_tcp", "handshake")) != 1 || testutil.ToFloat64(m.TimedOut.WithLabelValues("ice_tcp", "idle")) != 1 {
		t.Fatal("timeout metrics")
	}
}

// The attack of issue 10 at package level: one address holds as many idle
// connections as it may; the next is answered 503 while a login from
// another address is served.
func TestHTTPIdleFloodDoesNotStarveOthers(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Listener: inner, Protocol: "http", PerAddress: 10, Total: 100, OnReject: HTTPReject}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	defer func() { _ = srv.Close(); <-done }()
	addr := inner.Addr().String()
	for range 10 {
		dialFrom(t, "127.0.0.1", addr)
	}
	testtool.WaitFor(t, 10*time.Second, "the listener's counters", func() bool { _, a := l.Open("127.0.0.1"); return a == 10 })
	flood := dialFrom(t, "127.0.0.1", addr)
	resp, err := http.ReadResponse(bufio.NewReader(flood), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("11th from the flooding address: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	defer other.CloseIdleConnections()
	r, err := other.Get("http://" + addr + "/api/v1/login")
	if err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("another address: %v %v", r, err)
	}
	_ = r.Body.Close()
}

func TestInitializeValidation(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = inner.Close() }()
	for _, l := range []*Listener{{Protocol: "x"}, {Listener: inner}, {Listener: inner, Protocol: "x", Total: -1}} {
		if err := l.Initialize(); err == nil {
			t.Errorf("accepted %+v", l)
		}
	}
	if _, err := (&Listener{Listener: inner, Protocol: "x"}).Accept(); err == nil {
		t.Error("Accept before Initialize")
	}
	if addrlimit.Key("[2001:db8:1:2::5]:80") != addrlimit.Key("2001:db8:1:2:ffff::9") || addrlimit.Key("::ffff:192.0.2.1") != "192.0.2.1" {
		t.Error("address keys")
	}
}

func TestDescriptorBudget(t *testing.T) {
	b := Budget{Totals: map[string]int{"limits.http.total": 512, "limits.rtsp.total": 256, "limits.ice_tcp.total": 128}, Cameras: 20}
	if b.Need() != 512+256+128+BaseDescriptors+20*PerCameraDescriptors {
		t.Fatal(b.Need())
	}
	if err := CheckBudget(b, 4096); err != nil {
		t.Fatal(err)
	}
	err := CheckBudget(b, 1024)
	if err == nil || !strings.Contains(err.Error(), "limits.http.total + limits.ice_tcp.total + limits.rtsp.total (896)") || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("over the limit: %v", err)
	}
	b.Totals["limits.rtsp.total"] = 0
	if err := CheckBudget(b, 1<<20); err == nil || !strings.HasPrefix(err.Error(), "limits.rtsp.total:") {
		t.Fatalf("unlimited total: %v", err)
	}
	if n, err := OpenFileLimit(); err != nil || n == 0 {
		t.Fatalf("open-file limit %d %v", n, err)
	}
}
