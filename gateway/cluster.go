package gateway

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"cordon/camnet"
	"cordon/cluster"
	"cordon/config"
	"cordon/relay/session"
)

// A node of a cluster (issue 13, CONTRACT "Cluster"): with
// cluster.etcd_endpoints set, the gateway joins the cluster through a
// cluster.Node. The node tells, camera by camera, who owns it; the camera
// unit pulls what this node owns from the camera and relays the others
// from their owner over the peer link (clustersource.go), only while
// someone watches here. Peers authenticate on the RTSP door with
// credentials derived from the shared peer key (clusterauth.go). Tokens,
// logouts, lockouts, camera status, the sessions list and the egress
// report are shared (clusterapi.go).

// clusterState is the gateway's side of the cluster; its zero value is a
// single node.
type clusterState struct {
	peerKey *cluster.PeerKey // nil: not clustered
	metrics *cluster.Metrics
	node    atomic.Pointer[cluster.Node]

	mu      sync.Mutex
	owners  map[string]cluster.Owner // what the node last said, by camera
	pending []pendingRevocation      // logouts made before the node started

	viewers  *cluster.Report[map[string]int]
	sessions *cluster.Report[[]session.Info]
	egress   *cluster.Report[[]camnet.CameraEgress]
}

type pendingRevocation struct {
	id  string
	exp time.Time
}

// clustered reports whether this gateway is a node of a cluster.
func (g *Gateway) clustered() bool { return g.cl.peerKey != nil }

// prepareCluster reads the peer key before auth starts: the token signing
// key is derived from it, so a token of any node works on every node.
func (g *Gateway) prepareCluster() error {
	c := &g.Config.Cluster
	if !c.Enabled() {
		return nil
	}
	secret, err := c.PeerKey()
	if err != nil {
		return fmt.Errorf("cluster.peer_key_file: %w", err)
	}
	if g.cl.peerKey, err = cluster.NewPeerKey(secret); err != nil {
		return fmt.Errorf("cluster.peer_key_file: %w", err)
	}
	g.cl.owners = map[string]cluster.Owner{}
	g.cl.metrics = cluster.NewMetrics(g.reg)
	return nil
}

// tokenKey is the session-token signing key every node derives alike (nil
// on a single node: auth keeps its own in state_dir).
func (g *Gateway) tokenKey() ed25519.PrivateKey {
	if !g.clustered() {
		return nil
	}
	return ed25519.NewKeyFromSeed(g.cl.peerKey.Derive(cluster.LabelTokenSigning))
}

// initCluster registers this node once its listeners are bound (their
// ports are what the other nodes dial) and starts the shared reports.
func (g *Gateway) initCluster() error {
	if !g.clustered() {
		return nil
	}
	c := g.Config.Cluster
	tlsCfg, err := c.TLSConfig()
	if err != nil {
		return err
	}
	self := cluster.Member{ID: c.NodeID, Advertise: c.Advertise, HTTPPort: portOf(g.httpLn.Addr()), RTSPPort: portOf(g.rtsp.Addr())}
	if g.tls != nil && len(g.tls.Certificates) > 0 && len(g.tls.Certificates[0].Certificate) > 0 {
		self.RTSPS, self.CertSHA256 = true, cluster.CertFingerprint(g.tls.Certificates[0].Certificate[0])
	}
	n := &cluster.Node{
		Endpoints:   c.Endpoints(),
		TLS:         tlsCfg,
		LeaseTTL:    c.TTL(),
		Self:        self,
		Cameras:     cameraIDs(g.Config),
		Handler:     cluster.HandlerFunc(g.ownerChanged),
		Revocations: g.auth,
		Logger:      g.Logger.With("component", "cluster"),
		Metrics:     g.cl.metrics,
	}
	if err := n.Initialize(); err != nil {
		return err
	}
	if err := g.startClusterReports(n); err != nil {
		n.Close()
		return err
	}
	g.cl.node.Store(n) // after the reports: the API reads them once it sees the node
	g.cl.mu.Lock()
	pending := g.cl.pending
	g.cl.pending = nil
	g.cl.mu.Unlock()
	for _, p := range pending {
		_ = n.Revoke(p.id, p.exp)
	}
	g.wg.Add(1)
	go g.publishCameraStatus(n)
	g.Logger.Info("cluster: joined", "node", self.ID, "advertise", self.Advertise, "rtsp_port", self.RTSPPort, "rtsps", self.RTSPS, "lease_ttl", n.LeaseTTL)
	return nil
}

// closeCluster leaves the cluster; the cameras have stopped pulling, so
// the other nodes may take them over at once.
func (g *Gateway) closeCluster() {
	if n := g.cl.node.Load(); n != nil {
		n.Close() // also stops the reports
	}
}

// clusterChanged: membership settings apply at the next start only.
func clusterChanged(a, b *config.Cluster) bool {
	return !slices.Equal(a.EtcdEndpoints, b.EtcdEndpoints) || a.EtcdTLS != b.EtcdTLS || a.NodeID != b.NodeID ||
		a.Advertise != b.Advertise || a.PeerKeyFile != b.PeerKeyFile || a.LeaseTTL != b.LeaseTTL
}

func portOf(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

func cameraIDs(cfg *config.Config) []string {
	ids := make([]string, 0, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		ids = append(ids, c.ID)
	}
	return ids
}

// owner returns what the cluster last said about a camera's owner.
func (g *Gateway) owner(camera string) cluster.Owner {
	g.cl.mu.Lock()
	defer g.cl.mu.Unlock()
	return g.cl.owners[camera]
}

// ownerChanged is the cluster's Handler (one goroutine, in order): the
// camera unit pulls from the camera when this node owns it, relays it from
// the owner otherwise, and waits while nobody owns it. It returns once a
// camera this node no longer owns has stopped being pulled here (the next
// owner pulls only then). Peers relaying from this node a camera it no
// longer owns are cut off: they re-attach to the new owner (no chains).
func (g *Gateway) ownerChanged(o cluster.Owner) {
	g.cl.mu.Lock()
	prev := g.cl.owners[o.Camera]
	g.cl.owners[o.Camera] = o
	g.cl.mu.Unlock()
	if u := g.cameras.Get(o.Camera); u != nil {
		u.SetLocal(o.Self)
	}
	if prev.Self && !o.Self {
		g.ptzOwnerMoved(o.Camera, o.Node)
	}
	if prev.Self && !o.Self && g.sessions != nil {
		g.sessions.KillWhere(func(s session.Info) bool { return s.Kind == session.KindPeer && s.Camera == o.Camera }, "camera owned elsewhere")
	}
	switch {
	case o.Self:
		g.Logger.Info("cluster: this node owns the camera; pulling it", "camera", o.Camera)
	case o.Node != "":
		g.Logger.Info("cluster: another node owns the camera; relaying it from there on demand", "camera", o.Camera, "owner", o.Node)
	default:
		g.Logger.Info("cluster: no node owns the camera right now", "camera", o.Camera)
	}
}

// clusterRevocations is auth's RevocationPublisher: the node once it runs,
// a short queue before (logouts during start-up).
type clusterRevocations struct{ g *Gateway }

func (r clusterRevocations) Revoke(id string, exp time.Time) error {
	if n := r.g.cl.node.Load(); n != nil {
		return n.Revoke(id, exp)
	}
	r.g.cl.mu.Lock()
	defer r.g.cl.mu.Unlock()
	if n := r.g.cl.node.Load(); n != nil { // started meanwhile
		return n.Revoke(id, exp)
	}
	if len(r.g.cl.pending) < 1000 {
		r.g.cl.pending = append(r.g.cl.pending, pendingRevocation{id, exp})
	}
	return nil
}

// clusterLockouts is auth's SharedLockouts: the node's, once it runs.
type clusterLockouts struct{ g *Gateway }

func (l clusterLockouts) Record(key string, failures int, lockedUntil, expires time.Time) {
	if n := l.g.cl.node.Load(); n != nil {
		n.Lockouts().Record(key, failures, lockedUntil, expires)
	}
}

func (l clusterLockouts) Remote(key string, now time.Time) (int, time.Time) {
	if n := l.g.cl.node.Load(); n != nil {
		return n.Lockouts().Remote(key, now)
	}
	return 0, time.Time{}
}
