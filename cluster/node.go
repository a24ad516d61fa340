package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Node is this process's membership in a cluster: a component with
// exported configuration fields, Initialize and Close.
type Node struct {
	// Endpoints are etcd's client endpoints (host:port). Required.
	Endpoints []string
	// TLS is the client TLS configuration for etcd (nil = plain).
	TLS *tls.Config
	// Self is this node's registration: ID and Advertise are required.
	Self Member
	// LeaseTTL: a node whose lease was not renewed for this long is gone,
	// and its cameras move. Whole seconds; default 5 s.
	LeaseTTL time.Duration
	// Cameras are the configured camera ids (SetCameras changes them).
	Cameras []string
	// Handler is told who owns each camera. Required.
	Handler Handler
	// Revocations receives token revocations made on any node, this one
	// included (nil = not shared).
	Revocations RevocationSink
	// Prefix of every etcd key (default DefaultPrefix).
	Prefix string
	// RebalanceDelay: how long a node must have been a member before
	// cameras owned elsewhere move to it (default 2 x LeaseTTL).
	RebalanceDelay time.Duration
	// HandoverRate bounds the cameras per second this node hands over to a
	// joining node (default 20).
	HandoverRate float64
	// DialTimeout bounds the first registration in Initialize (default 5 s).
	DialTimeout time.Duration
	// LockoutFlush is how often changed lockout counts are written
	// (default LockoutFlush); a new lock is written at once regardless.
	LockoutFlush time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics

	cli      *clientv3.Client
	k        keys
	m        *mirror
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	kickc    chan struct{}
	lim      *rate.Limiter
	lockouts *Lockouts
	revs     revocationQueue
	own      ownState // reconcile goroutine only

	mu         sync.Mutex
	lease      clientv3.LeaseID
	leaseRev   int64 // revision of the registration under lease
	lastRenew  time.Time
	etcdErr    error
	registered bool
	inUse      bool
	// registeredAt is when the current lease was registered; registrations
	// counts registrations (more than one: the lease lapsed once at least).
	registeredAt  time.Time
	registrations int
	health        Health
	cameras       map[string]bool // replaced whole by SetCameras, never changed in place
	status        map[string]CameraStatus
	statusDirty   map[string]bool
	told          map[string]Owner
	closed        bool
}

// ErrNodeIDInUse: another live node registered the same node id.
var ErrNodeIDInUse = errors.New("node id is in use by another live node")

// Initialize connects to etcd and registers this node. If etcd cannot be
// reached it still returns nil: the node runs degraded, owning nothing,
// and keeps trying. It fails on bad settings and when another live node
// holds the same id after waiting out a crashed predecessor's lease.
func (n *Node) Initialize() error {
	if err := n.setDefaults(); err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            n.Endpoints,
		TLS:                  n.TLS,
		DialTimeout:          n.DialTimeout,
		DialKeepAliveTime:    6 * time.Second, // etcd refuses pings more often than every 5 s
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(), // state changes are logged here, with slog
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			// Reconnect within a second of etcd coming back: a new etcd
			// leader extends every lease by one TTL, and the node must
			// renew within it to keep its cameras.
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return fmt.Errorf("cluster: etcd client: %w", err)
	}
	n.cli = cli
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.m = newMirror(cli, n.k, n.Logger)
	n.m.decode = n.decode
	n.m.changed = n.mirrorChanged
	n.lockouts = newLockouts(n)
	if err := n.firstRegister(); err != nil {
		n.cancel()
		_ = cli.Close()
		n.cli = nil
		return err
	}
	n.refreshHealth()
	for _, f := range []func(){n.leaseLoop, n.reconcileLoop, n.revocationLoop, n.lockouts.run, func() { n.m.run(n.ctx) }} {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			f()
		}()
	}
	return nil
}

func (n *Node) setDefaults() error {
	switch {
	case len(n.Endpoints) == 0:
		return errors.New("cluster: no etcd endpoints")
	case !nodeIDOK(n.Self.ID):
		return fmt.Errorf("cluster: node id %q must match [A-Za-z0-9][A-Za-z0-9._-]{0,62}", n.Self.ID)
	case n.Self.Advertise == "":
		return errors.New("cluster: advertise address is empty")
	case n.Handler == nil:
		return errors.New("cluster: no ownership handler")
	}
	if n.LeaseTTL <= 0 {
		n.LeaseTTL = 5 * time.Second
	}
	n.LeaseTTL = max(n.LeaseTTL.Round(time.Second), time.Second)
	if n.Prefix == "" {
		n.Prefix = DefaultPrefix
	}
	if n.RebalanceDelay <= 0 {
		n.RebalanceDelay = 2 * n.LeaseTTL
	}
	if n.HandoverRate <= 0 {
		n.HandoverRate = 20
	}
	if n.LockoutFlush <= 0 {
		n.LockoutFlush = LockoutFlush
	}
	if n.DialTimeout <= 0 {
		n.DialTimeout = 5 * time.Second
	}
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	n.Logger = n.Logger.With("node", n.Self.ID)
	if n.Metrics == nil {
		n.Metrics = NewMetrics(nil)
	}
	if n.Self.Started.IsZero() {
		n.Self.Started = time.Now().UTC().Truncate(time.Millisecond)
	}
	n.k = keys{prefix: n.Prefix}
	n.kickc = make(chan struct{}, 1)
	n.lim = rate.NewLimiter(rate.Limit(n.HandoverRate), max(1, int(n.HandoverRate)))
	n.own = newOwnState()
	n.cameras = map[string]bool{}
	for _, c := range n.Cameras {
		n.cameras[c] = true
	}
	n.status = map[string]CameraStatus{}
	n.statusDirty = map[string]bool{}
	n.told = map[string]Owner{}
	n.revs.init()
	n.health = Health{Degraded: true, Reason: "not registered with etcd yet", Since: time.Now()}
	return nil
}

// Close leaves the cluster: it stops the node's work and revokes its
// lease, which deletes its registration and ownership keys at once, so the
// other nodes take its cameras without waiting for the TTL. Stop pulling
// the owned cameras before calling it. The handler is not called.
func (n *Node) Close() {
	n.mu.Lock()
	if n.closed || n.cli == nil {
		n.mu.Unlock()
		return
	}
	n.closed = true
	lease := n.lease
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	if lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := n.cli.Revoke(ctx, lease); err != nil {
			n.Logger.Warn("cluster: could not release ownership on leave; other nodes take over after the lease TTL", "err", err, "lease_ttl", n.LeaseTTL)
		}
		cancel()
	}
	_ = n.cli.Close()
	n.Logger.Info("cluster: left")
}

// crash stops the node as kill -9 would: no revocation, the lease lapses
// after its TTL. For tests.
func (n *Node) crash() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	_ = n.cli.Close()
}

// Health reports whether the node is degraded and why.
func (n *Node) Health() Health {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.health
}

// SetCameras replaces the configured camera ids (after a reload). Cameras
// that are gone are released; new ones are assigned.
func (n *Node) SetCameras(ids []string) {
	n.mu.Lock()
	n.cameras = make(map[string]bool, len(ids))
	for _, c := range ids {
		n.cameras[c] = true
	}
	n.mu.Unlock()
	n.kick()
}

// SetCameraStatus publishes the owner's status of a camera it owns (other
// nodes read it with Cameras). Writes are coalesced; calls for cameras
// this node does not own are kept until it does.
func (n *Node) SetCameraStatus(camera string, st CameraStatus) {
	n.mu.Lock()
	if len(st.LastError) > maxStringBytes {
		st.LastError = st.LastError[:maxStringBytes]
	}
	if old, ok := n.status[camera]; !ok || old != st {
		n.status[camera] = st
		n.statusDirty[camera] = true
	}
	n.mu.Unlock()
	n.kick()
}

// Owner returns what this node last told the handler about camera.
func (n *Node) Owner(camera string) Owner {
	n.mu.Lock()
	defer n.mu.Unlock()
	if o, ok := n.told[camera]; ok {
		return o
	}
	return Owner{Camera: camera}
}

// Members returns the live nodes, sorted by id.
func (n *Node) Members() []Member {
	var out []Member
	n.m.view(nodesDir, func(d map[string]*mirrorEntry) {
		for _, e := range d {
			out = append(out, e.value.(Member))
		}
	})
	slices.SortFunc(out, func(a, b Member) int { return compareStrings(a.ID, b.ID) })
	return out
}

// CameraInfos returns every camera that has an owner, and every configured
// camera, with its owner ("" = none) and the owner's status of it, sorted.
func (n *Node) CameraInfos() []CameraInfo {
	n.mu.Lock()
	seen := make(map[string]bool, len(n.cameras))
	for c := range n.cameras {
		seen[c] = true
	}
	n.mu.Unlock()
	out := make([]CameraInfo, 0, len(seen))
	n.m.view(ownersDir, func(d map[string]*mirrorEntry) {
		for c, e := range d {
			o := e.value.(ownerValue)
			out = append(out, CameraInfo{Camera: c, Owner: o.Node, Status: o.Status})
			delete(seen, c)
		}
	})
	for c := range seen {
		out = append(out, CameraInfo{Camera: c})
	}
	slices.SortFunc(out, func(a, b CameraInfo) int { return compareStrings(a.Camera, b.Camera) })
	return out
}

// kick asks the reconcile loop for a pass.
func (n *Node) kick() {
	select {
	case n.kickc <- struct{}{}:
	default:
	}
}

// decode turns a live/ value into its Go form; nil = malformed.
func (n *Node) decode(dir, name string, b []byte) any {
	switch {
	case dir == nodesDir:
		if m, err := decodeMember(b); err == nil && m.ID == name {
			return m
		}
	case dir == ownersDir:
		if o, err := decodeOwner(b); err == nil {
			return o
		}
	case dir == revokedDir:
		if t, err := decodeRevocation(name, b); err == nil {
			return t
		}
	case dir == lockoutDir:
		if d, err := decodeLockoutDoc(b); err == nil {
			return d
		}
	case len(dir) > len(liveReports) && dir[:len(liveReports)] == liveReports:
		if len(b) <= maxReportBytes {
			return append([]byte(nil), b...)
		}
	}
	return nil
}

// mirrorChanged reacts to changes in live/ (on the watch goroutine).
func (n *Node) mirrorChanged(batch []mirrorChange) {
	reconcile := false
	for _, c := range batch {
		switch c.dir {
		case nodesDir, ownersDir:
			reconcile = true
		case revokedDir:
			if !c.deleted {
				n.revocationArrived(c.name, c.value.(time.Time))
			}
		case lockoutDir:
			n.lockouts.invalidate()
		}
	}
	if reconcile {
		n.kick()
	}
}
