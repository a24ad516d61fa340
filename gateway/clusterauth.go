package gateway

import (
	"errors"

	"cordon/auth"
	"cordon/cluster"
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

var errPeerRefused = errors.New("peer credential refused")

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
		_ = att.Failed("peer credential refused")
		return rtspserve.Viewer{}, true, errPeerRefused
	}
	att.Succeeded()
	return rtspserve.Viewer{Name: name, Kind: session.KindPeer}, true, nil
}

// peerDigestHA1 gives the HA1 of a peer user name for RTSP Digest.
func (g *Gateway) peerDigestHA1(name string) (v rtspserve.Viewer, ha1 string, ok, isPeer bool) {
	if !cluster.IsPeerUser(name) {
		return rtspserve.Viewer{}, "", false, false
	}
	if !g.clustered() {
		return rtspserve.Viewer{}, "", false, true
	}
	ha1, ok = g.cl.peerKey.DigestHA1(name, rtspserve.Realm)
	return rtspserve.Viewer{Name: name, Kind: session.KindPeer}, ha1, ok, true
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
