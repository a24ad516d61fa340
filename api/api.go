// Package api serves cordon's HTTP API (CONTRACT "HTTP"): health, the
// cameras a caller may view, and the administrators' session list, session
// kill and egress report. Sign-in and sign-out are auth's handlers, WHEP is
// relay/whep's; the gateway mounts all of them on one mux. It has no other
// home: the gateway only wires, and each door owns its own protocol.
package api

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/camera"
	"cordon/config"
	"cordon/internal/httpx"
	"cordon/relay/session"
)

// Authenticator is what the API needs from auth.
type Authenticator interface {
	// AuthenticateRequest checks the request's Bearer token.
	AuthenticateRequest(r *http.Request) (*auth.Principal, error)
	// Current re-reads a principal: its rights and admin flag now, or
	// why it may no longer act.
	Current(p *auth.Principal) (*auth.Principal, error)
	// RecordDenied audits a refusal a client can repeat at will (per
	// principal and interval).
	RecordDenied(e audit.Event) error
	// RemoteAddr is the client's address (proxy-aware).
	RemoteAddr(r *http.Request) string
}

// Auditor records audit events.
type Auditor interface {
	Record(audit.Event)
}

// Server is the HTTP API. Set the fields, then Register it on a mux.
type Server struct {
	Auth     Authenticator
	Cameras  *camera.Registry
	Sessions *session.Registry
	// Egress serves the egress report (nil: the sinkhole is off, the report
	// is an empty list).
	Egress   http.Handler
	Audit    Auditor
	Redactor *config.Redactor
	// Healthy returns why new sessions are refused, or nil.
	Healthy func() error
	// Cluster, when this node is part of a cluster, makes the camera
	// list, sessions, egress report and health cluster-wide (cluster.go).
	Cluster Cluster
	// Degraded, when set, names the parts working below par without
	// stopping the gateway (e.g. "ldap": an unreachable directory): part ->
	// why. /healthz stays 200 and says "degraded" with them.
	Degraded func() map[string]string
}

// Register mounts the API's routes.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /api/v1/cameras", s.authed(false, s.listCameras))
	mux.Handle("GET /api/v1/admin/sessions", s.authed(true, s.listSessions))
	mux.Handle("DELETE /api/v1/admin/sessions/{id}", s.authed(true, s.killSession))
	mux.Handle("GET /api/v1/egress", s.authed(true, s.egress))
	s.registerCluster(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "no such API endpoint")
	})
}

// authed requires a valid Bearer token (and admin rights when admin).
func (s *Server) authed(admin bool, h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Auth.AuthenticateRequest(r)
		if err == nil {
			p, err = s.Auth.Current(p) // rights and admin as they are now
		}
		if err != nil {
			auth.WriteError(w, err) // 401 + WWW-Authenticate, 429 + Retry-After, 503
			return
		}
		if admin && !p.Admin {
			_ = s.Auth.RecordDenied(audit.Event{Event: audit.Denied, Actor: p.Name, Remote: s.Auth.RemoteAddr(r), Protocol: "http", Detail: "admin endpoint " + clipPath(r.URL.Path)})
			httpx.WriteError(w, http.StatusForbidden, "this needs an administrator")
			return
		}
		h(w, r, p)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := s.Healthy(); err != nil {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{
			"status": "failing",
			"error":  "audit log cannot be written, new viewing sessions are refused: " + err.Error(),
		})
		return
	}
	// degraded is still serving: 200, for load balancers
	d := map[string]string{}
	if s.Degraded != nil {
		maps.Copy(d, s.Degraded())
	}
	if s.Cluster != nil {
		if degraded, why := s.Cluster.Health(); degraded {
			d["cluster"] = why
		}
	}
	if len(d) > 0 {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "degraded", "reason": degradedReason(d), "degraded": d})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// cameraJSON is one entry of GET /api/v1/cameras. The admin-only fields
// are omitted for everyone else; the URL never carries credentials.
type cameraJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Online     bool   `json:"online"`
	VideoCodec string `json:"video_codec"`
	AudioCodec string `json:"audio_codec"`
	Viewers    int    `json:"viewers"`
	// Rights are the caller's rights on this camera (view, ptz,
	// playback, export); a camera is listed only with view.
	Rights []auth.Right `json:"rights"`
	// OnDemand cameras are pulled only while watched: idle, they read
	// offline, and a WHEP or RTSP request starts them.
	OnDemand bool `json:"on_demand"`
	// SubStream: the camera has a sub stream (POST /whep/{id}?stream=sub,
	// rtsp://.../{id}/sub); BFrames: its main stream has B-frames (RTSP
	// only; WHEP answers 422); PTZ: it can be steered (cameras[].onvif).
	SubStream bool `json:"sub_stream"`
	BFrames   bool `json:"b_frames"`
	PTZ       bool `json:"ptz"`

	URL        string `json:"url,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	Reconnects uint64 `json:"reconnects,omitempty"`
	Transport  string `json:"transport,omitempty"`
	// Owner is the node that pulls the camera, in a cluster ("-": none now).
	Owner string `json:"owner,omitempty"`
}

// listCameras lists the cameras the caller may view now, each with the
// caller's rights on it (p is already the current principal: authed).
func (s *Server) listCameras(w http.ResponseWriter, _ *http.Request, p *auth.Principal) {
	out := []cameraJSON{}
	var cluster map[string]ClusterCamera
	if s.Cluster != nil {
		cluster = s.Cluster.Cameras()
	}
	for _, u := range s.Cameras.Units() {
		c := u.Current()
		rights := p.Rights(c.ID)
		if !slices.Contains(rights, auth.RightView) {
			continue
		}
		st := u.State()
		cj := cameraJSON{ID: c.ID, Name: c.Name, Online: st.Online, VideoCodec: st.VideoCodec, AudioCodec: st.AudioCodec,
			Viewers: st.Viewers, OnDemand: c.OnDemand, Rights: rights}
		s.streamFacts(&cj, u, p)
		if cj.Name == "" {
			cj.Name = c.ID
		}
		if p.Admin {
			cj.URL = s.Redactor.Redact(c.SafeURL())
			cj.LastError = s.Redactor.Redact(st.LastError)
			cj.Reconnects = st.Reconnects
			cj.Transport = st.Transport
		}
		if cluster != nil {
			clusterCamera(&cj, cluster, p.Admin)
		}
		out = append(out, cj)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// sessionJSON is one live viewing session (admin API).
type sessionJSON struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Kind     string    `json:"kind"`
	Camera   string    `json:"camera"`
	Stream   string    `json:"stream,omitempty"` // "sub" for a camera's sub stream
	Remote   string    `json:"remote"`
	Protocol string    `json:"protocol"`
	Started  time.Time `json:"started"`
	Bytes    uint64    `json:"bytes"`
	Node     string    `json:"node,omitempty"` // in a cluster: the node that holds it
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, _ *auth.Principal) {
	if s.Cluster != nil {
		s.clusterSessions(w, r)
		return
	}
	out := []sessionJSON{}
	for _, in := range s.Sessions.List() {
		out = append(out, sessionJSON{in.ID, in.User, in.Kind, in.Camera, in.Stream, in.Remote, in.Protocol, in.Started.UTC(), in.Bytes, ""})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// killSession ends a live session. The audit line is the administrator's
// act (session_killed, actor the administrator) naming the session's
// principal, taken from the one snapshot the kill returned.
func (s *Server) killSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id := r.PathValue("id")
	in, ok := s.Sessions.Kill(id, "killed")
	if !ok {
		if s.clusterKill(w, r, id) { // held by another node of the cluster
			return
		}
		httpx.WriteError(w, http.StatusNotFound, "no such session")
		return
	}
	s.Audit.Record(audit.Event{Event: audit.SessionKilled, Actor: p.Name, Camera: in.Camera, Remote: s.Auth.RemoteAddr(r), Protocol: in.Protocol,
		Detail: "ended session " + in.ID + " of " + in.Kind + " " + in.User + " from " + in.Remote})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) egress(w http.ResponseWriter, r *http.Request, _ *auth.Principal) {
	if s.Cluster != nil {
		s.clusterEgress(w, r)
		return
	}
	if s.Egress == nil {
		httpx.WriteJSON(w, http.StatusOK, []struct{}{})
		return
	}
	s.Egress.ServeHTTP(w, r)
}

// clipPath bounds a request path quoted in an audit line.
func clipPath(p string) string {
	if len(p) > 128 {
		return p[:128] + "…"
	}
	return p
}
