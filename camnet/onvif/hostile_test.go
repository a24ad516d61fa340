package onvif

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cordon/ptz"
)

// trap is a server on another loopback host that must never be contacted.
type trap struct {
	addr string
	hits atomic.Int32
}

func startTrap(t *testing.T) *trap {
	t.Helper()
	tr := &trap{}
	ln, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	tr.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.hits.Add(1)
		w.WriteHeader(500)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return tr
}

func startHandler(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/onvif/device_service"
}

func TestRedirectIsNotFollowed(t *testing.T) {
	tr := startTrap(t)
	u := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+tr.addr+"/onvif/device_service", http.StatusTemporaryRedirect)
	})
	c := newClient(t, u)
	_, err := c.GetDeviceInformation(context.Background())
	if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "cam-1") || !strings.Contains(err.Error(), "GetDeviceInformation") {
		t.Fatalf("%v", err)
	}
	noSecret(t, err)
	if tr.hits.Load() != 0 {
		t.Fatal("the redirect target was contacted")
	}
}

// Service addresses on another host are rewritten to the camera's own
// host:port: the credentials never go to the other host.
func TestForeignServiceAddressesStayOnTheCamera(t *testing.T) {
	tr := startTrap(t)
	caps, _ := os.ReadFile("testdata/hikvision/GetCapabilities.xml")
	fixture := &fixtureCamera{dir: "hikvision"}
	var paths []string
	u := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Host+r.URL.Path)
		if strings.Contains(r.Header.Get("Content-Type"), "GetCapabilities") {
			w.Header().Set("Content-Type", "application/soap+xml")
			w.Write([]byte(strings.ReplaceAll(string(caps), "192.168.1.64", tr.addr)))
			return
		}
		fixture.ServeHTTP(w, r)
	})
	c := newClient(t, u)
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr.hits.Load() != 0 {
		t.Fatal("the foreign service address was contacted")
	}
	host := strings.TrimPrefix(strings.TrimSuffix(u, "/onvif/device_service"), "http://")
	if last := paths[len(paths)-1]; last != host+"/onvif/PTZ" {
		t.Fatalf("Stop went to %s", last)
	}
}

func TestOversizedAnswer(t *testing.T) {
	u := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>`))
		junk := strings.Repeat("A", 64<<10)
		for range 40 {
			if _, err := w.Write([]byte(junk)); err != nil {
				return
			}
		}
	})
	c := newClient(t, u)
	c.MaxResponseBytes = 256 << 10
	_, err := c.GetNTP(context.Background())
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%v", err)
	}
}

func TestSlowCameraTimesOut(t *testing.T) {
	stop, finished := make(chan struct{}), make(chan struct{}, 1)
	u := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		defer func() { finished <- struct{}{} }()
		select { // a camera that never answers
		case <-r.Context().Done():
		case <-stop:
		}
	})
	t.Cleanup(func() { close(stop); <-finished })
	c := newClient(t, u)
	c.Timeout = 300 * time.Millisecond
	// The outer deadline only turns a hang into a failure; the assertion is
	// that the client's own Timeout ended the call (the outer context is
	// still alive), not how fast a loaded machine got there.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.GetDNS(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil ||
		!strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("%v after %v (outer context: %v)", err, time.Since(start), ctx.Err())
	}
	if took := time.Since(start); took < c.Timeout {
		t.Fatalf("gave up after %v, before its %v timeout", took, c.Timeout)
	}
}

func TestHostileXMLAnswers(t *testing.T) {
	for name, body := range map[string]string{
		"doctype": `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&b;</s:Body></s:Envelope>`,
		"deep":    `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>` + strings.Repeat("<a>", 500) + strings.Repeat("</a>", 500) + `</s:Body></s:Envelope>`,
		"wrong":   `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><tds:RebootResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>`,
		"html":    `<html><body>login</body></html>`,
		"control": "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text>\x1b[2J" + strings.Repeat("x", 5000) + "</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>",
	} {
		u := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/soap+xml")
			w.Write([]byte(body))
		})
		c := newClient(t, u)
		_, err := c.GetNetworkProtocols(context.Background())
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if len(err.Error()) > 400 || strings.ContainsRune(err.Error(), 0x1b) {
			t.Errorf("%s: unbounded or unclean error %q", name, err)
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, u := range []string{"rtsp://10.0.0.1/", "http:///x", "http://admin:" + camPass + "@10.0.0.1/onvif/device_service", "::"} {
		c := &Client{CameraID: "cam-1", URL: u}
		err := c.Initialize()
		if err == nil {
			t.Errorf("%q accepted", u)
		}
		noSecret(t, err)
	}
}

// The dialer refuses every address but the camera's, whatever asks.
func TestDialerPinnedToCamera(t *testing.T) {
	tr := startTrap(t)
	c := newClient(t, "http://127.0.0.1:1/onvif/device_service")
	c.base.Host = tr.addr // as if a bug built a URL to another host
	_, err := c.GetDeviceInformation(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not the camera's address") || tr.hits.Load() != 0 {
		t.Fatalf("%v (hits %d)", err, tr.hits.Load())
	}
	var _ ptz.Camera = c
}
