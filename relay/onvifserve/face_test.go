package onvifserve

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cordon/internal/httpdigest"
	"cordon/internal/soap"
	"cordon/internal/testtool/onvifnode"
	"cordon/internal/testtool/testca"
)

func lastFailure(t *testing.T, before int) failure {
	t.Helper()
	f, _ := fx.access.record()
	if len(f) != before+1 {
		t.Fatalf("want one more counted failure, have %v (before %d)", f, before)
	}
	return f[len(f)-1]
}

func failureCount() int { f, _ := fx.access.record(); return len(f) }

// GetSystemDateAndTime is open; everything else needs credentials: 401
// with a Digest challenge and a NotAuthorized fault in the body.
func TestOpenAndClosedOperations(t *testing.T) {
	r := post(t, fx.url(DevicePath), "", `<tds:GetSystemDateAndTime/>`)
	if y := r.mustOK(t).TextOf("SystemDateAndTime", "UTCDateTime", "Date", "Year"); y != strconv.Itoa(time.Now().UTC().Year()) {
		t.Fatalf("year %q", y)
	}
	for _, op := range []string{`<tds:GetDeviceInformation/>`, `<trt:GetProfiles/>`, `<tds:GetUsers/>`} {
		r = post(t, fx.url(DevicePath), "", op)
		if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Digest ") ||
			r.fault == nil || !r.fault.Has(soap.NsError, "NotAuthorized") {
			t.Fatalf("%s without credentials: %d %v %s", op, r.status, r.header, r.body)
		}
	}
}

// Bad requests get SOAP faults, never bare errors: unknown operations
// (ter:ActionNotSupported), not XML, too large, too deep, a DTD, an empty
// Body, a GET, an unknown mustUnderstand header; SOAP 1.1 gets SOAP 1.1.
func TestFaultsNeverBareErrors(t *testing.T) {
	auth := func() string { return wsse(t, "alice", aliceONVIF, time.Now()) }
	for _, op := range []string{`<tds:GetUsers/>`, `<tptz:AbsoluteMove/>`, `<trt:GetSnapshotUri/>`, `<x:Foo xmlns:x="urn:x"/>`, `<trt:SetVideoEncoderConfiguration/>`} {
		r := post(t, fx.url(MediaPath), auth(), op)
		if r.status != 500 || r.fault == nil || r.fault.Code != soap.CodeReceiver || !r.fault.Has(soap.NsError, "ActionNotSupported") {
			t.Fatalf("%s: %d %s", op, r.status, r.body)
		}
	}
	send := func(method, ctype, body string) reply {
		req, _ := http.NewRequest(method, fx.url(DevicePath), strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		return do(t, http.DefaultClient, req)
	}
	deep := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `</s:Body></s:Envelope>`
	huge := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><a>` + strings.Repeat("x", MaxRequestBytes) + `</a></s:Body></s:Envelope>`
	dtd := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&a;</s:Body></s:Envelope>`
	for name, c := range map[string]struct {
		method, ctype, body string
		status              int
		v                   soap.Version
	}{
		"not xml":    {"POST", "application/soap+xml", "hello", 400, soap.SOAP12},
		"too deep":   {"POST", "application/soap+xml", deep, 400, soap.SOAP12},
		"too large":  {"POST", "application/soap+xml", huge, 400, soap.SOAP12},
		"dtd":        {"POST", "application/soap+xml", dtd, 400, soap.SOAP12},
		"empty body": {"POST", "application/soap+xml", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`, 400, soap.SOAP12},
		"soap 1.1":   {"POST", "text/xml", `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><x/>`, 400, soap.SOAP11},
		"get":        {"GET", "", "", 405, soap.SOAP12},
	} {
		r := send(c.method, c.ctype, c.body)
		if r.status != c.status || r.fault == nil || r.env.Version != c.v {
			t.Fatalf("%s: %d %.300s", name, r.status, r.body)
		}
	}
	r := post(t, fx.url(DevicePath), `<x:Secret xmlns:x="urn:x" s:mustUnderstand="1"/>`, `<tds:GetSystemDateAndTime/>`)
	if r.fault == nil || r.fault.Code != soap.CodeMustUnderstand {
		t.Fatalf("mustUnderstand: %d %s", r.status, r.body)
	}
	r = post(t, fx.url(DevicePath), `<a:Action xmlns:a="http://www.w3.org/2005/08/addressing" s:mustUnderstand="1">x</a:Action>`+auth(), `<tds:GetDeviceInformation/>`)
	r.mustOK(t)
	if r := post(t, "http://"+fx.face.Addr().String()+"/other", "", `<tds:GetSystemDateAndTime/>`); r.status != 404 {
		t.Fatalf("unknown path: %d", r.status)
	}
}

// A WS-Security token is good once and only near now; PasswordText is
// refused without TLS. Each refusal is a counted failure.
func TestWSSecurityReplayWindowAndCleartext(t *testing.T) {
	hdr := wsse(t, "alice", aliceONVIF, time.Now())
	post(t, fx.url(DevicePath), hdr, `<tds:GetDeviceInformation/>`).mustOK(t)
	n := failureCount()
	r := post(t, fx.url(DevicePath), hdr, `<tds:GetDeviceInformation/>`)
	if r.status != 400 || r.fault == nil || !r.fault.Has(soap.NsError, "NotAuthorized") {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	if f := lastFailure(t, n); f.detail != "WS-Security nonce replayed" || f.name != "alice" {
		t.Fatalf("%+v", f)
	}
	n = failureCount()
	r = post(t, fx.url(DevicePath), wsse(t, "alice", aliceONVIF, time.Now().Add(-10*time.Minute)), `<tds:GetDeviceInformation/>`)
	if r.fault == nil || lastFailure(t, n).detail != "WS-Security Created outside the allowed window" {
		t.Fatalf("stale: %s", r.body)
	}
	n = failureCount()
	text := `<wsse:Security xmlns:wsse="` + soap.NsWSSE + `"><wsse:UsernameToken><wsse:Username>alice</wsse:Username>` +
		`<wsse:Password Type="` + soap.PasswordTextType + `">` + alicePass + `</wsse:Password></wsse:UsernameToken></wsse:Security>`
	r = post(t, fx.url(DevicePath), text, `<tds:GetDeviceInformation/>`)
	if r.fault == nil || lastFailure(t, n).detail != "WS-Security PasswordText without TLS refused" {
		t.Fatalf("cleartext: %s", r.body)
	}
}

// HTTP Digest: the ONVIF secret signs in; the same Authorization sent
// again is refused and counted; a stale nonce only re-challenges.
func TestHTTPDigestReplay(t *testing.T) {
	r := post(t, fx.url(DevicePath), "", `<tds:GetDeviceInformation/>`)
	ch, err := httpdigest.FindChallenge(r.header.Values("WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	authz, err := ch.Authorization("POST", DevicePath, "alice", aliceONVIF, 1)
	if err != nil {
		t.Fatal(err)
	}
	setAuth := func(req *http.Request) { req.Header.Set("Authorization", authz) }
	post(t, fx.url(DevicePath), "", `<tds:GetDeviceInformation/>`, setAuth).mustOK(t)
	n := failureCount()
	r = post(t, fx.url(DevicePath), "", `<tds:GetDeviceInformation/>`, setAuth)
	if r.status != 401 || lastFailure(t, n).detail != "HTTP digest replayed" {
		t.Fatalf("replayed digest: %d %s", r.status, r.body)
	}
	stale := *ch
	stale.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	authz, _ = stale.Authorization("POST", DevicePath, "alice", aliceONVIF, 1)
	n = failureCount()
	r = post(t, fx.url(DevicePath), "", `<tds:GetDeviceInformation/>`, setAuth)
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "stale=true") || failureCount() != n {
		t.Fatalf("stale nonce: %d %v", r.status, r.header)
	}
}

// While the owner's lockout holds an address, sign-ins get 429 with
// Retry-After and no secret is compared; the clock stays readable.
func TestLockedOutAddress(t *testing.T) {
	fx.access.mu.Lock()
	fx.access.lockAfter = fx.access.fails["127.0.0.1"]
	fx.access.mu.Unlock()
	t.Cleanup(func() {
		fx.access.mu.Lock()
		fx.access.lockAfter = 1 << 30
		fx.access.mu.Unlock()
	})
	n := failureCount()
	r := post(t, fx.url(DevicePath), wsse(t, "alice", aliceONVIF, time.Now()), `<tds:GetDeviceInformation/>`)
	if r.status != 429 || r.header.Get("Retry-After") != "30" || r.fault == nil || !r.fault.Has(soap.NsError, "NotAuthorized") || failureCount() != n {
		t.Fatalf("locked out: %d %v %s", r.status, r.header, r.body)
	}
	post(t, fx.url(DevicePath), "", `<tds:GetSystemDateAndTime/>`).mustOK(t)
}

// Stream URIs and service addresses use the host the client connected
// to (a well-formed Host header, else the connection's address).
func TestHostOfClient(t *testing.T) {
	port := strconv.Itoa(fx.rtsp.port())
	for host, want := range map[string]string{
		"cordon.example:8000": "rtsp://cordon.example:" + port + "/gate",
		"10.1.0.5":            "rtsp://10.1.0.5:" + port + "/gate",
		"[fd00::5]:8000":      "rtsp://[fd00::5]:" + port + "/gate",
		"bad host<>\"":        "rtsp://127.0.0.1:" + port + "/gate",
	} {
		r := post(t, fx.url(MediaPath), wsse(t, "alice", aliceONVIF, time.Now()),
			`<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>UDP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>gate</trt:ProfileToken></trt:GetStreamUri>`,
			func(req *http.Request) { req.Host = host })
		if got := r.mustOK(t).TextOf("MediaUri", "Uri"); got != want {
			t.Fatalf("Host %q: %q, want %q", host, got, want)
		}
	}
	r := post(t, fx.url(DevicePath), wsse(t, "alice", aliceONVIF, time.Now()), `<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>`,
		func(req *http.Request) { req.Host = "cordon.example:8000" })
	svcs := r.mustOK(t).ChildrenLocal("Service")
	if len(svcs) != 3 || svcs[2].TextOf("XAddr") != "http://cordon.example:8000"+PTZPath || svcs[2].TextOf("Namespace") != soap.NsPTZ {
		t.Fatalf("%s", r.body)
	}
	r = post(t, fx.url(MediaPath), wsse(t, "alice", aliceONVIF, time.Now()),
		`<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Multicast</tt:Stream></trt:StreamSetup><trt:ProfileToken>gate</trt:ProfileToken></trt:GetStreamUri>`)
	if r.fault == nil || !r.fault.Has(soap.NsError, "InvalidStreamSetup") {
		t.Fatalf("multicast: %s", r.body)
	}
	r = post(t, fx.url(DevicePath), wsse(t, "alice", aliceONVIF, time.Now()), `<tds:GetScopes/>`)
	if len(r.mustOK(t).ChildrenLocal("Scopes")) != len(fx.face.Scopes()) {
		t.Fatalf("%s", r.body)
	}
}

// The per-address rate limit answers 429 with a SOAP fault; another
// address is not affected.
func TestRateLimitPerAddress(t *testing.T) {
	s := &Server{RTSPPort: 8554, Access: fx.access, Rate: 1, Burst: 2}
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	call := func(remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", DevicePath, strings.NewReader(
			`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetSystemDateAndTime xmlns="`+soap.NsDevice+`"/></s:Body></s:Envelope>`))
		req.RemoteAddr = remote + ":5000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w
	}
	call("192.0.2.1")
	call("192.0.2.1")
	w := call("192.0.2.1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "too many requests") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := call("192.0.2.2"); w.Code != 200 {
		t.Fatalf("other address: %d", w.Code)
	}
}

// IPv6 clients are limited by /64 (many addresses of one /64 share one
// bucket), and an attacker with thousands of /64s cannot lock a real
// client out: the bucket table evicts the least recently used, never
// refuses a newcomer.
func TestRateLimitIPv6AndManyAddresses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := &Server{RTSPPort: 8554, Access: fx.access, Rate: 1, Burst: 2, Now: func() time.Time { return now }}
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	call := func(remote string) int {
		req := httptest.NewRequest("POST", DevicePath, strings.NewReader(
			`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetSystemDateAndTime xmlns="`+soap.NsDevice+`"/></s:Body></s:Envelope>`))
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code
	}
	ok := 0
	for i := range 50 {
		if call(fmt.Sprintf("[2001:db8:5:6:%x::1]:5000", i+1)) == 200 {
			ok++
		}
	}
	if ok != 2 {
		t.Fatalf("%d requests allowed from one /64, want the burst of 2", ok)
	}
	for i := range 5000 {
		if code := call(fmt.Sprintf("[2001:db8:%x:%x::1]:5000", i/1000+100, i%1000)); code != 200 {
			t.Fatalf("attacker address %d: %d", i, code)
		}
	}
	if code := call("192.0.2.77:5000"); code != 200 {
		t.Fatalf("a real client after 5000 attacker /64s: %d (locked out)", code)
	}
}

// Over TLS: HTTPS service addresses, rtsps:// stream URIs, PasswordText
// checked against the login password hash (not the ONVIF secret), and the
// npm client over HTTPS with the test CA.
func TestTLS(t *testing.T) {
	ca, err := testca.New(t.TempDir(), "onvif test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("cordon", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Listen: "127.0.0.1:0", RTSPPort: 8322, RTSPTLS: true, Access: fx.access,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	defer client.CloseIdleConnections()
	text := func(pw string) string {
		return `<wsse:Security xmlns:wsse="` + soap.NsWSSE + `"><wsse:UsernameToken><wsse:Username>alice</wsse:Username>` +
			`<wsse:Password Type="` + soap.PasswordTextType + `">` + pw + `</wsse:Password></wsse:UsernameToken></wsse:Security>`
	}
	req := func(hdr, op string) reply {
		body := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="` + soap.NsMedia + `" xmlns:tds="` + soap.NsDevice + `"><s:Header>` + hdr + `</s:Header><s:Body>` + op + `</s:Body></s:Envelope>`
		rq, _ := http.NewRequest("POST", "https://"+s.Addr().String()+MediaPath, strings.NewReader(body))
		rq.Header.Set("Content-Type", "application/soap+xml")
		return do(t, client, rq)
	}
	r := req(text(alicePass), `<trt:GetStreamUri><trt:ProfileToken>gate.sub</trt:ProfileToken></trt:GetStreamUri>`)
	if got := r.mustOK(t).TextOf("MediaUri", "Uri"); got != "rtsps://127.0.0.1:8322/gate/sub" {
		t.Fatalf("%q", got)
	}
	r = req(text(alicePass), `<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>`)
	if got := r.mustOK(t).TextOf("Capabilities", "Media", "XAddr"); got != "https://"+s.Addr().String()+MediaPath {
		t.Fatalf("%q", got)
	}
	n := failureCount()
	r = req(text(aliceONVIF), `<trt:GetProfiles/>`)
	if r.fault == nil || !r.fault.Has(soap.NsError, "NotAuthorized") || lastFailure(t, n).detail != "bad password" {
		t.Fatalf("PasswordText with the ONVIF secret: %s", r.body)
	}
	res := onvifnode.Run(t, nodeClient, s.Addr().String(), map[string]any{"username": "alice", "password": aliceONVIF, "useSecure": true, "ca": string(ca.CertPEM)},
		onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "streamUri", "profileToken": "dome"})
	if conn := onvifnode.Value[onvifnode.Connect](t, res[0]); len(conn.Profiles) != 3 {
		t.Fatalf("%+v", conn)
	}
	if uri := onvifnode.Value[string](t, res[1]); uri != "rtsps://127.0.0.1:8322/dome" {
		t.Fatalf("%q", uri)
	}
}

// countingListener counts accepted connections (WrapListener's test).
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// WrapListener wraps the listener the face serves on (the gateway's
// connection caps); a wrapper's error fails Initialize and frees the port.
func TestWrapListener(t *testing.T) {
	var cl *countingListener
	s := &Server{Listen: "127.0.0.1:0", RTSPPort: 8554, Access: fx.access,
		WrapListener: func(ln net.Listener) (net.Listener, error) { cl = &countingListener{Listener: ln}; return cl, nil }}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	r := post(t, s.URL(), "", `<tds:GetSystemDateAndTime/>`)
	s.Close()
	r.mustOK(t)
	if cl == nil || cl.accepted.Load() == 0 {
		t.Fatal("the wrapped listener accepted nothing")
	}
	bad := &Server{Listen: "127.0.0.1:0", RTSPPort: 8554, Access: fx.access,
		WrapListener: func(net.Listener) (net.Listener, error) { return nil, errors.New("over budget") }}
	if err := bad.Initialize(); err == nil || !strings.Contains(err.Error(), "over budget") {
		t.Fatalf("Initialize with a failing wrapper: %v", err)
	}
}
