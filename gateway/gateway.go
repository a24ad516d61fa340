// Package gateway is cordon's composition root: it builds every component
// (audit log, auth, camera streams and pullers, WHEP, RTSP re-serve, the
// camera-network services, metrics) from a config.Config, owns the HTTP
// server and its routes, and applies config reloads. It has no other home:
// cmd/cordon is the command line only, and each component package knows
// nothing of the others.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/camnet"
	"cordon/config"
	"cordon/ingest"
	"cordon/relay"
	"cordon/relay/rtspserve"
	"cordon/relay/whep"
)

// Gateway is the whole running product. Set the exported fields, then
// Initialize; Close stops everything.
type Gateway struct {
	Config     *config.Config
	ConfigPath string // "" = no file to reload (demo)
	Logger     *slog.Logger
	Redactor   *config.Redactor
	// Stdout receives operator-facing notices (URLs, certificate
	// fingerprints). nil = io.Discard.
	Stdout io.Writer
	// SelfSigned creates (once) a TLS certificate in state_dir when no
	// tls_cert/tls_key are configured.
	SelfSigned bool
	// ExtraSecrets are redacted from logs too (e.g. the demo password).
	ExtraSecrets []string

	reg      *prometheus.Registry
	audit    *audit.Log
	auth     *auth.Service
	hub      *relay.Hub
	relayM   *relay.Metrics
	ingestM  *ingest.Metrics
	camnetM  *camnet.Metrics
	whep     *whep.Server
	rtsp     *rtspserve.Server
	sinkhole *camnet.Sinkhole
	ntp      *camnet.NTPServer
	tls      *tls.Config

	httpLn    net.Listener
	httpSrv   *http.Server
	metricsLn net.Listener
	metricsSr *http.Server

	reloadMu  sync.Mutex // serializes Reload
	camMu     sync.RWMutex
	cfg       *config.Config // current, guarded by camMu
	cameras   map[string]*cameraUnit
	unsubAuth func()

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc

	// hostile events (failed sign-ins, sinkhole queries; camera violations)
	hostile, camHostile *audit.Aggregator
	flapMu              sync.Mutex
	flapping            map[string]bool // camera id: its last disconnect was a violation
}

// Initialize builds and starts every component. On error, everything
// already started is stopped again.
func (g *Gateway) Initialize() (err error) {
	if g.Config == nil {
		return errors.New("gateway: no config")
	}
	if g.Logger == nil {
		g.Logger = slog.Default()
	}
	if g.Stdout == nil {
		g.Stdout = io.Discard
	}
	if g.Redactor == nil {
		g.Redactor = config.NewRedactor(g.Config)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.cfg = g.Config
	g.cameras = map[string]*cameraUnit{}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()

	cfg := g.Config
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	if err := os.Chmod(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}

	g.reg = prometheus.NewRegistry()
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g.relayM = relay.NewMetrics(g.reg)
	g.ingestM = ingest.NewMetrics(g.reg)
	g.camnetM = camnet.NewMetrics(g.reg)

	g.audit = &audit.Log{Path: cfg.Audit.Path, MaxSizeBytes: int64(cfg.Audit.MaxSizeMB) << 20, Logger: g.Logger.With("component", "audit")}
	if err := g.audit.Initialize(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	g.record(audit.Event{Event: audit.ConfigLoaded, Detail: g.configDetail(cfg)})
	if err := g.initHostileAudit(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	// the chain's head, scraped and stored elsewhere, anchors the audit log
	// against truncation of its newest lines
	g.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cordon_audit_seq", Help: "Sequence number of the last audit log line (anchor it externally to detect truncation).",
	}, func() float64 { seq, _ := g.audit.Head(); return float64(seq) }))
	g.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cordon_audit_healthy", Help: "1 while the audit log can be written; 0 means new viewing sessions are refused.",
	}, func() float64 {
		if g.audit.Healthy() != nil {
			return 0
		}
		return 1
	}))

	if err := g.initAuth(); err != nil {
		return err
	}
	if err := g.initTLS(); err != nil {
		return err
	}

	g.hub = relay.NewHub()
	for _, c := range cfg.Cameras {
		if err := g.addCamera(c); err != nil {
			return fmt.Errorf("cameras[%s]: %w", c.ID, err)
		}
	}

	g.whep = &whep.Server{
		UDPListen:   cfg.WebRTC.UDPListen,
		TCPListen:   cfg.WebRTC.TCPListen,
		HostIPs:     cfg.WebRTC.HostIPs,
		ICEServers:  iceURLs(cfg.WebRTC.ICEServers),
		CORSOrigins: cfg.HTTP.CORSOrigins,
		Hub:         g.hub,
		Access:      whepAccess{g},
		Events:      viewEvents{g},
		Log:         g.Logger,
		Metrics:     whep.NewMetrics(g.reg),
	}
	if err := g.whep.Initialize(); err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}

	if cfg.RTSP.Listen != "" {
		g.rtsp = &rtspserve.Server{
			Listen:        cfg.RTSP.Listen,
			UDPRTPListen:  cfg.RTSP.UDPRTPListen,
			UDPRTCPListen: cfg.RTSP.UDPRTCPListen,
			TLSConfig:     g.tls,
			AllowBasic:    g.tls != nil || config.IsLoopback(cfg.RTSP.Listen) || cfg.RTSP.AllowBasicWithoutTLS,
			DigestEnabled: g.digestConfigured,
			Hub:           g.hub,
			Access:        rtspAccess{g},
			Events:        rtspEvents{viewEvents{g}},
			Logger:        g.Logger.With("component", "rtspserve"),
			FrameDropped:  func(camera string) { g.relayM.FrameDropped(camera, "rtsp") },
		}
		if err := g.rtsp.Initialize(); err != nil {
			return err
		}
	}

	if err := g.initCameraNetwork(); err != nil {
		return err
	}
	if err := g.initHTTP(); err != nil {
		return err
	}
	if err := g.initMetrics(); err != nil {
		return err
	}
	if g.ConfigPath != "" {
		g.wg.Add(1)
		go g.watchConfig()
	}
	return nil
}

func (g *Gateway) configDetail(cfg *config.Config) string {
	src := g.ConfigPath
	if src == "" {
		src = "built-in"
	}
	return fmt.Sprintf("%s: %d cameras, %d users, %d api keys", src, len(cfg.Cameras), len(cfg.Auth.Users), len(cfg.Auth.APIKeys))
}

func (g *Gateway) initCameraNetwork() error {
	cn := g.Config.CameraNetwork
	if cn.DNSListen != "" {
		g.sinkhole = &camnet.Sinkhole{
			Listen:  cn.DNSListen,
			Logger:  g.Logger,
			Metrics: g.camnetM,
			Audit:   egressAudit{g},
		}
		if err := g.sinkhole.Initialize(); err != nil {
			return fmt.Errorf("camera_network.dns_listen: %w", err)
		}
		g.resolveCameraHosts()
	}
	if cn.NTPListen != "" {
		g.ntp = &camnet.NTPServer{
			Listen:       cn.NTPListen,
			Logger:       g.Logger,
			Metrics:      g.camnetM,
			Synchronised: clockSynchronised,
		}
		if err := g.ntp.Initialize(); err != nil {
			return fmt.Errorf("camera_network.ntp_listen: %w", err)
		}
	}
	return nil
}

// resolveCameraHosts maps camera source addresses for the sinkhole.
func (g *Gateway) resolveCameraHosts() {
	if g.sinkhole == nil {
		return
	}
	g.camMu.RLock()
	hosts := map[string]string{}
	for _, c := range g.cfg.Cameras {
		if h := c.Host(); h != "" {
			hosts[c.ID] = h
		}
	}
	g.camMu.RUnlock()
	ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
	defer cancel()
	g.sinkhole.SetCameras(camnet.ResolveHosts(ctx, g.Logger, hosts))
}

func (g *Gateway) initMetrics() error {
	addr := g.Config.Metrics.Listen
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	g.metricsLn = ln
	g.metricsSr = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.metricsSr.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.Logger.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// Close stops everything, most dependent first.
func (g *Gateway) Close() {
	if g.cancel != nil {
		g.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if g.httpSrv != nil {
		_ = g.httpSrv.Shutdown(ctx)
	}
	if g.metricsSr != nil {
		_ = g.metricsSr.Shutdown(ctx)
	}
	if g.whep != nil {
		g.whep.Close()
	}
	if g.rtsp != nil {
		g.rtsp.Close()
	}
	g.camMu.Lock()
	units := g.cameras
	g.cameras = nil
	g.camMu.Unlock()
	for _, u := range units {
		u.close()
	}
	if g.sinkhole != nil {
		g.sinkhole.Close()
	}
	if g.ntp != nil {
		g.ntp.Close()
	}
	g.wg.Wait()
	if g.unsubAuth != nil {
		g.unsubAuth()
	}
	if g.auth != nil {
		g.auth.Close()
	}
	g.closeHostileAudit()
	if g.audit != nil {
		g.audit.Close()
	}
}

// HTTPAddr is the bound address of the HTTP listener.
func (g *Gateway) HTTPAddr() string { return g.httpLn.Addr().String() }

// RTSPAddr is the bound address of the RTSP listener ("" when off).
func (g *Gateway) RTSPAddr() string {
	if g.rtsp == nil {
		return ""
	}
	return g.rtsp.Addr().String()
}

// MetricsAddr is the bound metrics address ("" when off).
func (g *Gateway) MetricsAddr() string {
	if g.metricsLn == nil {
		return ""
	}
	return g.metricsLn.Addr().String()
}

// DNSAddr is the bound sinkhole address ("" when off).
func (g *Gateway) DNSAddr() string {
	if g.sinkhole == nil {
		return ""
	}
	return g.sinkhole.Addr().String()
}

// NTPAddr is the bound SNTP address ("" when off).
func (g *Gateway) NTPAddr() string {
	if g.ntp == nil {
		return ""
	}
	return g.ntp.Addr().String()
}

// TLS reports whether the HTTP listener serves TLS.
func (g *Gateway) TLS() bool { return g.tls != nil }

// record appends an audit event; failures are logged by the audit log and
// surface through Healthy (fail closed).
func (g *Gateway) record(e audit.Event) {
	if err := g.audit.Append(e); err != nil {
		g.Logger.Error("audit append failed", "event", e.Event, "err", err)
	}
}

func iceURLs(servers []config.ICEServer) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.URLs...)
	}
	return out
}

// clockSynchronised adapts the host clock check for the SNTP server: an
// unknown state is served as synchronised rather than alarming cameras.
func clockSynchronised() bool {
	ok, err := camnet.ClockSynchronised()
	return ok || err != nil
}
