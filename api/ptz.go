package api

import (
	"context"
	"mime"
	"net/http"
	"strconv"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/internal/httpx"
	"cordon/ptz"
)

// PTZAuth is what the PTZ routes need from auth (*auth.Service).
type PTZAuth interface {
	AuthenticateRequest(r *http.Request) (*auth.Principal, error)
	RemoteAddr(r *http.Request) string
	// Authorize decides the ptz right (403 before anything else).
	Authorize(ctx context.Context, a auth.Access) error
	// Current re-reads the principal for its ptz_priority now.
	Current(p *auth.Principal) (*auth.Principal, error)
}

// PTZ serves the PTZ routes of CONTRACT "HTTP":
//
//	GET    /api/v1/cameras/{id}/ptz  (ptz right) capabilities, presets, position, holder and until
//	POST   /api/v1/cameras/{id}/ptz  (ptz right) {"move":{...},"timeout_ms"} | {"stop":true} | {"preset":"ID"} | {"home":true}
//	DELETE /api/v1/cameras/{id}/ptz  (admin)     release whoever holds control (audited)
//
// Rights first (403, via Auth.Authorize), then validation (400), then the
// lock (409 {"error","holder","until"}), the per-principal rate limit
// (429) and the camera (502); 204 on success. Audit: ptz_start, ptz_end,
// ptz_takeover by the control (503 when they cannot be written), and
// session_killed for an administrator's release.
type PTZ struct {
	Auth PTZAuth
	// Control returns a camera's PTZ control, nil when the camera does not
	// exist or has no onvif.
	Control func(camera string) *ptz.Control
	// Granted is told the principal of every command that was carried out
	// (the owner ends its control when its session ends).
	Granted func(camera string, p *auth.Principal)
	Audit   Auditor
	// Forward, when set (a cluster), carries a request that passed the
	// rights check to the node that owns the camera and answers it from
	// there; it returns false when this node owns the camera (one lock per
	// camera, held where the camera is pulled).
	Forward func(w http.ResponseWriter, r *http.Request, camera string) bool
}

// Register mounts the PTZ routes.
func (s *PTZ) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/cameras/{id}/ptz", s.status)
	mux.HandleFunc("POST /api/v1/cameras/{id}/ptz", s.command)
	mux.HandleFunc("DELETE /api/v1/cameras/{id}/ptz", s.release)
}

// authorize authenticates, checks the ptz right and finds the control;
// it answers the refusal itself.
func (s *PTZ) authorize(w http.ResponseWriter, r *http.Request) (*auth.Principal, string, *ptz.Control, bool) {
	p, err := s.Auth.AuthenticateRequest(r)
	if err != nil {
		auth.WriteError(w, err)
		return nil, "", nil, false
	}
	id := r.PathValue("id")
	if err := s.Auth.Authorize(r.Context(), auth.Access{Principal: p, Right: auth.RightPTZ, Camera: id,
		Remote: s.Auth.RemoteAddr(r), Protocol: "http"}); err != nil {
		auth.WriteError(w, err)
		return nil, "", nil, false
	}
	if s.Forward != nil && s.Forward(w, r, id) {
		return nil, "", nil, false
	}
	ctl := s.Control(id)
	if ctl == nil {
		httpx.WriteError(w, http.StatusNotFound, "this camera has no PTZ (its onvif is not configured)")
		return nil, "", nil, false
	}
	return p, id, ctl, true
}

func (s *PTZ) status(w http.ResponseWriter, r *http.Request) {
	_, _, ctl, ok := s.authorize(w, r)
	if !ok {
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ctl.Status(r.Context()))
}

func (s *PTZ) command(w http.ResponseWriter, r *http.Request) {
	p, id, ctl, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			httpx.WriteError(w, http.StatusUnsupportedMediaType, "send the PTZ command as Content-Type: application/json")
			return
		}
	}
	cmd, err := ptz.DecodeCommand(r.Body) // bounded: ptz.MaxCommandBytes
	if err != nil {
		writePTZError(w, err)
		return
	}
	cur, err := s.Auth.Current(p)
	if err != nil {
		auth.WriteError(w, err)
		return
	}
	err = ctl.Do(r.Context(), ptz.Controller{Name: cur.Name, Priority: cur.PTZPriority(id), Remote: s.Auth.RemoteAddr(r), Protocol: "http"}, cmd)
	if h, _ := ctl.Holder(); h.Name == cur.Name && s.Granted != nil {
		s.Granted(id, p) // holds control (even if the camera failed the command)
	}
	if err != nil {
		writePTZError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// release is an administrator's "release PTZ": whoever holds control loses
// it (ptz_end names the administrator; session_killed is the
// administrator's act) and the camera is stopped.
func (s *PTZ) release(w http.ResponseWriter, r *http.Request) {
	p, err := s.Auth.AuthenticateRequest(r)
	if err != nil {
		auth.WriteError(w, err)
		return
	}
	id := r.PathValue("id")
	remote := s.Auth.RemoteAddr(r)
	if !p.Admin {
		s.Audit.Record(audit.Event{Event: audit.Denied, Actor: p.Name, Camera: id, Remote: remote, Protocol: "http", Detail: "PTZ release needs an administrator"})
		httpx.WriteError(w, http.StatusForbidden, "releasing PTZ control needs an administrator")
		return
	}
	if s.Forward != nil && s.Forward(w, r, id) {
		return
	}
	ctl := s.Control(id)
	if ctl == nil {
		httpx.WriteError(w, http.StatusNotFound, "no such camera, or it has no PTZ")
		return
	}
	holder, _ := ctl.Holder()
	released, err := ctl.Release(r.Context(), p.Name)
	if err != nil {
		writePTZError(w, err)
		return
	}
	if !released {
		httpx.WriteError(w, http.StatusNotFound, "nobody holds PTZ control of this camera")
		return
	}
	s.Audit.Record(audit.Event{Event: audit.SessionKilled, Actor: p.Name, Camera: id, Remote: remote, Protocol: "http",
		Detail: "released the PTZ control of " + holder.Name})
	w.WriteHeader(http.StatusNoContent)
}

// writePTZError answers an error of the ptz package: its status, the
// {"error"} body (with "holder" and "until" for a conflict), Retry-After
// for 429 and 503.
func writePTZError(w http.ResponseWriter, err error) {
	status := ptz.StatusCode(err)
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(5))
	case http.StatusInternalServerError:
		httpx.WriteError(w, status, "internal error")
		return
	}
	httpx.WriteJSON(w, status, ptz.ErrorBody(err))
}
