package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"cordon/cluster"
	"cordon/internal/httpx"
)

// PTZ in a cluster: a camera has one PTZ lock, held by the node that owns
// (pulls) the camera; no other node talks to the camera. A PTZ request
// that reaches another node passes the rights check there (failures are
// counted against the real client) and is then carried to the owner over
// its HTTP door with the caller's own Authorization header (tokens and
// API keys are valid on every node), the owner's certificate pinned like
// the peer link's; the owner decides the lock and audits. A request that
// was already forwarded is never forwarded again: a node that does not
// own the camera answers it 503 (ownership is moving), so two nodes that
// briefly disagree on the owner cannot bounce it between them.

// forwardedHeader marks a request one node carried to another.
const forwardedHeader = "Cordon-Forwarded-By"

// ptzForwardTimeout bounds one forwarded PTZ request (the owner's own
// camera timeouts are shorter).
const ptzForwardTimeout = 10 * time.Second

// maxForwardedBody bounds what a node relays back (a PTZ status with its
// presets is a few KiB).
const maxForwardedBody = 256 << 10

// ptzHere: this node may talk to the camera's PTZ (a single node, or the
// camera's owner). The ONVIF face offers PTZ only for these: a VMS
// steering over ONVIF must be pointed at the owner (GET
// /api/v1/admin/cluster), or use the HTTP PTZ API, which any node carries
// to the owner (the face authenticates with WS-Security, which cannot be
// handed on).
func (g *Gateway) ptzHere(camera string) bool { return !g.clustered() || g.owner(camera).Self }

// forwardPTZ is api.PTZ's Forward: false when this node owns the camera
// (or is no cluster node); otherwise it answers w from the owner.
func (g *Gateway) forwardPTZ(w http.ResponseWriter, r *http.Request, camera string) bool {
	if !g.clustered() {
		return false
	}
	o := g.owner(camera)
	switch {
	case o.Self:
		return false
	case o.Node == "" || r.Header.Get(forwardedHeader) != "":
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, http.StatusServiceUnavailable, "the camera is changing owner in the cluster; retry shortly")
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), ptzForwardTimeout)
	defer cancel()
	hdr := http.Header{}
	for _, k := range []string{"Authorization", "Content-Type"} {
		if v := r.Header.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	hdr.Set(forwardedHeader, g.Config.Cluster.NodeID)
	resp, err := g.peerRequest(ctx, o.Peer, r.Method, "/api/v1/cameras/"+camera+"/ptz", http.MaxBytesReader(w, r.Body, 64<<10), hdr)
	if err != nil {
		g.Logger.Warn("cluster: forwarding a PTZ request to the camera's owner failed", "camera", camera, "owner", o.Node, "err", err)
		httpx.WriteError(w, http.StatusBadGateway, "the node that owns this camera did not answer")
		return true
	}
	defer func() { _ = resp.Body.Close() }()
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxForwardedBody))
	return true
}

// peerRequest sends one HTTP request to another node's HTTP door (HTTPS
// with its registered certificate pinned when it serves TLS), never
// following a redirect.
func (g *Gateway) peerRequest(ctx context.Context, m cluster.Member, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	if m.Advertise == "" || m.HTTPPort == 0 {
		return nil, errNoPeerAddress
	}
	scheme := "http"
	if m.RTSPS { // one certificate serves a node's HTTP and RTSP
		scheme = "https"
	}
	u := scheme + "://" + net.JoinHostPort(m.Advertise, strconv.Itoa(m.HTTPPort)) + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	cl := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: m.TLSConfig(), DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return cl.Do(req)
}

// ptzOwnerMoved ends the PTZ control held on this node when the camera
// moves to another node (a rebalance; the next owner's lock starts free).
// In the background: the camera's Stop must not delay the handover.
func (g *Gateway) ptzOwnerMoved(camera, next string) {
	a := g.cameraPTZ(camera) // not g.PTZ: it answers only for what this node owns
	if a == nil {
		return
	}
	ctl := a.control()
	if ctl == nil {
		return
	}
	h, _ := ctl.Holder()
	if h.Name == "" {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
		defer cancel()
		_, _ = ctl.EndPrincipal(ctx, h.Name, "the camera is now owned by node "+next)
	}()
}
