package gateway

import (
	"net"
	"net/netip"

	"cordon/auth"
	"cordon/cluster"
	"cordon/config"
	"cordon/internal/connlimit"
	"cordon/relay/rtspserve"
	"cordon/relay/session"
)

// Peers on the RTSP door: another node of the cluster relaying a camera
// this node owns signs in as "peer/<its node id>" with a password derived
// from the shared peer key (cluster.PeerKey: Basic over RTSPS or loopback,
// Digest otherwise, checked with the HA1 the key gives). A peer is its own
// kind of principal, separate from users and API keys: it may only view,
// only cameras this node owns (any other camera is answered as if it did
// not exist, so relays never chain), and never anything else (no other
// door accepts it). Failures count towards the lockout like any other.

// peerPassword handles RTSP Basic for peer user names: ok is false when
// name is not a peer's (the caller goes on with users and API keys).
func (g *Gateway) peerPassword(name, secret, remote string) (v rtspserve.Viewer, ok bool, err error) {
	if !cluster.IsPeerUser(name) {
		return rtspserve.Viewer{}, false, nil
	}
	att, err := g.auth.BeginAttempt(name, remote, "rtsp", auth.SourceLocal)
	if err != nil {
		return rtspserve.Viewer{}, true, err
	}
	if !g.clustered() {
		return rtspserve.Viewer{}, true, att.Failed("peer credential on a node that is not in a cluster")
	}
	if _, valid := g.cl.peerKey.Verify(name, secret); !valid {
		return rtspserve.Viewer{}, true, att.Failed("peer credential refused")
	}
	att.Succeeded()
	return peerViewer(name), true, nil
}

// peerDigest handles RTSP Digest for peer user names (the door checked
// the nonce): the HA1 is derived from the peer key.
func (g *Gateway) peerDigest(d auth.DigestResponse, remote string) (v rtspserve.Viewer, ok bool, err error) {
	if !cluster.IsPeerUser(d.Username) {
		return rtspserve.Viewer{}, false, nil
	}
	att, err := g.auth.BeginAttempt(d.Username, remote, "rtsp", auth.SourceLocal)
	if err != nil {
		return rtspserve.Viewer{}, true, err
	}
	if !g.clustered() {
		return rtspserve.Viewer{}, true, att.Failed("peer credential on a node that is not in a cluster")
	}
	ha1, known := g.cl.peerKey.DigestHA1(d.Username, rtspserve.Realm)
	if !known || !auth.DigestMatches(ha1, d) {
		return rtspserve.Viewer{}, true, att.Failed("peer digest response refused")
	}
	att.Succeeded()
	return peerViewer(d.Username), true, nil
}

// peerViewer is a peer node on the RTSP door: no auth principal (no door
// but this one accepts it, and it may only relay what this node owns).
func peerViewer(name string) rtspserve.Viewer {
	return rtspserve.Viewer{Name: name, Kind: session.KindPeer, Source: auth.SourceLocal}
}

// peerMayView: a peer may relay only the cameras this node owns.
func (g *Gateway) peerMayView(camera string) bool {
	return g.clustered() && g.owner(camera).Self
}

// peerDigestNeeded: peers must be able to sign in over plain RTSP on a
// non-loopback address, where Basic is not offered: then Digest is.
func (g *Gateway) peerDigestNeeded(basicAllowed bool) bool {
	return g.clustered() && !basicAllowed
}

// rtspLimitListener caps RTSP connections like every door; in a cluster
// the other nodes' addresses pass the per-address cap (a node holds one
// connection per camera stream it relays from this one: hundreds, where
// an operator's host holds a few), never the total.
func (g *Gateway) rtspLimitListener(lim config.ConnLimit) func(net.Listener) (net.Listener, error) {
	wrap := g.limitListener("rtsp", lim, connlimit.RTSPReject)
	if !g.clustered() {
		return wrap
	}
	return func(ln net.Listener) (net.Listener, error) {
		l, err := wrap(ln)
		if cl, ok := l.(*connlimit.Listener); ok {
			cl.PerAddressExempt = g.isNodeAddress
		}
		return l, err
	}
}

// isNodeAddress: ip is the advertised address of a registered node.
func (g *Gateway) isNodeAddress(ip netip.Addr) bool {
	n := g.cl.node.Load()
	if n == nil {
		return false
	}
	for _, m := range n.Members() {
		if a, err := netip.ParseAddr(m.Advertise); err == nil && a.Unmap() == ip {
			return true
		}
	}
	return false
}
