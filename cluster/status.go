package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Status is the cluster as one node (GET /api/v1/admin/cluster) or the
// command line (`cordon cluster status`) sees it.
type Status struct {
	// Node is the node that answered ("" from the command line).
	Node string `json:"node,omitempty"`
	// Degraded: the answering node cannot reach etcd; the lists are its
	// last view.
	Degraded bool   `json:"degraded"`
	Reason   string `json:"reason,omitempty"`
	// Nodes: every node that ever registered; Alive = registered now.
	Nodes []NodeStatus `json:"nodes"`
	// Cameras: the configured cameras and any other owned camera.
	Cameras []CameraOwner `json:"cameras"`
}

// NodeStatus is one node's line.
type NodeStatus struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Alive   bool      `json:"alive"`
	Cameras int       `json:"cameras"` // cameras owned
	Started time.Time `json:"started"`
}

// CameraOwner is one camera's line.
type CameraOwner struct {
	Camera     string `json:"camera"`
	Owner      string `json:"owner"` // "" = none
	Online     bool   `json:"online"`
	Configured bool   `json:"configured"`
}

// Status returns the cluster from this node's copy of etcd, and the known
// (including dead) nodes read from etcd when it answers within a second.
func (n *Node) Status(ctx context.Context) Status {
	h := n.Health()
	st := Status{Node: n.Self.ID, Degraded: h.Degraded, Reason: h.Reason}
	known := map[string]Member{}
	if !h.Degraded {
		kctx, cancel := context.WithTimeout(ctx, time.Second)
		if resp, err := n.cli.Get(kctx, n.k.knownAll(), clientv3.WithPrefix()); err == nil {
			for _, kv := range resp.Kvs {
				if m, err := decodeMember(kv.Value); err == nil {
					known[m.ID] = m
				}
			}
		}
		cancel()
	}
	live := map[string]Member{}
	for _, m := range n.Members() {
		live[m.ID] = m
	}
	n.mu.Lock()
	configured := make([]string, 0, len(n.cameras))
	for c := range n.cameras {
		configured = append(configured, c)
	}
	n.mu.Unlock()
	owners := map[string]ownerValue{}
	n.m.view(ownersDir, func(d map[string]*mirrorEntry) {
		for c, e := range d {
			owners[c] = e.value.(ownerValue)
		}
	})
	return assemble(st, known, live, owners, configured)
}

// ReadStatus reads the cluster straight from etcd (for the command line);
// configured are the camera ids of the configuration at hand.
func ReadStatus(ctx context.Context, cli *clientv3.Client, prefix string, configured []string) (Status, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	k := keys{prefix: prefix}
	// One transaction: the three directories at one revision (and not the
	// reports, which may be large).
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(k.knownAll(), clientv3.WithPrefix()),
		clientv3.OpGet(prefix+nodesDir, clientv3.WithPrefix()),
		clientv3.OpGet(prefix+ownersDir, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return Status{}, err
	}
	known, live := map[string]Member{}, map[string]Member{}
	owners := map[string]ownerValue{}
	var kvs []*mvccpb.KeyValue
	for _, r := range resp.Responses {
		kvs = append(kvs, r.GetResponseRange().Kvs...)
	}
	for _, kv := range kvs {
		dir, name, ok := k.split(string(kv.Key))
		if !ok {
			continue
		}
		switch dir {
		case knownDir:
			if m, err := decodeMember(kv.Value); err == nil && m.ID == name {
				known[name] = m
			}
		case nodesDir:
			if m, err := decodeMember(kv.Value); err == nil && m.ID == name {
				live[name] = m
			}
		case ownersDir:
			if o, err := decodeOwner(kv.Value); err == nil {
				owners[name] = o
			}
		}
	}
	return assemble(Status{}, known, live, owners, configured), nil
}

func assemble(st Status, known, live map[string]Member, owners map[string]ownerValue, configured []string) Status {
	for id, m := range live {
		known[id] = m
	}
	count := map[string]int{}
	for _, o := range owners {
		count[o.Node]++
	}
	st.Nodes = []NodeStatus{}
	for id, m := range known {
		_, alive := live[id]
		st.Nodes = append(st.Nodes, NodeStatus{ID: id, Address: m.Advertise, Alive: alive, Cameras: count[id], Started: m.Started})
	}
	slices.SortFunc(st.Nodes, func(a, b NodeStatus) int { return compareStrings(a.ID, b.ID) })
	isConf := map[string]bool{}
	for _, c := range configured {
		isConf[c] = true
	}
	st.Cameras = []CameraOwner{}
	for c := range isConf {
		o := owners[c]
		st.Cameras = append(st.Cameras, CameraOwner{Camera: c, Owner: o.Node, Online: o.Status.Online, Configured: true})
	}
	for c, o := range owners {
		if !isConf[c] {
			st.Cameras = append(st.Cameras, CameraOwner{Camera: c, Owner: o.Node, Online: o.Status.Online})
		}
	}
	slices.SortFunc(st.Cameras, func(a, b CameraOwner) int { return compareStrings(a.Camera, b.Camera) })
	return st
}

// ErrNodeAlive: Forget refuses a node that is registered now.
var ErrNodeAlive = errors.New("the node is alive; stop it first")

// ErrUnknownNode: Forget found no record of the node.
var ErrUnknownNode = errors.New("no such node")

// Forget removes a decommissioned node's record (so status stops listing
// it as not alive). A live node is refused, in the same transaction that
// deletes, so a node that registers meanwhile is never forgotten.
func Forget(ctx context.Context, cli *clientv3.Client, prefix, id string) error {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !nodeIDOK(id) {
		return fmt.Errorf("%q is not a node id", id)
	}
	k := keys{prefix: prefix}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k.node(id)), "=", 0), clientv3.Compare(clientv3.CreateRevision(k.known(id)), ">", 0)).
		Then(clientv3.OpDelete(k.known(id))).
		Else(clientv3.OpGet(k.node(id))).
		Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
			return ErrNodeAlive
		}
		return ErrUnknownNode
	}
	return nil
}

// WriteTable prints a Status for people: nodes, then cameras.
func WriteTable(w io.Writer, st Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if st.Degraded {
		fmt.Fprintf(tw, "DEGRADED: %s\n\n", st.Reason)
	}
	fmt.Fprintln(tw, "NODE\tADDRESS\tALIVE\tCAMERAS\tSTARTED")
	for _, n := range st.Nodes {
		started := "-"
		if !n.Started.IsZero() {
			started = n.Started.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", n.ID, n.Address, yesNo(n.Alive), n.Cameras, started)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CAMERA\tOWNER\tONLINE\tNOTE")
	for _, c := range st.Cameras {
		owner, note := c.Owner, ""
		if owner == "" {
			owner, note = "-", "no live owner"
		}
		if !c.Configured {
			note = "not in this configuration"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Camera, owner, yesNo(c.Online), note)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Unowned counts the configured cameras without a live owner.
func (st Status) Unowned() int {
	n := 0
	for _, c := range st.Cameras {
		if c.Configured && c.Owner == "" {
			n++
		}
	}
	return n
}

// Dial opens an etcd client for one-shot use (the command line): plain or
// TLS, failing fast when etcd does not answer within timeout.
func Dial(endpoints []string, tlsCfg *tls.Config, timeout time.Duration) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: timeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cli, nil
}
