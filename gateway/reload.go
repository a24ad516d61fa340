package gateway

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"cordon/auth/audit"
	"cordon/config"
)

// Reload re-reads the config file and applies it: principals and their
// rights at once (live sessions that may no longer watch end immediately),
// cameras added, removed or re-pointed (viewers of a re-pointed camera stay
// attached), the redactor, the sinkhole's camera map and the WHEP
// candidate policy. Listener addresses, TLS files, state_dir, audit,
// limits and lockout need a restart; a change there is logged and
// otherwise ignored. An invalid file changes nothing.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.ConfigPath == "" {
		return fmt.Errorf("no config file to reload")
	}
	cfg, err := config.LoadAndValidate(g.ConfigPath)
	if err != nil {
		g.Logger.Error("config reload rejected; the running config stays", "err", err)
		g.Record(audit.Event{Event: audit.ConfigLoaded, Detail: "rejected: " + clip(g.Redactor.Redact(err.Error()), 512)})
		return err
	}
	return g.apply(cfg)
}

func (g *Gateway) apply(cfg *config.Config) error {
	old := g.cfg
	if restartNeeded(old, cfg) {
		g.Logger.Warn("listener, TLS, state_dir, audit, limits, lockout and cluster changes need a restart; they are not applied")
	}
	g.Redactor.Update(cfg, g.ExtraSecrets...)
	g.cfgMu.Lock()
	g.cfg = cfg
	g.cfgMu.Unlock()
	if err := g.updatePrincipals(cfg); err != nil {
		return err
	}
	// the guard heard of every change and ends what is no longer allowed
	// on its own goroutine; a sweep here ends it before Reload returns
	ended := g.guard.Sweep()
	g.reloadDirectory(old, cfg)
	err := g.cameras.Apply(cfg.Cameras, sanitizeOptions(cfg))
	if n := g.cl.node.Load(); n != nil {
		n.SetCameras(cameraIDs(cfg))
	}
	g.applyRecording(old, cfg)
	g.attachPTZ()
	g.resolveCameraHosts()
	g.setICEPolicy(cfg)
	g.reloadHardening(cfg)
	g.Record(audit.Event{Event: audit.ConfigLoaded, Detail: g.configDetail(cfg)})
	g.Logger.Info("config reloaded", "cameras", len(cfg.Cameras), "sessions_ended", ended)
	return err
}

func restartNeeded(a, b *config.Config) bool {
	return a.HTTP.Listen != b.HTTP.Listen || a.HTTP.TLSCert != b.HTTP.TLSCert || a.HTTP.TLSKey != b.HTTP.TLSKey ||
		a.RTSP.Listen != b.RTSP.Listen || a.WebRTC.UDPListen != b.WebRTC.UDPListen || a.WebRTC.TCPListen != b.WebRTC.TCPListen ||
		a.Metrics != b.Metrics || a.StateDir != b.StateDir || a.Audit != b.Audit ||
		a.CameraNetwork != b.CameraNetwork || a.Limits != b.Limits || a.Auth.Lockout != b.Auth.Lockout ||
		clusterChanged(&a.Cluster, &b.Cluster)
}

// watchConfig reloads when the file's content changes (checked every
// second: robust against editors that replace the file) and on SIGHUP
// (delivered by the command through Reload).
func (g *Gateway) watchConfig() {
	defer g.wg.Done()
	sum := fileSum(g.ConfigPath)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		s := fileSum(g.ConfigPath)
		if s == nil || bytes.Equal(s, sum) {
			continue
		}
		sum = s
		g.Logger.Info("config file changed; reloading")
		_ = g.Reload()
	}
}

func fileSum(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	h := sha256.Sum256(b)
	return h[:]
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
