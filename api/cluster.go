package api

import (
	"context"
	"net/http"
	"time"

	"cordon/auth"
	"cordon/internal/httpx"
	"cordon/relay/session"
)

// The API of a node in a cluster (issue 13): camera status as each
// camera's owner published it, with viewers counted on every node; the
// sessions list and egress report of every node; GET /api/v1/admin/cluster;
// /healthz saying degraded. The gateway implements Cluster on its
// cluster.Node; the API knows nothing of etcd.

// Cluster is what the API needs from the cluster (nil: a single node).
type Cluster interface {
	// Cameras returns each camera's cluster-wide view, by camera id.
	Cameras() map[string]ClusterCamera
	// Sessions returns every node's live sessions: this node's are local
	// (fresh), the others' as their nodes last published them. An error
	// means the other nodes could not be read (etcd unreachable).
	Sessions(ctx context.Context, local []session.Info) ([]NodeSession, error)
	// Egress returns the egress report merged over every node, per camera.
	Egress(ctx context.Context) (any, error)
	// Status is GET /api/v1/admin/cluster: nodes (id, address, alive,
	// cameras owned) and each camera's owner.
	Status(ctx context.Context) any
	// Health says whether this node is degraded (etcd unreachable) and why.
	Health() (degraded bool, reason string)
	// KillElsewhere ends a live session another node holds, asking that
	// node with the administrator's own Authorization header; found is
	// false when no node lists the session.
	KillElsewhere(ctx context.Context, id, authorization string) (status int, body string, found bool)
}

// ClusterCamera is one camera as the cluster sees it.
type ClusterCamera struct {
	Owner      string // node id, "" = no live owner now
	Online     bool
	VideoCodec string
	AudioCodec string
	LastError  string // redacted by the owner
	Reconnects uint64
	Viewers    int  // on every node, main and sub streams
	BFrames    bool // the owner's main stream reorders frames
}

// NodeSession is one live session and the node that holds it.
type NodeSession struct {
	Node string
	session.Info
}

// clusterReadTimeout bounds reading the other nodes' documents.
const clusterReadTimeout = 2 * time.Second

func (s *Server) registerCluster(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/admin/cluster", s.authed(true, s.clusterStatus))
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request, _ *auth.Principal) {
	if s.Cluster == nil {
		httpx.WriteError(w, http.StatusNotFound, "this gateway is not part of a cluster (cluster.etcd_endpoints is empty)")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s.Cluster.Status(r.Context()))
}

// clusterCamera replaces a camera's local state with the cluster's: the
// owner's status and the viewers of every node. A camera nobody owns right
// now reads offline.
func clusterCamera(cj *cameraJSON, cams map[string]ClusterCamera, admin bool) {
	c, ok := cams[cj.ID]
	if !ok {
		c = ClusterCamera{LastError: "no node owns this camera right now"}
	}
	cj.Online, cj.VideoCodec, cj.AudioCodec, cj.Viewers = c.Online, c.VideoCodec, c.AudioCodec, c.Viewers
	cj.BFrames = cj.BFrames || c.BFrames // a relay not running here has not seen any frame
	if admin {
		cj.Owner, cj.LastError, cj.Reconnects = c.Owner, c.LastError, c.Reconnects
		cj.Transport = "" // the owner's link to the camera is not this node's
		if c.Owner == "" {
			cj.Owner = "-"
		}
	}
}

// clusterSessions answers the admin sessions list of every node.
func (s *Server) clusterSessions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterReadTimeout)
	defer cancel()
	all, err := s.Cluster.Sessions(ctx, s.Sessions.List())
	if err != nil {
		// this node's own list is still worth showing; say what is missing
		w.Header().Set("Warning", `199 cordon "the other nodes' sessions could not be read: etcd is unreachable"`)
	}
	out := make([]sessionJSON, 0, len(all))
	for _, ns := range all {
		in := ns.Info
		out = append(out, sessionJSON{in.ID, in.User, in.Kind, in.Camera, in.Stream, in.Remote, in.Protocol, in.Started.UTC(), in.Bytes, ns.Node})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// clusterEgress answers the egress report merged over every node.
func (s *Server) clusterEgress(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterReadTimeout)
	defer cancel()
	rep, err := s.Cluster.Egress(ctx)
	if err != nil {
		w.Header().Set("Warning", `199 cordon "the other nodes' reports could not be read: etcd is unreachable"`)
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
}

// clusterKill forwards DELETE /api/v1/admin/sessions/{id} to the node that
// holds the session (it audits the kill); false when no node does.
func (s *Server) clusterKill(w http.ResponseWriter, r *http.Request, id string) bool {
	if s.Cluster == nil || !session.ValidID(id) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterReadTimeout+5*time.Second)
	defer cancel()
	status, body, found := s.Cluster.KillElsewhere(ctx, id, r.Header.Get("Authorization"))
	if !found {
		return false
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return true
	}
	if status == 0 {
		httpx.WriteError(w, http.StatusBadGateway, "the node holding this session did not answer: "+body)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	return true
}
