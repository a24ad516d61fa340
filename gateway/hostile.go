package gateway

import (
	"net"
	"time"

	"cordon/auth/audit"
	"cordon/camnet"
)

// Events a hostile party can trigger at will go to the audit log through
// aggregators (auth/audit.Aggregator): failed sign-ins, RTSP denials and
// sinkhole queries per address or camera and minute; a camera's protocol
// violations (refused redirects, exceeded bounds) per camera and hour.
const (
	hostileNetInterval    = time.Minute
	hostileCameraInterval = time.Hour
)

func (g *Gateway) initHostileAudit() error {
	g.hostile = &audit.Aggregator{Log: g.audit, Interval: hostileNetInterval, Logger: g.Logger.With("component", "audit")}
	if err := g.hostile.Initialize(); err != nil {
		return err
	}
	g.camHostile = &audit.Aggregator{Log: g.audit, Interval: hostileCameraInterval, Logger: g.Logger.With("component", "audit")}
	return g.camHostile.Initialize()
}

// closeHostileAudit writes the pending summaries; call it after every
// component that records and before the audit log closes.
func (g *Gateway) closeHostileAudit() {
	if g.hostile != nil {
		g.hostile.Close()
	}
	if g.camHostile != nil {
		g.camHostile.Close()
	}
}

// rtspAuthFailed is rtspserve's reason for a denial without valid
// credentials.
const rtspAuthFailed = "rtsp authentication failed"

// hostileSource keys an address-triggered event by host (the port changes
// with every connection).
func hostileSource(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// cameraHostile sends a camera's violations to the audit aggregator.
type cameraHostile struct{ g *Gateway }

func (c cameraHostile) CameraHostile(id, reason, detail string) {
	c.g.camHostile.Record("camera:"+id, reason, audit.Event{Event: audit.Denied, Camera: id, Protocol: "rtsp", Detail: detail})
}

// sinkholeSource is who an egress attempt is counted against: the camera,
// or the address for queries from no known camera.
func sinkholeSource(camera, remote string) string {
	if camera != "" && camera != camnet.UnknownCamera {
		return "camera:" + camera
	}
	return remote
}
