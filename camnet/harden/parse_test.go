package harden

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"cordon/config"
)

// Basic goes only over https to a pinned (or CA-verified) certificate; a camera offering only what cordon does not
// speak gets no credentials.
func TestAuthChoices(t *testing.T) {
	var mu sync.Mutex
	var saw []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		saw = append(saw, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	// Unverified certificate: no Basic.
	c := &Client{Camera: "c", Base: u, Username: "admin", Password: "pw"}
	defer c.Close()
	if _, err := c.Do(context.Background(), "GET", "/x", "", nil); !errors.Is(err, errNoUsableAuth) {
		t.Fatalf("basic over unverified https: %v", err)
	}
	// Pinned certificate: Basic.
	pin := sha256.Sum256(srv.Certificate().Raw)
	cp := &Client{Camera: "c", Base: u, Username: "admin", Password: "pw", CertSHA256: pin[:]}
	defer cp.Close()
	if r, err := cp.Do(context.Background(), "GET", "/x", "", nil); err != nil || r.Status != 200 {
		t.Fatalf("basic over pinned https: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(saw) != 3 || saw[0] != "" || saw[1] != "" || saw[2] != "Basic YWRtaW46cHc=" {
		t.Fatalf("authorization headers %q", saw)
	}
	for _, tc := range []struct {
		values   []string
		scheme   string
		verified bool
		want     string
	}{
		{[]string{`Basic realm="x"`}, "http", false, "only Basic authentication over plain HTTP"},
		{[]string{`Basic realm="x"`}, "https", false, "certificate is not verified"},
		{[]string{`Digest realm="x", nonce="n", algorithm=SHA-512-256`}, "https", true, "does not speak"},
		{[]string{`Negotiate`}, "https", true, "does not speak"},
	} {
		if _, _, err := pickChallenge(tc.values, tc.scheme, tc.verified); !errors.Is(err, errNoUsableAuth) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v", tc.values, err)
		}
	}
	ch, _, err := pickChallenge([]string{`Digest realm="x", nonce="n", qop="auth-int"`}, "http", false)
	if err != nil {
		t.Fatal(err)
	}
	c2 := &Client{Camera: "c", Base: u, chal: ch}
	if _, err := c2.authorization(true, "GET", "/"); !errors.Is(err, errNoUsableAuth) {
		t.Fatalf("auth-int only: %v", err)
	}
}

func TestXMLRoundTrip(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<IPAddress version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><ipAddress>10.0.0.5</ipAddress>` +
		`<DefaultGateway><ipAddress>10.0.0.1</ipAddress></DefaultGateway><x:ext xmlns:x="urn:x" x:a="1&amp;2">t&lt;</x:ext></IPAddress>`
	doc, err := parseXML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	doc.path("DefaultGateway", "ipAddress").setValue("0.0.0.0")
	doc.ensure("PrimaryDNS").ensure("ipAddress").setValue("10.0.0.9")
	out := string(doc.marshal())
	for _, want := range []string{`xmlns="http://www.hikvision.com/ver20/XMLSchema"`, `<DefaultGateway><ipAddress>0.0.0.0</ipAddress>`,
		`<PrimaryDNS><ipAddress>10.0.0.9</ipAddress></PrimaryDNS>`, `<x:ext xmlns:x="urn:x" x:a="1&amp;2">t&lt;</x:ext>`} {
		if !strings.Contains(out, want) {
			t.Errorf("marshal lacks %s:\n%s", want, out)
		}
	}
	again, err := parseXML([]byte(out))
	if err != nil || again.path("PrimaryDNS", "ipAddress").value() != "10.0.0.9" {
		t.Fatalf("re-parse: %v", err)
	}
	for name, bad := range map[string]string{
		"doctype":   `<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`,
		"entity":    `<a>&x;</a>`,
		"two roots": `<a/><b/>`,
		"latin1":    `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
		"deep":      strings.Repeat("<a>", 30) + strings.Repeat("</a>", 30),
		"wide":      "<a>" + strings.Repeat("<b/>", 5000) + "</a>",
		"unclosed":  "<a><b></a>",
		"text":      "x<a/>",
	} {
		if _, err := parseXML([]byte(bad)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestDahuaTable(t *testing.T) {
	cfg, err := parseDahuaTable([]byte("table.NTP.Address=pool.ntp.org\r\ntable.NTP.Port=123\r\n\r\ntable.DDNS[0].Enable=true\ntable.NTP.Port=9\n"))
	if err != nil || cfg["NTP.Address"] != "pool.ntp.org" || cfg["NTP.Port"] != "123" || cfg["DDNS[0].Enable"] != "true" {
		t.Fatalf("%v %v", cfg, err)
	}
	for _, bad := range []string{"NTP.Port=1", "table.NTP Port=1", "table.=1", "table.a" + strings.Repeat("b", 5000) + "=1",
		strings.Repeat("table.A.B=1\n", 5000)} {
		if _, err := parseDahuaTable([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad[:min(len(bad), 30)])
		}
	}
}

func TestJSONTablePaths(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader([]byte(`{"DefaultInterface":"eth0","eth0":{"DnsServers":["8.8.8.8",null],"Mtu":1500,"DhcpEnable":false}}`)))
	dec.UseNumber()
	var table any
	if err := dec.Decode(&table); err != nil {
		t.Fatal(err)
	}
	for path, val := range map[string]string{".eth0.DnsServers[0]": "10.0.0.1", ".eth0.DnsServers[1]": "10.0.0.1", ".eth0.Mtu": "1400", ".eth0.DhcpEnable": "true"} {
		if err := setJSONPath(table, path, val); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	flat := map[string]string{}
	if err := flattenJSON("Network", table, flat, 0); err != nil {
		t.Fatal(err)
	}
	if flat["Network.eth0.DnsServers[1]"] != "10.0.0.1" || flat["Network.eth0.Mtu"] != "1400" || flat["Network.eth0.DhcpEnable"] != "true" {
		t.Fatalf("flattened %v", flat)
	}
	for path, val := range map[string]string{".eth0.Nope": "x", ".eth0.DnsServers[5]": "x", ".eth0.Mtu": "big", ".eth0.DhcpEnable": "maybe", "eth0": "x", ".eth0": "x"} {
		if err := setJSONPath(table, path, val); err == nil {
			t.Errorf("%s=%s accepted", path, val)
		}
	}
}

func TestWanted(t *testing.T) {
	w, err := WantedFrom(config.CameraNetwork{DNSListen: "10.20.0.1:53", NTPListen: "10.20.0.1:123"})
	if err != nil || w.ntpWant() != "10.20.0.1:123" || w.dnsWant() != "10.20.0.1" || len(w.Cordon) != 1 {
		t.Fatalf("%+v %v", w, err)
	}
	for _, cn := range []config.CameraNetwork{{DNSListen: ":53"}, {NTPListen: "0.0.0.0:123"}, {DNSListen: "cordon.lan:53"}, {NTPListen: "[fd00::1]:123"}} {
		var fe config.FieldError
		if _, err := WantedFrom(cn); !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "camera_network.") {
			t.Errorf("%+v: %v", cn, err)
		}
	}
	off, _ := WantedFrom(config.CameraNetwork{})
	if off.ntpWant() != "off" || off.dnsWant() != "none" || !off.ntpOK(false, "", 0) || off.ntpOK(true, "x", 123) ||
		!off.dnsOK([]string{"", "0.0.0.0"}) || off.dnsOK([]string{"8.8.8.8"}) {
		t.Fatal("off wants")
	}
	if !w.dnsOK([]string{"10.20.0.1", ""}) || w.dnsOK([]string{"", "10.20.0.1"}) || w.dnsOK([]string{"10.20.0.1", "8.8.8.8"}) ||
		!w.ntpOK(true, "10.20.0.1", 0) || w.ntpOK(true, "10.20.0.1", 124) || w.ntpOK(false, "10.20.0.1", 123) {
		t.Fatal("compare")
	}
	for _, tc := range []struct {
		ip, mask string
		none     bool
		errs     bool
	}{
		{"10.20.0.12", "255.255.255.0", true, false},
		{"10.30.0.12", "255.255.255.0", false, false},
		{"10.20.0.12", "255.0.255.0", false, true},
		{"", "255.255.255.0", false, true},
		{"10.20.0.12", "", false, true},
	} {
		want, none, err := w.gatewayDecision(tc.ip, tc.mask)
		if none != tc.none || (err != nil) != tc.errs || (!tc.errs && want == "") {
			t.Errorf("%s/%s: %q %v %v", tc.ip, tc.mask, want, none, err)
		}
	}
	if want, none, _ := (Wanted{}).gatewayDecision("10.0.0.1", "255.0.0.0"); none || !strings.Contains(want, "kept") {
		t.Fatal("no cordon address: gateway must be kept")
	}
	if got := clean("a\x1b[31mb\nc"+strings.Repeat("x", 100), 10); strings.ContainsAny(got, "\x1b\n") || len([]rune(got)) != 11 {
		t.Fatalf("clean = %q", got)
	}
}
