package gateway

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"cordon/auth/audit"
	"cordon/config"
	"cordon/relay/session"
)

// Reload re-reads the config file and applies it: principals and their
// rights at once (live sessions that may no longer watch end immediately),
// cameras added, removed or re-pointed (viewers of a re-pointed camera stay
// attached), the redactor and the sinkhole's camera map. Listener
// addresses, TLS files and state_dir need a restart; a change there is
// logged and otherwise ignored. An invalid file changes nothing.
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
		g.Logger.Warn("listener, TLS or state_dir changes need a restart; they are not applied")
	}
	g.Redactor.Update(cfg, g.ExtraSecrets...)
	g.cfgMu.Lock()
	g.cfg = cfg
	g.cfgMu.Unlock()
	if err := g.updatePrincipals(cfg); err != nil {
		return err
	}
	ended := g.recheckSessions()
	err := g.cameras.Apply(cfg.Cameras, sanitizeOptions(cfg))
	g.resolveCameraHosts()
	g.Record(audit.Event{Event: audit.ConfigLoaded, Detail: g.configDetail(cfg)})
	g.Logger.Info("config reloaded", "cameras", len(cfg.Cameras), "sessions_ended", ended)
	return err
}

// recheckSessions ends live sessions whose principal is gone or may no
// longer view the camera (the decision is auth's; the registry applies it
// to every door).
func (g *Gateway) recheckSessions() int {
	return len(g.sessions.Recheck(func(s session.Info) bool {
		p, ok := g.auth.Lookup(s.User, s.Kind)
		return ok && p.CanView(s.Camera)
	}))
}

func restartNeeded(a, b *config.Config) bool {
	return a.HTTP.Listen != b.HTTP.Listen || a.HTTP.TLSCert != b.HTTP.TLSCert || a.HTTP.TLSKey != b.HTTP.TLSKey ||
		a.RTSP.Listen != b.RTSP.Listen || a.WebRTC.UDPListen != b.WebRTC.UDPListen || a.WebRTC.TCPListen != b.WebRTC.TCPListen ||
		a.Metrics != b.Metrics || a.StateDir != b.StateDir || a.Audit.Path != b.Audit.Path ||
		a.CameraNetwork != b.CameraNetwork
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
