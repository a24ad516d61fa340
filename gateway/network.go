package gateway

import (
	"context"
	"fmt"
	"time"

	"cordon/camnet"
)

// The camera network's services: the DNS sinkhole and SNTP.

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
	g.cfgMu.RLock()
	hosts := map[string]string{}
	for _, c := range g.cfg.Cameras {
		if h := c.Host(); h != "" {
			hosts[c.ID] = h
		}
	}
	g.cfgMu.RUnlock()
	ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
	defer cancel()
	g.sinkhole.SetCameras(camnet.ResolveHosts(ctx, g.Logger, hosts))
}

// clockSynchronised adapts the host clock check for the SNTP server: an
// unknown state is served as synchronised rather than alarming cameras.
func clockSynchronised() bool {
	ok, err := camnet.ClockSynchronised()
	return ok || err != nil
}
