package harden

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cordon/internal/soap"
)

// hostileCamera serves handler on its own loopback host. It records
// whether any request carried an Authorization header.
type hostileCamera struct {
	url      string
	hits     atomic.Int32
	sawAuth  atomic.Int32
	sawBasic atomic.Int32
}

func startHostile(t *testing.T, host string, h http.HandlerFunc) *hostileCamera {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &hostileCamera{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hc.hits.Add(1)
		if a := r.Header.Get("Authorization"); a != "" {
			hc.sawAuth.Add(1)
			if strings.HasPrefix(a, "Basic") {
				hc.sawBasic.Add(1)
			}
		}
		h(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		wg.Wait()
	})
	return hc
}

// elsewhere is a listener that counts connections: nothing may reach it.
func elsewhere(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.39:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), &n
}

// hikChallenge answers 401 like a Hikvision camera.
func hikChallenge(w http.ResponseWriter) {
	w.Header().Set("Server", "Hikvision-Webs")
	w.Header().Set("WWW-Authenticate", `Digest realm="hikvision", nonce="abc", qop="auth"`)
	w.WriteHeader(http.StatusUnauthorized)
}

// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestHostileCameras(t *testing.T) {
	other, hits := elsewhere(t)
	cases := []struct {
		name, vendor string
		handler      http.HandlerFunc
		want         string // in the camera error or the first setting's detail
		fatal        bool   // the rest are not tried
	}{
		{"redirect before auth", "auto", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+other+"/ISAPI/System/deviceInfo", http.StatusFound)
		}, "redirect, which cordon never follows", true},
		{"redirect after auth", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				hikChallenge(w)
				return
			}
			http.Redirect(w, r, "http://"+other+r.URL.Path, http.StatusTemporaryRedirect)
		}, "redirect, which cordon never follows", true},
		{"giant body", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				hikChallenge(w)
				return
			}
			chunk := []byte(strings.Repeat("<a>", 1<<14))
			for i := 0; i < 1<<10; i++ { // 48 MiB offered
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "answer too large: more than 262144 bytes", false},
		{"giant headers", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				hikChallenge(w)
				return
			}
			w.Header().Set("X-Pad", strings.Repeat("x", 64<<10))
		}, "cannot reach the camera", true},
		{"slow answer", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				hikChallenge(w)
				return
			}
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte("<EZVIZ><enab"))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // the rest never comes; the client gives up
		}, "no complete answer within 300ms", true},
		{"wrong fingerprint", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Digest realm="Login to 0f3c", nonce="n", qop="auth"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, "answers with a Dahua fingerprint, not Hikvision", true},
		{"no camera API", "auto", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, "vendor not recognised", true},
		{"basic only over http", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "Hikvision-Webs")
			w.Header().Set("WWW-Authenticate", `Basic realm="hikvision"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, "cordon sends camera passwords with Digest only", true},
		{"onvif redirect", "auto", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.URL.Path == onvifDevicePath && strings.Contains(string(body), "GetSystemDateAndTime") {
				w.Header().Set("Content-Type", soap.SOAP12.ContentType())
				_, _ = w.Write((&soap.Message{Version: soap.SOAP12, Body: []soap.Node{soap.El("tds:GetSystemDateAndTimeResponse")}}).Bytes())
				return
			}
			if r.URL.Path != onvifDevicePath {
				http.NotFound(w, r)
				return
			}
			http.Redirect(w, r, "http://"+other+onvifDevicePath, http.StatusTemporaryRedirect)
		}, "redirect", true},
		{"doctype bomb", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				hikChallenge(w)
				return
			}
			_, _ = w.Write([]byte(`<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><EZVIZ><enabled>&b;</enabled></EZVIZ>`))
		}, "XML with a DOCTYPE or other directive is refused", false},
		{"not xml", "hikvision", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				hikChallenge(w)
				return
			}
			_, _ = w.Write([]byte("\x00\x01garbage"))
		}, "malformed XML", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cam := startHostile(t, "127.0.0."+itoa(40+i), tc.handler)
			o := fastOptions()
			o.RequestTimeout = 300 * time.Millisecond
			o.Apply = true
			start := time.Now()
			res := runT(t, targetOf(t, "hostile-"+itoa(i), cam.url, tc.vendor), o)
			took := time.Since(start)
			msg := res.Error
			if len(res.Settings) > 0 {
				msg += res.Settings[0].Detail
			}
			if !strings.Contains(msg, "camera hostile-"+itoa(i)+": ") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want the camera named and %q", msg, tc.want)
			}
			if res.OK() {
				t.Fatal("a hostile camera reported as hardened")
			}
			if tc.fatal && len(res.Settings) > 1 && !strings.Contains(res.Settings[1].Detail, "not checked") {
				t.Fatalf("after a fatal error the next setting was tried: %+v", res.Settings[1])
			}
			// What a hostile camera costs is counted in requests, not
			// measured in wall time (a loaded machine is slow): after a
			// fatal answer nothing more is asked, and every request is
			// bounded by RequestTimeout (the slow case's error says so).
			// The minute only turns a hang into a failure.
			if hits := cam.hits.Load(); tc.fatal && hits > 6 {
				t.Fatalf("%d requests after a fatal answer: the camera kept being asked", hits)
			}
			if took > time.Minute {
				t.Fatalf("took %v: a request was not bounded", took)
			}
			b, _ := json.Marshal(res)
			if strings.Contains(string(b), camPass) {
				t.Fatal("the camera password is in the result")
			}
			if cam.sawBasic.Load() != 0 {
				t.Fatal("Basic credentials sent over plain HTTP")
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d connections reached another host", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestClientNeverDialsElsewhere(t *testing.T) {
	other, hits := elsewhere(t)
	c := &Client{Camera: "c", Base: targetOf(t, "c", "http://127.0.0.38:1", "auto").Base}
	c.init()
	defer c.Close()
	if _, err := c.tr.DialContext(context.Background(), "tcp", other); err == nil || !strings.Contains(err.Error(), "refusing to connect") {
		t.Fatalf("dial elsewhere: %v", err)
	}
	for _, pq := range []string{"@" + other + "/", "x", ""} {
		if _, err := c.Do(context.Background(), http.MethodGet, pq, "", nil); err == nil {
			t.Fatalf("path %q accepted", pq)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("a connection reached another host")
	}
}

// A camera that answers, but not about the setting asked, never reads as
// hardened: every setting is unknown, optional ones included.
func TestGarbledAnswersAreUnknown(t *testing.T) {
	for i, tc := range []struct{ vendor, realm, body string }{
		{"hikvision", "hikvision", `<Other><enabled>false</enabled><timeMode>manual</timeMode></Other>`},
		{"hikvision", "hikvision", `<ResponseStatus><statusCode>1</statusCode><subStatusCode>ok</subStatusCode></ResponseStatus>`},
		{"dahua", "Login to 12ab", "table.Other.Enable=false\r\ntable.Other[0].Enable=false\r\n"},
		{"dahua", "Login to 12ab", ""},
	} {
		cam := startHostile(t, "127.0.0."+itoa(50+i), func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				w.Header().Set("WWW-Authenticate", `Digest realm="`+tc.realm+`", nonce="n", qop="auth"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(tc.body))
		})
		res := runT(t, targetOf(t, "garbled", cam.url, tc.vendor), fastOptions())
		if res.Error != "" || len(res.Settings) < 10 {
			t.Fatalf("%d: %+v", i, res)
		}
		for _, s := range res.Settings {
			if s.OK || s.Status != StatusUnknown || !strings.HasPrefix(s.Detail, "camera garbled: "+s.Name+": ") {
				t.Errorf("%d %s: %+v", i, s.Name, s)
			}
		}
	}
}
