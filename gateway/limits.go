package gateway

import (
	"fmt"
	"net"

	"cordon/config"
	"cordon/internal/connlimit"
)

// Connection caps and timeouts on every operator-side TCP listener (HTTP,
// RTSP, ICE-TCP, metrics), and the descriptor budget they must fit in
// with the cameras' reserve.

// The metrics listener's caps: a scraper or two. The ONVIF face's: a few
// VMS servers, each with a connection per recorder or device thread.
const (
	metricsPerAddress = 8
	metricsTotal      = 32
	onvifPerAddress   = 32
	onvifTotal        = 256
)

// checkBudget refuses to start when the connection caps and the cameras'
// reserve exceed the open-file limit (naming the fields to change).
func (g *Gateway) checkBudget() error {
	limit, err := connlimit.OpenFileLimit()
	if err != nil {
		g.Logger.Warn("cannot read the open-file limit; the connection caps are not budgeted", "err", err)
		return nil
	}
	totals := g.Config.DescriptorTotals()
	if g.Config.Metrics.Listen != "" {
		totals["the metrics listener's fixed cap"] = metricsTotal
	}
	if g.Config.ONVIF.Listen != "" {
		totals["the ONVIF listener's fixed cap"] = onvifTotal
	}
	if err := connlimit.CheckBudget(connlimit.Budget{Totals: totals, Cameras: len(g.Config.Cameras)}, limit); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	return nil
}

// limitListener returns a wrapper that caps a door's listener by lim,
// with the configured header and idle timeouts.
func (g *Gateway) limitListener(protocol string, lim config.ConnLimit, reject func(net.Conn, string)) func(net.Listener) (net.Listener, error) {
	header, idle := g.Config.Limits.Timeouts()
	return func(ln net.Listener) (net.Listener, error) {
		l := &connlimit.Listener{Listener: ln, Protocol: protocol, PerAddress: lim.PerAddress, Total: lim.Total,
			HandshakeTimeout: header, IdleTimeout: idle, OnReject: reject,
			Logger: g.Logger.With("component", "connlimit"), Metrics: g.connM}
		if err := l.Initialize(); err != nil {
			return nil, err
		}
		return l, nil
	}
}
