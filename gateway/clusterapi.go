package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"cordon/api"
	"cordon/camnet"
	"cordon/cluster"
	"cordon/relay/session"
)

// What the nodes of a cluster share besides ownership: each camera's
// status, written by its owner into its ownership key; viewer counts
// (a live report every node mirrors, for the camera list); the sessions
// list and the egress report (reports read on demand by the admin API).

// Report intervals: viewer counts are read on every camera list; the
// sessions list and egress report only when an administrator asks.
const (
	statusEvery   = time.Second
	viewersEvery  = time.Second
	sessionsEvery = 2 * time.Second
	egressEvery   = 5 * time.Second
)

var errNotJoined = errors.New("this node has not joined the cluster yet")

func (g *Gateway) startClusterReports(n *cluster.Node) error {
	cl := &g.cl
	cl.viewers = &cluster.Report[map[string]int]{Node: n, Kind: "viewers", Live: true, Every: viewersEvery, Source: g.localViewers}
	cl.sessions = &cluster.Report[[]session.Info]{Node: n, Kind: "sessions", Every: sessionsEvery, Source: g.sharedSessions,
		// a session starting or ending is news; its byte counter can wait
		Significant: func(old, cur []session.Info) bool { return !sameSessionIDs(old, cur) }}
	if err := cl.viewers.Initialize(); err != nil {
		return err
	}
	if err := cl.sessions.Initialize(); err != nil {
		return err
	}
	if g.sinkhole != nil {
		cl.egress = &cluster.Report[[]camnet.CameraEgress]{Node: n, Kind: "egress", Every: egressEvery, Source: g.sharedEgress}
		if err := cl.egress.Initialize(); err != nil {
			return err
		}
	}
	return nil
}

// sharedSessions is this node's sessions list as the others may see it:
// without the session tokens' ids.
func (g *Gateway) sharedSessions() []session.Info {
	list := g.sessions.List()
	for i := range list {
		list[i].TokenID = ""
	}
	return list
}

// sharedEgress is this node's egress report without the cameras it saw
// nothing from (every node lists those itself): a node's document stays
// small however many cameras there are.
func (g *Gateway) sharedEgress() []camnet.CameraEgress {
	var out []camnet.CameraEgress
	for _, e := range g.sinkhole.Report() {
		if e.Queries > 0 {
			out = append(out, e)
		}
	}
	return out
}

// localViewers counts each camera's viewers on this node (relays of
// peers are consumers, not viewers).
func (g *Gateway) localViewers() map[string]int {
	out := map[string]int{}
	for _, u := range g.cameras.Units() {
		st := u.State()
		v := st.Viewers
		for _, sub := range st.Streams { // a camera's viewers, whichever stream they watch
			v += sub.Viewers
		}
		if v > 0 {
			out[u.ID()] = v
		}
	}
	return out
}

func sameSessionIDs(a, b []session.Info) bool {
	if len(a) != len(b) {
		return false
	}
	ids := make(map[string]bool, len(a))
	for _, s := range a {
		ids[s.ID] = true
	}
	for _, s := range b {
		if !ids[s.ID] {
			return false
		}
	}
	return true
}

// publishCameraStatus writes the status of the cameras this node pulls
// into their ownership keys (the node writes only what changed).
func (g *Gateway) publishCameraStatus(n *cluster.Node) {
	defer g.wg.Done()
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		for _, u := range g.cameras.Units() {
			if !u.Local() {
				continue
			}
			st := u.State()
			cs := cluster.CameraStatus{Online: st.Online, VideoCodec: st.VideoCodec, AudioCodec: st.AudioCodec,
				LastError: g.Redactor.Redact(st.LastError), Reconnects: int(st.Reconnects)}
			if m := u.Stream(""); m != nil {
				cs.BFrames = m.Info().BFrames
			}
			n.SetCameraStatus(u.ID(), cs)
		}
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clusterAPI is the API's view of the cluster (api.Cluster).
type clusterAPI struct{ g *Gateway }

func (c clusterAPI) node() *cluster.Node { return c.g.cl.node.Load() }

func (c clusterAPI) Cameras() map[string]api.ClusterCamera {
	n := c.node()
	if n == nil {
		return map[string]api.ClusterCamera{}
	}
	viewers := map[string]int{}
	if docs, err := c.g.cl.viewers.Read(context.Background()); err == nil { // live: from memory
		for _, d := range docs {
			for cam, v := range d.Doc {
				viewers[cam] += v
			}
		}
	}
	out := map[string]api.ClusterCamera{}
	for _, in := range n.CameraInfos() {
		st := in.Status
		cc := api.ClusterCamera{Owner: in.Owner, Viewers: viewers[in.Camera]}
		if in.Owner != "" {
			cc.Online, cc.VideoCodec, cc.AudioCodec = st.Online, st.VideoCodec, st.AudioCodec
			cc.LastError, cc.Reconnects = c.g.Redactor.Redact(st.LastError), uint64(max(st.Reconnects, 0))
			cc.BFrames = st.BFrames
		} else {
			cc.LastError = "no node owns this camera right now"
		}
		out[in.Camera] = cc
	}
	return out
}

func (c clusterAPI) Sessions(ctx context.Context, local []session.Info) ([]api.NodeSession, error) {
	self := c.g.Config.Cluster.NodeID
	out := make([]api.NodeSession, 0, len(local))
	for _, in := range local {
		out = append(out, api.NodeSession{Node: self, Info: in})
	}
	if c.node() == nil {
		return out, errNotJoined
	}
	docs, err := c.g.cl.sessions.Read(ctx)
	for _, d := range docs {
		if d.Node == self {
			continue
		}
		for _, in := range d.Doc {
			out = append(out, api.NodeSession{Node: d.Node, Info: in})
		}
	}
	slices.SortFunc(out, func(a, b api.NodeSession) int { return a.Started.Compare(b.Started) })
	return out, err
}

func (c clusterAPI) Egress(ctx context.Context) (any, error) {
	if c.g.sinkhole == nil {
		return []camnet.CameraEgress{}, nil
	}
	reports := [][]camnet.CameraEgress{c.g.sinkhole.Report()}
	if c.node() == nil || c.g.cl.egress == nil {
		return camnet.MergeEgress(reports...), errNotJoined
	}
	docs, err := c.g.cl.egress.Read(ctx)
	for _, d := range docs {
		if d.Node != c.g.Config.Cluster.NodeID {
			reports = append(reports, d.Doc)
		}
	}
	return camnet.MergeEgress(reports...), err
}

func (c clusterAPI) Status(ctx context.Context) any {
	n := c.node()
	if n == nil {
		return cluster.Status{Node: c.g.Config.Cluster.NodeID, Degraded: true, Reason: errNotJoined.Error(), Nodes: []cluster.NodeStatus{}, Cameras: []cluster.CameraOwner{}}
	}
	return n.Status(ctx)
}

func (c clusterAPI) Health() (bool, string) {
	n := c.node()
	if n == nil {
		return true, errNotJoined.Error()
	}
	h := n.Health()
	return h.Degraded, h.Reason
}

// KillElsewhere asks the node holding session id to end it, over its HTTP
// door with the administrator's own credential (tokens are valid on every
// node; that node checks the admin right and audits the kill), its
// certificate pinned like the peer link's.
func (c clusterAPI) KillElsewhere(ctx context.Context, id, authorization string) (int, string, bool) {
	n := c.node()
	if n == nil {
		return 0, "", false
	}
	self, holder := c.g.Config.Cluster.NodeID, ""
	docs, _ := c.g.cl.sessions.Read(ctx)
	for _, d := range docs {
		for _, in := range d.Doc {
			if in.ID == id && d.Node != self {
				holder = d.Node
			}
		}
	}
	if holder == "" {
		return 0, "", false
	}
	var m cluster.Member
	for _, x := range n.Members() {
		if x.ID == holder {
			m = x
		}
	}
	resp, err := c.g.peerRequest(ctx, m, http.MethodDelete, "/api/v1/admin/sessions/"+id, nil, http.Header{"Authorization": {authorization}})
	if errors.Is(err, errNoPeerAddress) {
		return 0, "node " + holder + " is not registered", true
	}
	if err != nil {
		return 0, "node " + holder + " did not answer", true
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), true
}
