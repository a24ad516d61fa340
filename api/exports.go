package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"cordon/auth"
	"cordon/internal/httpx"
	"cordon/record"
)

// exportRequest is POST /api/v1/exports's body.
type exportRequest struct {
	Camera string `json:"camera"`
	Start  string `json:"start"`
	End    string `json:"end"`
	Reason string `json:"reason"`
}

// createExport: POST /api/v1/exports {"camera","start","end","reason"},
// built synchronously: 201 {"id","url"} once the ZIP is complete.
func (s *Recordings) createExport(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	var req exportRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, exportBodyMax))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, `the body must be JSON {"camera","start","end","reason"} of at most 16 KiB`)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, exportBodyMax))
	if req.Camera == "" {
		httpx.WriteError(w, http.StatusBadRequest, "camera is required")
		return
	}
	if !s.allow(w, r, p, auth.RightExport, req.Camera) {
		return
	}
	if req.Start == "" || req.End == "" {
		httpx.WriteError(w, http.StatusBadRequest, "start and end are required (RFC 3339, UTC)")
		return
	}
	start, err := parseTime(req.Start, time.Time{})
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "start: "+err.Error())
		return
	}
	end, err := parseTime(req.End, time.Time{})
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "end: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		httpx.WriteError(w, http.StatusBadRequest, "a reason is required (why the evidence is taken: incident, reference)")
		return
	}
	name, _ := s.Cameras.CameraName(req.Camera)
	// a long export outlives the server's request timeouts (they bound
	// small requests): this route alone gets exportBuildTimeout
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(exportBuildTimeout + time.Minute))
	_ = rc.SetWriteDeadline(time.Now().Add(exportBuildTimeout + time.Minute))
	ctx, cancel := context.WithTimeout(r.Context(), exportBuildTimeout)
	defer cancel()
	info, err := s.Exporter.Create(ctx, record.ExportRequest{Camera: req.Camera, CameraName: name, Start: start, End: end,
		Principal: p.Name, Remote: s.Auth.RemoteAddr(r), Reason: req.Reason})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := "/api/v1/exports/" + info.ID
	w.Header().Set("Location", u)
	httpx.WriteJSON(w, http.StatusCreated, map[string]string{"id": info.ID, "url": u})
}

// getExport: GET /api/v1/exports/{id}, the ZIP, for a principal with the
// export right on the export's camera.
func (s *Recordings) getExport(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id := r.PathValue("id")
	if s.Exporter == nil {
		httpx.WriteError(w, http.StatusNotFound, "this gateway does not record (recording.path is empty)")
		return
	}
	f, m, err := s.Exporter.Open(id)
	if errors.Is(err, fs.ErrNotExist) {
		httpx.WriteError(w, http.StatusNotFound, "no such export")
		return
	}
	if err != nil {
		s.Log.Error("an export cannot be read", "id", id, "err", err)
		httpx.WriteError(w, http.StatusConflict, err.Error())
		return
	}
	defer f.Close()
	if !s.allow(w, r, p, auth.RightExport, m.Camera.ID) {
		return
	}
	fi, err := f.Stat()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.Log.Info("evidence export downloaded", "id", id, "camera", m.Camera.ID, "principal", p.Name, "remote", s.Auth.RemoteAddr(r))
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Disposition", `attachment; filename="cordon-export-`+m.Camera.ID+`-`+id+`.zip"`)
	extendWrite(w, fi.Size())
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// adminInfoJSON is GET /api/v1/admin/recording.
type adminInfoJSON struct {
	Enabled   bool                 `json:"enabled"`
	ExportKey *exportKeyJSON       `json:"export_key,omitempty"`
	Cameras   []adminRecordingJSON `json:"cameras"`
}

type exportKeyJSON struct {
	Fingerprint string `json:"fingerprint"`
	PublicKey   string `json:"public_key"` // PEM
}

type adminRecordingJSON struct {
	ID        string `json:"id"`
	Recording bool   `json:"recording"`
}

// adminInfo shows whether recording is on, which cameras are recorded on
// this node, and the export public key with its fingerprint (what a court
// expert compares with `cordon export verify`).
func (s *Recordings) adminInfo(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) {
	out := adminInfoJSON{Enabled: s.Recorder != nil, Cameras: []adminRecordingJSON{}}
	if s.Exporter != nil {
		key, err := s.Exporter.Key()
		if err != nil {
			s.Log.Error("the export key cannot be read", "err", err)
			httpx.WriteError(w, http.StatusInternalServerError, "the export key cannot be read: see the gateway's log")
			return
		}
		pub := key.Public().(ed25519.PublicKey)
		out.ExportKey = &exportKeyJSON{Fingerprint: record.Fingerprint(pub), PublicKey: string(record.PublicKeyPEM(pub))}
	}
	recording := s.Recording
	if recording == nil && s.Recorder != nil {
		recording = s.Recorder.Recording
	}
	for _, id := range s.Cameras.CameraIDs() {
		out.Cameras = append(out.Cameras, adminRecordingJSON{ID: id, Recording: recording != nil && recording(id)})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
