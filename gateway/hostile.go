package gateway

import (
	"errors"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/camnet"
	"cordon/ingest"
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
	g.camHostile = &audit.Aggregator{Log: g.audit, Interval: hostileCameraInterval, MaxKindsPerSource: 6, Logger: g.Logger.With("component", "audit")}
	g.flapping = map[string]bool{}
	return g.camHostile.Initialize()
}

// auditCameraOffline writes a camera going offline; when a violation took
// it offline (a hostile camera, which reconnects into it again and again),
// the transition goes through the camera aggregator, and so does the next
// camera_online.
func (g *Gateway) auditCameraOffline(e audit.Event, err error) {
	var v *ingest.Violation
	hostile := errors.As(err, &v)
	g.flapMu.Lock()
	g.flapping[e.Camera] = hostile
	g.flapMu.Unlock()
	if hostile {
		g.camHostile.Record("camera:"+e.Camera, e.Event, e)
		return
	}
	g.Record(e)
}

func (g *Gateway) auditCameraOnline(e audit.Event) {
	g.flapMu.Lock()
	hostile := g.flapping[e.Camera]
	g.flapMu.Unlock()
	if hostile {
		g.camHostile.Record("camera:"+e.Camera, e.Event, e)
		return
	}
	g.Record(e)
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

// hostileSource keys an address-triggered event as auth keys its own
// (auth.AddrID: the host, IPv6 per /64), so that one host is one source.
func hostileSource(remote string) string { return auth.AddrID(remote) }

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
	return hostileSource(remote)
}
