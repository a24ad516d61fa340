package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"cordon/api"
	"cordon/config"
	"cordon/internal/connlimit"
	"cordon/web"
)

// initHTTP mounts every HTTP door on one server: the API, sign-in, WHEP and
// the viewer.
func (g *Gateway) initHTTP() error {
	mux := http.NewServeMux()
	a := &api.Server{Auth: g.auth, Cameras: g.cameras, Sessions: g.sessions, Audit: g, Redactor: g.Redactor, Healthy: g.audit.Healthy, Degraded: g.directoryDegraded}
	if g.sinkhole != nil {
		a.Egress = g.sinkhole.ReportHandler()
	}
	if g.clustered() {
		a.Cluster = clusterAPI{g}
	}
	a.Register(mux)
	g.registerRecordings(mux)
	(&api.Hardening{API: a, Watcher: g.hardeningAPI()}).Register(mux)
	ptzAPI := &api.PTZ{Auth: g.auth, Control: g.PTZ, Granted: g.PTZGranted, Audit: g}
	if g.clustered() {
		ptzAPI.Forward = g.forwardPTZ // clusterptz.go: the owner holds the lock
	}
	ptzAPI.Register(mux)
	mux.Handle("POST /api/v1/login", g.auth.LoginHandler())
	mux.Handle("POST /api/v1/logout", g.auth.LogoutHandler())
	g.mountDirectory(mux)
	mux.Handle("/whep/", g.whep)
	mux.Handle("/", web.Handler())

	raw, err := net.Listen("tcp", g.Config.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	ln, err := g.limitListener("http", g.Config.Limits.HTTP, connlimit.HTTPReject)(raw)
	if err != nil {
		_ = raw.Close()
		return fmt.Errorf("http.listen: %w", err)
	}
	g.httpLn = ln
	header, idle := g.Config.Limits.Timeouts()
	g.httpSrv = &http.Server{
		Handler:           web.SecurityHeaders(mux),
		ReadHeaderTimeout: header,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       idle,
		MaxHeaderBytes:    16 << 10,
	}
	if g.tls != nil {
		g.httpSrv.TLSConfig = g.tls
	} else if !config.IsLoopback(ln.Addr().String()) {
		g.Logger.Warn("HTTP is plain text on a non-loopback address: tokens and passwords cross the network in clear; configure http.tls_cert/tls_key or use --self-signed", "listen", ln.Addr().String())
	}
	g.serve("http", g.httpSrv, ln, g.tls != nil)
	return nil
}

// initMetrics serves /metrics on its own listener.
func (g *Gateway) initMetrics() error {
	addr := g.Config.Metrics.Listen
	if addr == "" {
		return nil
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	ln, err := g.limitListener("metrics", config.ConnLimit{PerAddress: metricsPerAddress, Total: metricsTotal}, connlimit.HTTPReject)(raw)
	if err != nil {
		_ = raw.Close()
		return fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	if g.Config.Metrics.PProf {
		mountPProf(mux)
		g.Logger.Warn("Go's profiler is served on the metrics listener (metrics.pprof)", "addr", ln.Addr().String())
	}
	g.metricsLn = ln
	header, idle := g.Config.Limits.Timeouts()
	g.metricsSr = &http.Server{Handler: mux, ReadHeaderTimeout: header, IdleTimeout: idle}
	g.serve("metrics", g.metricsSr, ln, false)
	return nil
}

func (g *Gateway) serve(name string, srv *http.Server, ln net.Listener, tls bool) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		var err error
		if tls {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.Logger.Error(name+" server stopped", "err", err)
		}
	}()
}
