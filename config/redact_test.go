package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const (
	filePW = "fromFile#Secret9"
	urlPW  = "url:P@ss/word"
)

// redactConfig has one camera secret of each origin: inline, file, URL.
func redactConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	c := validConfig(t)
	c.Cameras = []Camera{
		{ID: "a", URL: "rtsp://10.0.0.1/a", Username: "viewer", Password: camSecret},
		{ID: "b", URL: "rtsp://10.0.0.2/b", Username: "admin", PasswordFile: writeFile(t, dir, "pw", filePW+"\n")},
		{ID: "c", URL: "rtsp://root:" + url.QueryEscape(urlPW) + "@10.0.0.3/c"},
		{ID: "d", URL: "rtsp://10.0.0.4/videoMain?usr=operator7&pwd=query-secret-3&channel=1"},
	}
	c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"turn:t"}, Username: "tu", Credential: "turn-cred-1"}}
	c.Auth.Users[0].RTSPDigestHA1 = "0123456789ABCDEF0123456789ABCDEF"
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	return c
}

func TestRedact(t *testing.T) {
	r := NewRedactor(redactConfig(t))
	cases := map[string]string{
		"dial failed: password " + camSecret + " rejected":                        "dial failed: password *** rejected",
		"file secret " + filePW:                                                   "file secret ***",
		"url secret " + urlPW:                                                     "url secret ***",
		"escaped " + url.QueryEscape(urlPW):                                       "escaped ***",
		"basic " + base64.StdEncoding.EncodeToString([]byte("viewer:"+camSecret)): "basic ***",
		"pair admin:" + filePW + " end":                                           "pair *** end",
		"q query-secret-3 operator7 channel=1":                                    "q *** *** channel=1",
		"turn turn-cred-1":                                                        "turn ***",
		"no secrets here, admin":                                                  "no secrets here, admin",
		// unknown credentials in any URL are removed too
		`GET rtsp://someone:unknown@10.9.9.9:554/x failed`: `GET rtsp://***@10.9.9.9:554/x failed`,
		"": "",
	}
	for in, want := range cases {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	var zero Redactor
	if got := zero.Redact("rtsp://u:p@h/"); got != "rtsp://***@h/" {
		t.Errorf("zero Redactor: %q", got)
	}
	var nilR *Redactor
	if got := nilR.Redact("x"); got != "x" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestRedactorUpdate(t *testing.T) {
	c := redactConfig(t)
	r := NewRedactor(c)
	c.Cameras[0].Password = "rotated-secret-2"
	r.Update(c, "demo-password")
	if got := r.Redact("old " + camSecret); got != "old "+camSecret {
		t.Errorf("old secret still redacted after update: %q", got)
	}
	if got := r.Redact("new rotated-secret-2 demo-password"); got != "new *** ***" {
		t.Errorf("new secrets not redacted: %q", got)
	}
	r.Update(nil)
	if got := r.Redact("rotated-secret-2"); got != "rotated-secret-2" {
		t.Errorf("Update(nil) kept secrets: %q", got)
	}
}

func TestRedactorConcurrent(t *testing.T) {
	c := redactConfig(t)
	r := NewRedactor(c)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if got := r.Redact("x " + filePW); strings.Contains(got, filePW) {
					t.Errorf("leak: %q", got)
					return
				}
			}
		}()
	}
	for j := 0; j < 50; j++ {
		r.Update(c)
	}
	wg.Wait()
}

func TestSafeURL(t *testing.T) {
	cases := map[string]string{
		"rtsp://admin:pw@10.0.0.1:554/Streaming/Channels/101":              "rtsp://10.0.0.1:554/Streaming/Channels/101",
		"rtsp://10.0.0.1/cam/realmonitor?channel=1&subtype=0":              "rtsp://10.0.0.1/cam/realmonitor?channel=1&subtype=0",
		"rtsp://10.0.0.1/videoMain?usr=admin&pwd=x&channel=2":              "rtsp://10.0.0.1/videoMain?channel=2",
		"rtsp://h/s?user=a&password=b&Token=c&auth=d&PASS=e&api_key=f&q=1": "rtsp://h/s?q=1",
		"rtsp://u:p@h/s#frag":           "rtsp://h/s",
		"rtsp://tok@h/":                 "rtsp://h/",
		"rtsp://u:p@h:bad/x?password=y": "rtsp://h:bad/x", // unparsable
		"u:p@h":                         "h",
	}
	for in, want := range cases {
		if got := SafeURL(in); got != want {
			t.Errorf("SafeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

type leakyStruct struct {
	Host string
	Pass string
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestRedactingHandlerJSON(t *testing.T) {
	c := redactConfig(t)
	r := NewRedactor(c)
	var buf bytes.Buffer
	log := slog.New(NewRedactingHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), r))

	pull, err := c.Cameras[0].PullURL()
	if err != nil {
		t.Fatal(err)
	}
	log.Info("connecting with "+camSecret,
		"password", camSecret,
		"err", fmt.Errorf("auth: %w", errors.New("bad password "+filePW)),
		"url", pull,
		"raw_url", pull.String(),
		slog.Group("camera", "secret", urlPW, slog.Group("deeper", "x", "a "+camSecret)),
		"strs", []string{filePW},
		"bytes", []byte(filePW),
		"struct", leakyStruct{Host: "h", Pass: camSecret},
		"stringer", stringer{"s=" + filePW},
		"cam", c.Cameras[1], // LogValuer
		"ok", "plain value",
	)
	sub := log.With("pre", filePW).WithGroup("g").With("in", urlPW)
	sub.Warn("nested", "k", camSecret, "n", 7)
	log.WithGroup("empty").Info("no attrs")

	out := buf.String()
	for _, s := range []string{camSecret, filePW, urlPW, url.QueryEscape(urlPW), "viewer:"} {
		if strings.Contains(out, s) {
			t.Errorf("log output contains secret %q:\n%s", s, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 log lines, got %d:\n%s", len(lines), out)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["msg"] != "connecting with ***" || first["password"] != "***" || first["ok"] != "plain value" {
		t.Errorf("first line: %v", first)
	}
	if first["url"] != "rtsp://10.0.0.1/a" {
		t.Errorf("url attr = %v", first["url"])
	}
	if cam, ok := first["cam"].(map[string]any); !ok || cam["id"] != "b" || cam["url"] != "rtsp://10.0.0.2/b" {
		t.Errorf("cam attr = %v", first["cam"])
	}
	if g, ok := first["camera"].(map[string]any); !ok || g["secret"] != "***" {
		t.Errorf("group attr = %v", first["camera"])
	}
	// WithAttrs/WithGroup structure is kept: {"pre":..,"g":{"in":..,"k":..,"n":7}}
	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	g, ok := second["g"].(map[string]any)
	if second["pre"] != "***" || !ok || g["in"] != "***" || g["k"] != "***" || g["n"] != float64(7) {
		t.Errorf("second line: %s", lines[1])
	}
	if strings.Contains(lines[2], `"empty"`) {
		t.Errorf("empty group logged: %s", lines[2])
	}
}

func TestRedactingHandlerFollowsUpdate(t *testing.T) {
	c := redactConfig(t)
	r := NewRedactor(c)
	var buf bytes.Buffer
	log := slog.New(NewRedactingHandler(slog.NewTextHandler(&buf, nil), r)).With("cfg", "new-secret-xyz")
	c.Cameras[0].Password = "new-secret-xyz"
	r.Update(c) // after With: attrs are redacted at Handle time
	log.Info("hello")
	if strings.Contains(buf.String(), "new-secret-xyz") {
		t.Fatalf("secret added by reload leaked: %s", buf.String())
	}
}
