package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/internal/httpx"
	"cordon/record"
)

// RecordingAuth is what the recording routes need from auth: the Bearer
// token, the client's address, and the one authorizer.
type RecordingAuth interface {
	AuthenticateRequest(r *http.Request) (*auth.Principal, error)
	RemoteAddr(r *http.Request) string
	Authorize(ctx context.Context, a auth.Access) error
}

// CameraCatalog names the configured cameras.
type CameraCatalog interface {
	// CameraName returns a configured camera's display name (its id when
	// it has none) and whether it is configured.
	CameraName(id string) (string, bool)
	// CameraIDs lists the configured cameras in config order.
	CameraIDs() []string
}

// Recordings serves recordings and evidence exports (CONTRACT "Recording
// and evidence"): span listing and playback (right playback), exports
// (right export), and the export key for administrators. Set the fields,
// then Register it. Recorder nil = recording is off (recording.path
// empty): the routes still check rights, then answer 404.
type Recordings struct {
	Auth     RecordingAuth
	Cameras  CameraCatalog
	Recorder *record.Recorder
	Exporter *record.Exporter
	Audit    Auditor
	Log      *slog.Logger
	// Recording reports whether a camera is being recorded on this node
	// now (for the admin view); nil = Recorder.Recording.
	Recording func(id string) bool
}

// Bounds of the recording routes.
const (
	// MaxListWindow bounds one listing's window.
	MaxListWindow = 366 * 24 * time.Hour
	// MaxListSpans bounds the spans one listing returns (the oldest first;
	// the header Cordon-Spans-Truncated says more exist).
	MaxListSpans = 10_000
	// DefaultPlayback is a playback's duration when the request names none.
	DefaultPlayback = 60 * time.Second
	// exportBodyMax bounds POST /api/v1/exports's body.
	exportBodyMax = 16 << 10
	// exportBuildTimeout bounds building one export (24 h of a 16 Mbit/s
	// camera is about 170 GB copied; a disk doing 200 MB/s needs 15 min).
	exportBuildTimeout = 30 * time.Minute
	// downloadMinRate is the slowest download a clip or export allows:
	// its write deadline is 2 min plus its size at this rate.
	downloadMinRate = 256 << 10
)

// Register mounts the recording routes.
func (s *Recordings) Register(mux *http.ServeMux) {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	mux.Handle("GET /api/v1/cameras/{id}/recordings", s.authed(false, s.listSpans))
	mux.Handle("GET /api/v1/cameras/{id}/recording", s.authed(false, s.playback))
	mux.Handle("POST /api/v1/exports", s.authed(false, s.createExport))
	mux.Handle("GET /api/v1/exports/{id}", s.authed(false, s.getExport))
	mux.Handle("GET /api/v1/admin/recording", s.authed(true, s.adminInfo))
}

// authed requires a valid Bearer token (and the admin flag when admin).
func (s *Recordings) authed(admin bool, h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Auth.AuthenticateRequest(r)
		if err != nil {
			auth.WriteError(w, err)
			return
		}
		if admin && !p.Admin {
			s.Audit.Record(audit.Event{Event: audit.Denied, Actor: p.Name, Remote: s.Auth.RemoteAddr(r), Protocol: "http", Detail: "admin endpoint " + r.URL.Path})
			httpx.WriteError(w, http.StatusForbidden, "this needs an administrator")
			return
		}
		h(w, r, p)
	})
}

// allow asks the authorizer whether p holds right on camera; on refusal it
// has answered (403 whether or not the camera exists: permission is
// checked first; 404 only for a camera p's rights would cover).
func (s *Recordings) allow(w http.ResponseWriter, r *http.Request, p *auth.Principal, right auth.Right, camera string) bool {
	err := s.Auth.Authorize(r.Context(), auth.Access{Principal: p, Right: right, Camera: camera, Remote: s.Auth.RemoteAddr(r), Protocol: "http"})
	if err != nil {
		auth.WriteError(w, err)
		return false
	}
	if s.Recorder == nil {
		httpx.WriteError(w, http.StatusNotFound, "this gateway does not record (recording.path is empty)")
		return false
	}
	return true
}

// spanJSON is one entry of GET .../recordings.
type spanJSON struct {
	Start string `json:"start"`
	End   string `json:"end"`
	URL   string `json:"url"`
}

// listSpans: GET /api/v1/cameras/{id}/recordings?start=&end= (default: the
// last 24 hours).
func (s *Recordings) listSpans(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id := r.PathValue("id")
	if !s.allow(w, r, p, auth.RightPlayback, id) {
		return
	}
	q := r.URL.Query()
	end, err := parseTime(q.Get("end"), time.Now())
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "end: "+err.Error())
		return
	}
	start, err := parseTime(q.Get("start"), end.Add(-24*time.Hour))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "start: "+err.Error())
		return
	}
	if end.Sub(start) > MaxListWindow {
		httpx.WriteError(w, http.StatusBadRequest, "the window from start to end is longer than 366 days")
		return
	}
	spans, err := s.Recorder.Spans(id, start, end)
	if errors.Is(err, record.ErrUnknownCamera) {
		if _, ok := s.Cameras.CameraName(id); ok {
			err, spans = nil, nil // configured, nothing recorded yet
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(spans) > MaxListSpans {
		spans = spans[:MaxListSpans]
		w.Header().Set("Cordon-Spans-Truncated", "true")
	}
	out := make([]spanJSON, 0, len(spans))
	for _, sp := range spans {
		out = append(out, spanJSON{Start: record.FormatTime(sp.Start), End: record.FormatTime(sp.End),
			URL: "/api/v1/cameras/" + url.PathEscape(id) + "/recording?" + sp.PlaybackQuery()})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// playback: GET /api/v1/cameras/{id}/recording?start=RFC3339&duration=60s,
// a progressive MP4 with Range support (http.ServeContent), the same
// bytes for the same request. Headers Cordon-Clip-Start/End give the UTC
// of its first frame and of its end, for a player's clock.
func (s *Recordings) playback(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id := r.PathValue("id")
	if !s.allow(w, r, p, auth.RightPlayback, id) {
		return
	}
	q := r.URL.Query()
	if q.Get("start") == "" {
		httpx.WriteError(w, http.StatusBadRequest, "start is required (RFC 3339, e.g. 2026-11-30T14:02:00Z)")
		return
	}
	start, err := parseTime(q.Get("start"), time.Time{})
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "start: "+err.Error())
		return
	}
	dur := DefaultPlayback
	if v := q.Get("duration"); v != "" {
		if dur, err = time.ParseDuration(v); err != nil || len(v) > 32 {
			httpx.WriteError(w, http.StatusBadRequest, `duration: not a duration such as "60s" or "5m"`)
			return
		}
	}
	if dur <= 0 || dur > record.MaxPlayback {
		httpx.WriteError(w, http.StatusBadRequest, "duration must be more than 0 and at most 1h")
		return
	}
	clip, err := s.Recorder.Playback(record.PlaybackRequest{Camera: id, Start: start, Duration: dur,
		Principal: p.Name, Remote: s.Auth.RemoteAddr(r)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer clip.Close()
	h := w.Header()
	h.Set("ETag", clip.ETag())
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Disposition", `inline; filename="`+clip.Name+`"`)
	h.Set("Cordon-Clip-Start", record.FormatTime(clip.Start))
	h.Set("Cordon-Clip-End", record.FormatTime(clip.End))
	extendWrite(w, clip.Size)
	http.ServeContent(w, r, clip.Name, clip.ModTime(), clip)
}

// extendWrite gives a download of size bytes time to finish at
// downloadMinRate (the server's own timeouts are for small answers).
func extendWrite(w http.ResponseWriter, size int64) {
	d := 2*time.Minute + time.Duration(size/downloadMinRate)*time.Second
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}

// parseTime parses an RFC 3339 time (fractions allowed); "" gives def.
func parseTime(v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if len(v) > 64 {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time such as 2026-11-30T14:02:00Z")
	}
	return t.UTC(), nil
}

// writeError answers an error of package record (its doc maps them).
func (s *Recordings) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *record.CorruptError
	switch {
	case errors.Is(err, record.ErrUnknownCamera):
		httpx.WriteError(w, http.StatusNotFound, "nothing was ever recorded for this camera")
	case errors.Is(err, record.ErrNoRecording):
		httpx.WriteError(w, http.StatusNotFound, "nothing was recorded in that span")
	case errors.Is(err, record.ErrBadSpan):
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.As(err, &ce):
		httpx.WriteError(w, http.StatusConflict, ce.Error())
	case errors.Is(err, record.ErrAuditUnavailable):
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, "the audit log cannot be written; playback and exports are refused")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		httpx.WriteError(w, http.StatusInsufficientStorage, "the recording disk is full")
	case r.Context().Err() != nil:
		// the client went away; nobody reads an answer
	default:
		s.Log.Error("recording request failed", "path", r.URL.Path, "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal error")
	}
}
