package gateway

import (
	"context"
	"errors"

	"cordon/camera"
	"cordon/ingest"
)

// The camera unit's source on a cluster node. One source per stream of a
// camera; each Pull asks who owns the camera now: this node pulls the
// camera itself (ingest's puller, as on a single node); another node is
// pulled over the peer link, an RTSP(S) pull of its re-serve with this
// node's peer credential (its certificate pinned to the fingerprint it
// registered in etcd), so what arrives is already sanitized and the
// camera sees one session whatever the number of nodes; nobody: wait
// until the cluster names the next owner (the unit restarts the pull then,
// Unit.SetLocal). The relay stream keeps its output timeline across these
// switches as across camera reconnects: viewers keep their sessions.

type clusterSource struct {
	g    *Gateway
	spec camera.SourceSpec
	cam  camera.Source // the camera itself
}

// newClusterSource is a camera.SourceFactory.
func (g *Gateway) newClusterSource(spec camera.SourceSpec) (camera.Source, error) {
	cam, err := g.cameraPuller(spec)
	if err != nil {
		return nil, err
	}
	return &clusterSource{g: g, spec: spec, cam: cam}, nil
}

// cameraPuller is the puller of the camera itself (what camera.Unit uses
// on its own when NewSource is nil).
func (g *Gateway) cameraPuller(spec camera.SourceSpec) (camera.Source, error) {
	p := &ingest.Puller{
		ID:        spec.Camera.ID,
		URL:       spec.URL,
		Transport: spec.Camera.Transport,
		Logger:    g.Logger.With("component", "camera"),
		Metrics:   g.ingestM,
		Redactor:  g.Redactor,
		Hostile:   cameraHostile{g},
		Limits:    ingest.Limits{MaxBitrate: spec.Camera.MaxBitrate()},
	}
	if err := p.Initialize(); err != nil {
		return nil, err
	}
	return p, nil
}

var errNoPeerAddress = errors.New("the owning node registered no address to relay from")

func (s *clusterSource) Pull(ctx context.Context, sink ingest.Sink, obs ingest.Observer) error {
	o := s.g.owner(s.spec.Camera.ID)
	switch {
	case o.Self:
		return s.cam.Pull(ctx, sink, obs)
	case o.Node == "":
		<-ctx.Done() // SetLocal restarts the pull when an owner is named
		return context.Cause(ctx)
	}
	path := s.spec.Camera.ID
	if s.spec.Stream != "" {
		path += "/" + s.spec.Stream
	}
	u, err := s.g.cl.peerKey.PullURL(s.g.Config.Cluster.NodeID, o.Peer, path)
	if err != nil || o.Peer.Advertise == "" || o.Peer.RTSPPort == 0 {
		return errNoPeerAddress
	}
	p := &ingest.Puller{
		ID:        s.spec.Camera.ID,
		URL:       u, // holds the peer credential: Redactor nil removes it from every error
		Transport: "tcp",
		Logger:    s.g.Logger.With("component", "cluster", "peer", o.Node),
		Metrics:   s.g.ingestM,
		Limits:    ingest.Limits{MaxBitrate: s.spec.Camera.MaxBitrate()},
		TLSConfig: o.Peer.TLSConfig(),
	}
	if err := p.Initialize(); err != nil {
		return err
	}
	err = p.Pull(ctx, sink, obs)
	if err != nil && ctx.Err() == nil {
		err = &peerError{node: o.Node, err: err}
	}
	return err
}

// peerError names the node a relay failed from.
type peerError struct {
	node string
	err  error
}

func (e *peerError) Error() string { return "relay from node " + e.node + ": " + e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }
