// Package gateway is cordon's composition root: it builds every component
// (audit log, auth, camera units, the session registry, the WHEP and RTSP
// doors, the HTTP API, the camera-network services, metrics) from a
// config.Config, wires them and applies config reloads. It decides nothing
// itself: each component package knows nothing of the others, and cmd/cordon
// is the command line only.
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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/camera"
	"cordon/camnet"
	"cordon/camnet/harden"
	"cordon/config"
	"cordon/ingest"
	"cordon/internal/connlimit"
	"cordon/internal/tlscert"
	"cordon/ptz"
	"cordon/record"
	"cordon/relay"
	"cordon/relay/onvifserve"
	"cordon/relay/rtspserve"
	"cordon/relay/session"
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
	// Version is this build's version (the evidence manifest's
	// cordon_version).
	Version string
	// CameraLinger is how long an on-demand camera keeps pulling after its
	// last reader left; 0 = camera.DefaultLinger (10 s).
	CameraLinger time.Duration
	// NoHardening turns the hardening drift watch off (the demo's cameras
	// have no management API); HardenMinGap spaces the checks at camera
	// connect (0 = harden.DefaultMinGap, 1 min).
	NoHardening  bool
	HardenMinGap time.Duration

	reg      *prometheus.Registry
	audit    *audit.Log
	auth     *auth.Service
	hub      *relay.Hub
	cameras  *camera.Registry
	sessions *session.Registry
	relayM   *relay.Metrics
	ingestM  *ingest.Metrics
	cameraM  *camera.Metrics
	camnetM  *camnet.Metrics
	whep     *whep.Server
	rtsp     *rtspserve.Server
	sinkhole *camnet.Sinkhole
	ntp      *camnet.NTPServer
	tls      *tls.Config
	guard    *auth.Guard        // ends live sessions no longer allowed
	connM    *connlimit.Metrics // connection caps of every listener
	forward  *audit.Forwarder   // nil unless audit.forward is set
	iceGen   atomic.Uint64      // generation of the WHEP candidate policy
	recorder *record.Recorder   // nil: recording off
	exporter *record.Exporter
	ptzM     *ptz.Metrics
	ptzGuard *auth.Guard    // ends PTZ control on logout and rights changes
	dir      directoryParts // auth.ldap, auth.oidc (directory.go)

	onvif         *onvifserve.Server    // gateway/onvif.go
	discovery     *onvifserve.Discovery // gateway/onvif.go
	onvifLogins   *loginDedup
	hardenW       atomic.Pointer[harden.Watcher] // gateway/harden.go
	hardenRefused error

	httpLn    net.Listener
	httpSrv   *http.Server
	metricsLn net.Listener
	metricsSr *http.Server

	reloadMu sync.Mutex   // serializes Reload
	cfgMu    sync.RWMutex // guards cfg
	cfg      *config.Config

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc

	cl clusterState // zero on a single node (cluster.go)

	// hostile events (failed sign-ins, sinkhole queries; camera violations)
	hostile, camHostile *audit.Aggregator
	flapMu              sync.Mutex
	flapping            map[string]bool // camera id: its last disconnect was a violation
}

// Initialize builds and starts every component, dependencies first. On
// error, everything already started is stopped again.
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
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	for _, step := range []func() error{
		g.initState, g.prepareCluster, g.checkBudget, g.initAudit, g.initAuth, g.initDirectory, g.initTLS, g.initRecording, g.initCameras,
		g.startRecorders, g.initPTZ, g.initDoors, g.initONVIF, g.initGuard, g.initCameraNetwork, g.initHardening,
		g.initHTTP, g.initCluster, g.initMetrics,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	if g.ConfigPath != "" {
		g.wg.Add(1)
		go g.watchConfig()
	}
	return nil
}

// initState creates state_dir (0700) and the metrics registry.
func (g *Gateway) initState() error {
	dir := g.Config.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	g.reg = prometheus.NewRegistry()
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g.relayM = relay.NewMetrics(g.reg)
	g.ingestM = ingest.NewMetrics(g.reg)
	g.cameraM = camera.NewMetrics(g.reg)
	g.camnetM = camnet.NewMetrics(g.reg)
	g.connM = connlimit.NewMetrics(g.reg)
	return nil
}

// initAudit opens the audit log and exports its head: scraped and stored
// elsewhere, it anchors the log against truncation of its newest lines.
func (g *Gateway) initAudit() error {
	cfg := g.Config
	g.audit = &audit.Log{
		Path:         cfg.Audit.Path,
		MaxSizeBytes: int64(cfg.Audit.MaxSizeMB) << 20,
		// signed chain: the genesis key is created in state_dir and
		// printed (cordon audit pubkey prints it again)
		KeyPath:           filepath.Join(cfg.StateDir, audit.KeyFileName),
		Node:              cfg.Cluster.NodeID,
		KeepFiles:         cfg.Audit.KeepFiles,
		KeepBytes:         int64(cfg.Audit.KeepMB) << 20,
		WaitForForwarding: cfg.Audit.Forward != "",
		Logger:            g.Logger.With("component", "audit"),
	}
	if err := g.audit.Initialize(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if err := g.initForward(); err != nil {
		return err
	}
	g.Record(audit.Event{Event: audit.ConfigLoaded, Detail: g.configDetail(cfg)})
	if err := g.initHostileAudit(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
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
	return nil
}

// initTLS loads or creates the certificate HTTP and RTSP serve with.
func (g *Gateway) initTLS() error {
	cfg := g.Config
	tc, fp, err := tlscert.Config(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey, g.SelfSigned, cfg.StateDir, cfg.WebRTC.HostIPs)
	if err != nil {
		return err
	}
	if tc != nil {
		fmt.Fprintf(g.Stdout, "TLS certificate SHA-256 fingerprint: %s\n", fp)
	}
	g.tls = tc
	return nil
}

// initDoors starts WHEP and the RTSP re-serve on one session registry,
// their listeners capped (limits.*) and their questions asked of auth.
func (g *Gateway) initDoors() error {
	cfg := g.Config
	g.sessions = &session.Registry{}
	g.whep = &whep.Server{
		UDPListen:   cfg.WebRTC.UDPListen,
		TCPListen:   cfg.WebRTC.TCPListen,
		HostIPs:     cfg.WebRTC.HostIPs,
		ICEServers:  iceURLs(cfg.WebRTC.ICEServers),
		CORSOrigins: cfg.HTTP.CORSOrigins,
		UDPGSO:      cfg.WebRTC.UDPGSO,
		SendBurst:   cfg.WebRTC.SendBurstPackets,
		SendRate:    cfg.WebRTC.SendRatePackets,
		Hub:         g.hub,
		Access:      whepAccess{g},
		Events:      viewEvents{g},
		Sessions:    g.sessions,
		WrapTCP:     g.limitListener("ice_tcp", cfg.Limits.ICETCP, nil),
		Log:         g.Logger,
		Metrics:     whep.NewMetrics(g.reg),
	}
	g.whep.ICEPolicy = g.icePolicy(cfg, nil)
	if err := g.whep.Initialize(); err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	g.setICEPolicy(cfg)
	if cfg.RTSP.Listen == "" {
		return nil
	}
	basic := g.tls != nil || config.IsLoopback(cfg.RTSP.Listen) || cfg.RTSP.AllowBasicWithoutTLS
	g.rtsp = &rtspserve.Server{
		Listen:        cfg.RTSP.Listen,
		UDPRTPListen:  cfg.RTSP.UDPRTPListen,
		UDPRTCPListen: cfg.RTSP.UDPRTCPListen,
		TLSConfig:     g.tls,
		AllowBasic:    basic,
		DigestEnabled: func() bool { return g.auth.Directory.DigestEnabled() || g.peerDigestNeeded(basic) },
		WrapListener:  g.rtspLimitListener(cfg.Limits.RTSP),
		Sessions:      g.sessions,
		Hub:           g.hub,
		Access:        rtspAccess{g},
		Events:        viewEvents{g},
		Logger:        g.Logger.With("component", "rtspserve"),
		FrameDropped:  func(camera string) { g.relayM.FrameDropped(camera, "rtsp") },
	}
	return g.rtsp.Initialize()
}

func (g *Gateway) configDetail(cfg *config.Config) string {
	src := g.ConfigPath
	if src == "" {
		src = "built-in"
	}
	return fmt.Sprintf("%s: %d cameras, %d users, %d api keys", src, len(cfg.Cameras), len(cfg.Auth.Users), len(cfg.Auth.APIKeys))
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
	g.closeONVIF()
	g.closeHardening()
	if g.guard != nil {
		g.guard.Close()
	}
	if g.whep != nil {
		g.whep.Close()
	}
	if g.rtsp != nil {
		g.rtsp.Close()
	}
	if g.ptzGuard != nil {
		g.ptzGuard.Close()
	}
	if g.cameras != nil {
		g.cameras.Close()
	}
	g.closeRecording()
	g.closeCluster() // after the cameras stopped: the others take them at once
	if g.sinkhole != nil {
		g.sinkhole.Close()
	}
	if g.ntp != nil {
		g.ntp.Close()
	}
	g.wg.Wait()
	g.closeDirectory()
	if g.auth != nil {
		g.auth.Close()
	}
	g.closeHostileAudit()
	if g.forward != nil {
		g.forward.Close()
	}
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

// RTSPUDPAddrs are the bound RTP and RTCP addresses of RTSP over UDP (""
// when off).
func (g *Gateway) RTSPUDPAddrs() (rtp, rtcp string) {
	if g.rtsp == nil {
		return "", ""
	}
	return g.rtsp.UDPAddrs()
}

// ICETCPAddr is the bound ICE-TCP address ("" when off).
func (g *Gateway) ICETCPAddr() string {
	if g.whep == nil || g.whep.TCPAddr() == nil {
		return ""
	}
	return g.whep.TCPAddr().String()
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

// Cameras is the camera registry (the units of the running config).
func (g *Gateway) Cameras() *camera.Registry { return g.cameras }

// Sessions is the registry of live viewing sessions of every door.
func (g *Gateway) Sessions() *session.Registry { return g.sessions }

// Record appends an audit event; failures are logged by the audit log and
// surface through Healthy (fail closed).
func (g *Gateway) Record(e audit.Event) {
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
