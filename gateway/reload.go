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
// limits, lockout, cluster and the WHEP send settings (webrtc.udp_gso,
// send_burst_packets, send_rate_packets: read when the WHEP server starts)
// need a restart; a change there is logged by name and otherwise ignored.
// An invalid file changes nothing.
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
	if names := restartOnly(old, cfg); len(names) > 0 {
		g.Logger.Warn("these settings changed but need a restart; they are not applied", "settings", names)
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

// restartOnly names the changed settings that are read only at start-up.
func restartOnly(a, b *config.Config) []string {
	var names []string
	add := func(changed bool, name string) {
		if changed {
			names = append(names, name)
		}
	}
	add(a.HTTP.Listen != b.HTTP.Listen, "http.listen")
	add(a.HTTP.TLSCert != b.HTTP.TLSCert || a.HTTP.TLSKey != b.HTTP.TLSKey, "http.tls")
	add(a.RTSP.Listen != b.RTSP.Listen, "rtsp.listen")
	add(a.WebRTC.UDPListen != b.WebRTC.UDPListen, "webrtc.udp_listen")
	add(a.WebRTC.TCPListen != b.WebRTC.TCPListen, "webrtc.tcp_listen")
	add(a.WebRTC.UDPGSO != b.WebRTC.UDPGSO, "webrtc.udp_gso")
	add(a.WebRTC.SendBurstPackets != b.WebRTC.SendBurstPackets, "webrtc.send_burst_packets")
	add(a.WebRTC.SendRatePackets != b.WebRTC.SendRatePackets, "webrtc.send_rate_packets")
	add(a.Metrics != b.Metrics, "metrics")
	add(a.StateDir != b.StateDir, "state_dir")
	add(a.Audit != b.Audit, "audit")
	add(a.CameraNetwork != b.CameraNetwork, "camera_network")
	add(a.Limits != b.Limits, "limits")
	add(a.Auth.Lockout != b.Auth.Lockout, "auth.lockout")
	add(clusterChanged(&a.Cluster, &b.Cluster), "cluster")
	return names
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
