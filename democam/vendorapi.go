package democam

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Vendor API names.
const (
	VendorHikvision = "hikvision"
	VendorDahua     = "dahua"
)

// VendorAPI emulates a camera's management API, the side `cordon harden`
// talks to: Hikvision ISAPI (isapi.go) or Dahua's configManager CGI and
// JSON-RPC (dahuaapi.go), with stateful settings behind HTTP Digest and the
// vendor's fingerprints (FIELD-NOTES: Hikvision's HTTP server
// "Hikvision-Webs" with realm "hikvision"; Dahua's realm "Login to <id>").
// A new VendorAPI starts from factory settings: cloud, P2P, UPnP, DDNS,
// e-mail on, public NTP and DNS. FactoryReset puts them back (drift).
//
// It is a model built from public endpoint shapes, not a copy of any
// firmware: only the settings hardening touches exist.
type VendorAPI struct {
	// Vendor is VendorHikvision or VendorDahua.
	Vendor string
	// Listen is the TCP address, e.g. "127.0.0.5:0" (port 0: a free one,
	// kept across reboots).
	Listen string
	// Username and Password are the admin credentials (Digest, MD5).
	Username, Password string
	// NeedsReboot: changes are stored but the camera keeps running (and
	// reading back) the old values until it reboots. Hikvision answers
	// such writes with statusCode 7 (Reboot Required), Dahua's RPC2 with
	// "NeedReboot"; Dahua's CGI just answers OK.
	NeedsReboot bool
	// CGIDisabled (Dahua): the CGI answers 404; only /RPC2 works.
	CGIDisabled bool
	// RebootDowntime is how long a reboot keeps the API away (0 = 300 ms).
	RebootDowntime time.Duration
	// TLS, when set, serves the API over https with this configuration
	// (its certificate), as cameras with "HTTPS only" do.
	TLS *tls.Config
	// BasicOnly: the API asks for and accepts only HTTP Basic (older
	// firmware, or "digest off" in the camera's web settings).
	BasicOnly bool
	// Logger (nil = discard).
	Logger *slog.Logger

	log   *slog.Logger
	realm string

	mu       sync.Mutex
	running  map[string]string
	pending  map[string]string // NeedsReboot: stored, not yet running
	requests []string
	reboots  int
	rebootCh chan struct{} // closed (and replaced) at each completed reboot
	nonce    string
	sessions map[string]bool // RPC2
	addr     string
	srv      *http.Server
	timer    *time.Timer
	closed   bool
	wg       sync.WaitGroup
}

// Initialize starts the HTTP server.
func (v *VendorAPI) Initialize() error {
	v.log = orDiscard(v.Logger)
	host, _, err := net.SplitHostPort(v.Listen)
	if err != nil {
		return fmt.Errorf("democam: Listen: %w", err)
	}
	switch v.Vendor {
	case VendorHikvision:
		v.realm = "hikvision"
	case VendorDahua:
		v.realm = "Login to " + randomUUID()
	default:
		return fmt.Errorf("democam: unknown vendor %q", v.Vendor)
	}
	v.running = v.factory(host)
	v.sessions = map[string]bool{}
	v.rebootCh = make(chan struct{})
	v.nonce = randomHexString(16)
	v.addr = v.Listen
	return v.serve()
}

func (v *VendorAPI) factory(host string) map[string]string {
	if v.Vendor == VendorHikvision {
		return hikFactory(host)
	}
	return dahuaFactory(host)
}

func (v *VendorAPI) serve() error {
	ln, err := net.Listen("tcp", v.addr)
	if err != nil {
		return fmt.Errorf("democam: %w", err)
	}
	v.addr = ln.Addr().String()
	if v.TLS != nil {
		ln = tls.NewListener(ln, v.TLS)
	}
	var h http.Handler = http.HandlerFunc(v.serveISAPI)
	if v.Vendor == VendorDahua {
		h = http.HandlerFunc(v.serveDahua)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(v.log.Handler(), slog.LevelDebug)}
	v.srv = srv
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

// Close stops the server.
func (v *VendorAPI) Close() {
	v.mu.Lock()
	v.closed = true
	if v.timer != nil && v.timer.Stop() {
		v.wg.Done() // the reboot's timer will not run
	}
	srv := v.srv
	v.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	v.wg.Wait()
}

// Addr is the listening address (host:port).
func (v *VendorAPI) Addr() string { return v.addr }

// URL is the admin URL (http://host:port, or https:// with TLS).
func (v *VendorAPI) URL() string {
	if v.TLS != nil {
		return "https://" + v.addr
	}
	return "http://" + v.addr
}

// FactoryReset puts every setting back to its factory value (cloud on),
// as a firmware reset would; pending changes are lost.
func (v *VendorAPI) FactoryReset() {
	host, _, _ := net.SplitHostPort(v.addr)
	v.mu.Lock()
	v.running, v.pending = v.factory(host), nil
	v.mu.Unlock()
}

// Setting returns a running setting by its emulator key (e.g.
// "EZVIZ.enabled", "T2UServer.Enable").
func (v *VendorAPI) Setting(key string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.running[key]
}

// Settings returns a copy of every running setting.
func (v *VendorAPI) Settings() map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.running)
}

// Requests returns every authenticated request so far ("PUT /ISAPI/...").
func (v *VendorAPI) Requests() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.requests...)
}

// Reboots counts completed reboots.
func (v *VendorAPI) Reboots() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reboots
}

// WaitReboots waits until n reboots have completed (or ctx ends).
func (v *VendorAPI) WaitReboots(ctx context.Context, n int) error {
	for {
		v.mu.Lock()
		done, ch := v.reboots >= n, v.rebootCh
		v.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// read returns a setting as the camera runs it.
func (v *VendorAPI) read(key string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.running[key]
}

// write stores changes; it reports whether they wait for a reboot.
func (v *VendorAPI) write(changes map[string]string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.NeedsReboot {
		maps.Copy(v.running, changes)
		return false
	}
	if v.pending == nil {
		v.pending = maps.Clone(v.running)
	}
	maps.Copy(v.pending, changes)
	return true
}

// reboot takes the API away for RebootDowntime, then serves again with
// the stored settings running, a new nonce and no sessions.
func (v *VendorAPI) reboot() {
	v.mu.Lock()
	if v.closed || v.timer != nil {
		v.mu.Unlock()
		return
	}
	srv := v.srv
	down := v.RebootDowntime
	if down <= 0 {
		down = 300 * time.Millisecond
	}
	v.mu.Unlock()
	_ = srv.Close()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.wg.Add(1)
	v.timer = time.AfterFunc(down, func() {
		defer v.wg.Done()
		v.mu.Lock()
		defer v.mu.Unlock()
		v.timer = nil
		if v.closed {
			return
		}
		if v.pending != nil {
			v.running, v.pending = v.pending, nil
		}
		v.nonce, v.sessions = randomHexString(16), map[string]bool{}
		v.reboots++
		close(v.rebootCh)
		v.rebootCh = make(chan struct{})
		if err := v.serve(); err != nil {
			v.log.Error("democam: vendor API did not come back after reboot", "error", err)
		}
	})
}

// authorized checks HTTP Digest (MD5, qop=auth), or Basic with BasicOnly,
// and answers 401 with the vendor's challenge otherwise. It logs
// authorized requests.
func (v *VendorAPI) authorized(w http.ResponseWriter, r *http.Request) bool {
	if v.BasicOnly {
		return v.basicAuthorized(w, r)
	}
	v.mu.Lock()
	nonce := v.nonce
	v.mu.Unlock()
	p := parseDigestAuth(r.Header.Get("Authorization"))
	ha1 := md5Hex(v.Username + ":" + v.realm + ":" + v.Password)
	ha2 := md5Hex(r.Method + ":" + p["uri"])
	want := md5Hex(ha1 + ":" + nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":" + p["qop"] + ":" + ha2)
	if p["username"] == v.Username && p["realm"] == v.realm && p["nonce"] == nonce && p["qop"] == "auth" &&
		p["uri"] == r.URL.RequestURI() && subtle.ConstantTimeCompare([]byte(p["response"]), []byte(want)) == 1 {
		v.mu.Lock()
		v.requests = append(v.requests, r.Method+" "+r.URL.Path)
		v.mu.Unlock()
		return true
	}
	stale := ""
	if p["nonce"] != "" && p["nonce"] != nonce {
		stale = ", stale=true"
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5%s`, v.realm, nonce, stale))
	w.WriteHeader(http.StatusUnauthorized)
	return false
}

func (v *VendorAPI) basicAuthorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if ok && subtle.ConstantTimeCompare([]byte(user), []byte(v.Username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(v.Password)) == 1 {
		v.mu.Lock()
		v.requests = append(v.requests, r.Method+" "+r.URL.Path)
		v.mu.Unlock()
		return true
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="%s"`, v.realm))
	w.WriteHeader(http.StatusUnauthorized)
	return false
}

// parseDigestAuth reads the parameters of a Digest Authorization header.
func parseDigestAuth(h string) map[string]string {
	out := map[string]string{}
	rest, ok := strings.CutPrefix(h, "Digest ")
	if !ok || len(rest) > 4096 {
		return out
	}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.IndexByte(after[1:], '"')
			if end < 0 {
				break
			}
			val, rest = after[1:1+end], after[2+end:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out
}

func md5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func randomHexString(n int) string {
	return strings.ReplaceAll(randomUUID(), "-", "")[:2*min(n, 16)]
}

var errBodyTooLarge = errors.New("body too large")

// readBody reads a bounded request body (the emulated camera bounds its
// input like any server should).
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 64<<10 {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// answerThenReboot sends a complete answer (with Content-Length, flushed)
// and then reboots once the handler has returned, tracked so that Close
// waits for it.
func (v *VendorAPI) answerThenReboot(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		<-r.Context().Done() // the handler returned: the answer is out
		v.reboot()
	}()
}
