package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"cordon/auth"
	"cordon/camnet/harden"
	"cordon/internal/httpx"
)

// HardeningWatcher is what the hardening routes need from the drift
// watcher (*harden.Watcher).
type HardeningWatcher interface {
	Results() []harden.CameraResult
	Apply(ctx context.Context, camera string, reboot bool, actor string) (harden.CameraResult, error)
}

// Hardening serves the administrators' view of camera hardening:
//
//	GET  /api/v1/admin/hardening                  every camera's last check (CONTRACT shape)
//	POST /api/v1/admin/hardening/{camera}/apply   set the wanted settings and read them back
//
// The apply body is optional: {"reboot": true} lets cordon reboot the
// camera when a change needs it. The answer is the camera's new result;
// a change is audited as camera_hardened with the administrator as actor.
type Hardening struct {
	API *Server
	// Watcher is nil when hardening is off: the list is empty and apply
	// answers 503.
	Watcher HardeningWatcher
	// ApplyTimeout bounds one apply, reboot included (0 = 10 min). It runs
	// to its end even if the administrator's browser goes away: a camera
	// left half-configured is worse than a late answer.
	ApplyTimeout time.Duration
}

// Register mounts the routes (admin only).
func (h *Hardening) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/admin/hardening", h.API.authed(true, h.list))
	mux.Handle("POST /api/v1/admin/hardening/{camera}/apply", h.API.authed(true, h.apply))
}

func (h *Hardening) list(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) {
	if h.Watcher == nil {
		httpx.WriteJSON(w, http.StatusOK, []harden.CameraResult{})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, h.Watcher.Results())
}

// applyRequest is the optional body of an apply.
type applyRequest struct {
	Reboot bool `json:"reboot"`
}

func (h *Hardening) apply(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	if h.Watcher == nil {
		httpx.WriteError(w, http.StatusServiceUnavailable, "camera hardening is off in this gateway")
		return
	}
	var req applyRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1025))
	switch {
	case err != nil:
		httpx.WriteError(w, http.StatusBadRequest, "the request body could not be read")
		return
	case len(body) > 1024:
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "the request body is larger than 1 KiB")
		return
	case len(strings.TrimSpace(string(body))) > 0:
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, `the body must be empty or {"reboot": true|false}`)
			return
		}
	}
	timeout := h.ApplyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()
	res, err := h.Watcher.Apply(ctx, r.PathValue("camera"), req.Reboot, p.Name)
	switch {
	case errors.Is(err, harden.ErrUnknownCamera):
		httpx.WriteError(w, http.StatusNotFound, "no such camera")
		return
	case errors.Is(err, harden.ErrElsewhere):
		httpx.WriteError(w, http.StatusConflict, "another node of the cluster owns this camera: apply it there (GET /api/v1/admin/cluster names the owner)")
		return
	case err != nil:
		httpx.WriteError(w, http.StatusGatewayTimeout, "applying the camera's settings did not finish in time")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, res)
}
