package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"cordon/auth"
)

// target is one server under comparison: how to configure and start it,
// and where its doors are.
type target struct {
	name   string
	binary string
	dir    string
	// ports, fixed for the run
	http, rtsp, udp, metrics int
	tokens                   string // token file (cordon's API keys); "" = anonymous
	keyName, keySecret       string // the first API key, for RTSP Basic
	cordon                   bool
	go2rtc                   bool // go2rtc: its own config; no pprof
	rtspOnly                 bool // measured on the RTSP row only
}

// scenario is what a server is started for: its cameras' URLs.
type scenario struct {
	cameras []string // RTSP URLs; camera i is "cam" (one) or "cam1".."camN"
}

func (s scenario) names() []string {
	if len(s.cameras) == 1 {
		return []string{"cam"}
	}
	out := make([]string, len(s.cameras))
	for i := range s.cameras {
		out[i] = fmt.Sprintf("cam%d", i+1)
	}
	return out
}

func newTarget(name, binary, dir string, cordon bool, keys int) (*target, error) {
	t := &target{name: name, binary: binary, dir: filepath.Join(dir, strings.ToLower(name)), cordon: cordon,
		http: freePort("tcp"), rtsp: freePort("tcp"), udp: freePort("udp"), metrics: freePort("tcp")}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, err
	}
	if !cordon {
		return t, nil
	}
	var tokens, hashes []string
	for i := range keys {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		secret := hex.EncodeToString(b)
		h, err := auth.HashSecret([]byte(secret))
		if err != nil {
			return nil, err
		}
		n := fmt.Sprintf("bench-%d", i+1)
		if i == 0 {
			t.keyName, t.keySecret = n, secret
		}
		tokens = append(tokens, "key:"+n+":"+secret)
		hashes = append(hashes, fmt.Sprintf("    - name: %q\n      key_hash: %q\n      cameras: [\"*\"]\n", n, h))
	}
	t.tokens = filepath.Join(t.dir, "tokens")
	if err := os.WriteFile(t.tokens, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	return t, os.WriteFile(filepath.Join(t.dir, "keys.yaml"), []byte(strings.Join(hashes, "")), 0o600)
}

// configure writes the server's config for sc and returns its argv.
func (t *target) configure(sc scenario) ([]string, error) {
	if t.cordon {
		keys, err := os.ReadFile(filepath.Join(t.dir, "keys.yaml"))
		if err != nil {
			return nil, err
		}
		var cams strings.Builder
		for i, n := range sc.names() {
			fmt.Fprintf(&cams, "  - id: %q\n    url: %q\n    transport: tcp\n", n, sc.cameras[i])
		}
		state := filepath.Join(t.dir, "state")
		_ = os.RemoveAll(state)
		cfg := fmt.Sprintf(`http:
  listen: "127.0.0.1:%d"
rtsp:
  listen: "127.0.0.1:%d"
  allow_basic_without_tls: true
  udp_rtp_listen: "" # TCP readers only: no fixed default ports (two runs side by side)
  udp_rtcp_listen: ""
webrtc:
  udp_listen: "127.0.0.1:%d"
  tcp_listen: ""
  viewer_networks: ["127.0.0.1/32"] # the gateway's own address: only a /32 admits it
metrics:
  listen: "127.0.0.1:%d"
  pprof: true
state_dir: %q
audit:
  path: %q
auth:
  api_keys:
%scameras:
%s`, t.http, t.rtsp, t.udp, t.metrics, state, filepath.Join(t.dir, "audit.log"), keys, cams.String())
		path := filepath.Join(t.dir, "cordon.yaml")
		return []string{t.binary, "serve", "--config", path}, os.WriteFile(path, []byte(cfg), 0o600)
	}
	if t.go2rtc {
		return t.configureGo2rtc(sc)
	}
	var paths strings.Builder
	for i, n := range sc.names() {
		fmt.Fprintf(&paths, "  %s:\n    source: %s\n    rtspTransport: tcp\n    sourceOnDemand: no\n", n, sc.cameras[i])
	}
	cfg := fmt.Sprintf(`logLevel: warn
logDestinations: [stdout]
readTimeout: 10s
writeTimeout: 10s
writeQueueSize: 512
api: no
metrics: no
pprof: yes
pprofAddress: 127.0.0.1:%d
playback: no
rtmp: no
hls: no
srt: no
moq: no
rtsp: yes
rtspTransports: [tcp]
rtspAddress: 127.0.0.1:%d
webrtc: yes
webrtcAddress: 127.0.0.1:%d
webrtcLocalUDPAddress: 127.0.0.1:%d
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: no
webrtcAdditionalHosts: [127.0.0.1]
webrtcICEServers2: []
authInternalUsers:
  - user: any
    pass:
    ips: ["127.0.0.1", "::1"]
    permissions:
      - action: read
      - action: publish
      - action: pprof
paths:
%s`, t.metrics, t.rtsp, t.http, t.udp, paths.String())
	path := filepath.Join(t.dir, "mediamtx.yml")
	return []string{t.binary, path}, os.WriteFile(path, []byte(cfg), 0o600)
}

// configureGo2rtc writes go2rtc's config for sc: its RTSP server and API
// on loopback ports, WebRTC on loopback without STUN, the HomeKit SRTP
// listener off; go2rtc pulls a camera (over TCP, its default) while a
// reader reads it.
func (t *target) configureGo2rtc(sc scenario) ([]string, error) {
	var streams strings.Builder
	for i, n := range sc.names() {
		fmt.Fprintf(&streams, "  %s: %q\n", n, sc.cameras[i])
	}
	cfg := fmt.Sprintf(`log:
  level: warn
api:
  listen: "127.0.0.1:%d"
rtsp:
  listen: "127.0.0.1:%d"
webrtc:
  listen: "127.0.0.1:%d"
  ice_servers: []
srtp:
  listen: ""
streams:
%s`, t.http, t.rtsp, t.udp, streams.String())
	path := filepath.Join(t.dir, "go2rtc.yaml")
	return []string{t.binary, "-config", path}, os.WriteFile(path, []byte(cfg), 0o600)
}

// profile saves a 20 s CPU profile of the running server (both servers
// serve Go's pprof on their metrics port) as <dir>/cpu-<viewers>.pprof,
// then its heap as <dir>/heap-<viewers>.pprof (where per-viewer memory goes)
// and, for cordon, the runtime's memory statistics as memstats-<viewers>.txt.
func (b *bench) profile(t *target, viewers int) {
	b.saveProfile(t, "profile?seconds=20", fmt.Sprintf("cpu-%d.pprof", viewers), viewers)
	b.saveProfile(t, "heap", fmt.Sprintf("heap-%d.pprof", viewers), viewers)
	if t.cordon { // Go's runtime.MemStats (heap, stacks, GC goal) in text
		b.saveProfile(t, "heap?debug=1", fmt.Sprintf("memstats-%d.txt", viewers), viewers)
	}
}

func (b *bench) saveProfile(t *target, query, name string, viewers int) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s", t.metrics, query))
	if err != nil {
		b.logf("  profile of %s: %v", t.name, err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(t.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err == nil && resp.StatusCode == http.StatusOK {
		b.logf("  profile of %s at %d viewers: %s", t.name, viewers, path)
	}
}

// whepURL is the WHEP endpoint of camera cam.
func (t *target) whepURL(cam string) string {
	if t.cordon {
		return fmt.Sprintf("http://127.0.0.1:%d/whep/%s", t.http, cam)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/%s/whep", t.http, cam)
}

// rtspURL is the RTSP re-serve URL of camera cam (with the first API key).
func (t *target) rtspURL(cam string) string {
	if t.cordon {
		return fmt.Sprintf("rtsp://%s@127.0.0.1:%d/%s", url.UserPassword(t.keyName, t.keySecret), t.rtsp, cam)
	}
	return fmt.Sprintf("rtsp://127.0.0.1:%d/%s", t.rtsp, cam)
}

// rtspArgs are the load tool's flags for RTSP readers of camera cam: for
// cordon the API keys in turn (a principal holds at most 64 sessions) from
// eight source addresses (each address signs in one hash at a time).
func (t *target) rtspArgs(cam string) []string {
	args := []string{"--rtsp-url", fmt.Sprintf("rtsp://127.0.0.1:%d/%s", t.rtsp, cam)}
	if t.tokens != "" {
		args = append(args, "--token-file", t.tokens, "--sources", "8")
	}
	return args
}

// whepArgs are the load tool's addressing flags for camera cam.
func (t *target) whepArgs(cam string) []string {
	args := []string{"--whep-url", t.whepURL(cam)}
	if t.tokens != "" {
		args = append(args, "--token-file", t.tokens, "--sources", "8")
	}
	return args
}

// start starts the server for sc pinned to the server core and returns
// once every camera answers DESCRIBE on its RTSP re-serve.
func (b *bench) start(ctx context.Context, t *target, sc scenario) (*proc, error) {
	argv, err := t.configure(sc)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(t.dir, "server.log")
	p, err := startPinned(b.o.taskset, b.o.serverCPU, logPath, argv...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, cam := range sc.names() {
		for !describes(t.rtspURL(cam)) {
			if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
				p.stop()
				return nil, fmt.Errorf("%s did not serve %s: %s", t.name, cam, tail(logPath, 20))
			}
			time.Sleep(250 * time.Millisecond) // polling a child process: nothing to wait on
		}
	}
	if err := t.warmCredentials(ctx); err != nil {
		p.stop()
		return nil, err
	}
	// a keyframe in the GOP cache before the first viewer (GOP 2 s): a
	// sleep because neither server says from outside when its cache holds one
	time.Sleep(2500 * time.Millisecond)
	return p, nil
}

// warmCredentials has cordon check every API key once (argon2id, 64 MiB
// each, then cached) before anything is measured, so their transient
// memory and CPU land in no figure.
func (t *target) warmCredentials(ctx context.Context) error {
	if t.tokens == "" {
		return nil
	}
	b, err := os.ReadFile(t.tokens)
	if err != nil {
		return err
	}
	for tok := range strings.FieldsSeq(string(b)) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/v1/cameras", t.http), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s refused an API key: %s", t.name, resp.Status)
		}
	}
	return nil
}

// describes reports whether an RTSP DESCRIBE of u succeeds.
func describes(u string) bool {
	pu, err := base.ParseURL(u)
	if err != nil {
		return false
	}
	proto := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: pu.Scheme, Host: pu.Host, Protocol: &proto, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if err := c.Start(); err != nil {
		return false
	}
	defer c.Close()
	_, _, err = c.Describe(pu)
	return err == nil
}
