package whep

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"cordon/relay"
	"cordon/relay/session"
)

// post answers POST /whep/{camera}: admit, read the offer, attach a reader,
// negotiate, register and start the session.
func (s *Server) post(w http.ResponseWriter, r *http.Request, camera string) {
	start := time.Now()
	name, err := StreamName(r)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "bad_stream", err.Error())
		return
	}
	viewer, stream, ok := s.admit(w, r, camera, name)
	if !ok {
		return
	}
	body, off, ok := s.readOffer(w, r)
	if !ok {
		return
	}
	reader, err := stream.AddReader(relay.ReaderConf{Protocol: "webrtc", RefuseBFrames: true})
	if errors.Is(err, relay.ErrBFrames) {
		s.failBFrames(w, camera, name)
		return
	}
	if err != nil {
		w.Header().Set("Retry-After", "5")
		s.fail(w, http.StatusServiceUnavailable, "camera_unreachable", "the camera is not available")
		return
	}
	p, answer, ok := s.negotiate(w, r, camera, name, viewer, reader, off, body)
	if !ok {
		reader.Close()
		return
	}
	p.stream = name
	// the peer owns the reader now
	if !s.register(w, p) {
		return
	}
	s.Metrics.sessions.WithLabelValues(camera).Inc()
	go p.run()

	h := w.Header()
	h.Set("Location", "/whep/"+camera+"/"+p.id)
	h.Set("Content-Type", "application/sdp")
	h.Set("ETag", `"`+p.etag+`"`)
	h.Set("Cache-Control", "no-store")
	for _, u := range s.ICEServers {
		if !strings.ContainsAny(u, "<>\"") {
			h.Add("Link", "<"+u+`>; rel="ice-server"`)
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	s.Metrics.setup.Observe(time.Since(start).Seconds())
	s.Log.Debug("WHEP session started", "session", p.id[:8], "camera", camera, "user", viewer.Name, "remote", viewer.Remote)
}

// admit authorizes the POST and refuses early what cannot start: unknown
// camera or stream, a cap reached, the audit log unwritable.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, camera, name string) (Viewer, *relay.Stream, bool) {
	viewer, ok := s.authorize(w, r, camera)
	if !ok {
		return Viewer{}, nil, false
	}
	stream := s.Hub.Lookup(camera, name)
	if stream == nil {
		msg := "unknown camera"
		if name != "" && s.Hub.Get(camera) != nil {
			msg = "this camera has no sub stream"
		}
		s.fail(w, http.StatusNotFound, "not_found", msg)
		return Viewer{}, nil, false
	}
	if err := s.Sessions.Check("webrtc", viewer.Name); err != nil {
		s.refuse(w, err)
		return Viewer{}, nil, false
	}
	if rd, ok := s.Events.(Readier); ok {
		if err := rd.Ready(); err != nil {
			s.Log.Error("refusing to start a session: audit not ready", "err", err)
			w.Header().Set("Retry-After", "5")
			s.fail(w, http.StatusServiceUnavailable, "audit_unavailable", "viewing is unavailable: "+err.Error())
			return Viewer{}, nil, false
		}
	}
	return viewer, stream, true
}

// refuse answers a session registry refusal: 429 past a principal's cap,
// 503 past the gateway's or while shutting down.
func (s *Server) refuse(w http.ResponseWriter, err error) {
	status := http.StatusServiceUnavailable
	var le *session.LimitError
	if errors.As(err, &le) && le.Principal {
		status = http.StatusTooManyRequests
	}
	w.Header().Set("Retry-After", "5")
	s.fail(w, status, "session_limit", err.Error())
}

// readOffer reads and parses the SDP offer (at most 64 KiB).
func (s *Server) readOffer(w http.ResponseWriter, r *http.Request) (string, *offer, bool) {
	if ct := contentType(r); ct != "application/sdp" {
		s.fail(w, http.StatusUnsupportedMediaType, "content_type", "the offer must be sent as Content-Type: application/sdp")
		return "", nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the offer is larger than 64 KiB")
			return "", nil, false
		}
		s.fail(w, http.StatusBadRequest, "bad_offer", "cannot read the offer")
		return "", nil, false
	}
	off, err := parseOffer(body)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "bad_offer", err.Error())
		return "", nil, false
	}
	return string(body), off, true
}

// negotiate waits for the camera, picks the codecs and answers the offer.
func (s *Server) negotiate(w http.ResponseWriter, r *http.Request, camera, name string, viewer Viewer, reader *relay.Reader,
	off *offer, body string,
) (*peer, string, bool) {
	wctx, cancel := context.WithTimeout(r.Context(), s.ReadyTimeout)
	tracks, err := reader.WaitReady(wctx)
	cancel()
	if errors.Is(err, relay.ErrBFrames) {
		s.failBFrames(w, camera, name)
		return nil, "", false
	}
	if err != nil {
		s.Log.Info("camera unreachable for a WHEP viewer", "camera", camera, "user", viewer.Name, "err", err)
		w.Header().Set("Retry-After", "5")
		s.fail(w, http.StatusServiceUnavailable, "camera_unreachable", "the camera is unreachable; try again shortly")
		return nil, "", false
	}
	picks, err := chooseCodecs(off, tracks)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "no_codec", err.Error())
		return nil, "", false
	}
	sel := make([]int, len(picks))
	for i, p := range picks {
		sel[i] = p.track.Index
	}
	reader.SetTracks(sel)
	body, cands := s.filterOffer(body)
	p, answer, err := s.newPeer(r.Context(), camera, viewer, reader, tracks, picks, body)
	if err == nil {
		p.cands = cands // not shared yet
	}
	if err != nil {
		var bad badOfferError
		if errors.As(err, &bad) {
			s.fail(w, http.StatusBadRequest, "bad_offer", bad.Error())
			return nil, "", false
		}
		s.Log.Warn("cannot set up WHEP session", "camera", camera, "err", err)
		s.fail(w, http.StatusInternalServerError, "internal", "cannot set up the session")
		return nil, "", false
	}
	return p, answer, true
}

// register records the start in the audit log (fail closed: a session
// whose start cannot be recorded never starts; outside any lock, the audit
// write is fsynced) and adds it to the registry, whose caps are
// authoritative (POSTs run concurrently).
func (s *Server) register(w http.ResponseWriter, p *peer) bool {
	if s.Events != nil {
		if err := s.Events.ViewStart(p.Info()); err != nil {
			p.teardown()
			w.Header().Set("Retry-After", "5")
			s.fail(w, http.StatusServiceUnavailable, "audit_unavailable", "the session cannot be recorded in the audit log; new sessions are refused")
			return false
		}
	}
	s.mu.Lock()
	err := s.Sessions.Add(p)
	if err == nil && s.closed {
		s.Sessions.Remove(p.id)
		err = session.ErrClosed
	}
	if err == nil {
		s.peers[p.id] = p
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if err != nil {
		p.teardown()
		if s.Events != nil {
			s.Events.ViewEnd(p.Info(), 0, 0)
		}
		s.refuse(w, err)
		return false
	}
	return true
}

// lookup authorizes a PATCH/DELETE: a valid Bearer of the session's own
// principal, or an admin. Others get 404, not revealing the session exists.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, camera, id string) (*peer, bool) {
	v, ok := s.authorize(w, r, "")
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	p := s.peers[id]
	s.mu.Unlock()
	if p == nil || p.camera != camera || !(v.Admin || p.ownedBy(v)) {
		s.fail(w, http.StatusNotFound, "not_found", "no such session")
		return nil, false
	}
	return p, true
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, camera, id string) {
	p, ok := s.lookup(w, r, camera, id)
	if !ok {
		return
	}
	p.End("deleted")
	<-p.finished // media has stopped when we answer
	w.WriteHeader(http.StatusOK)
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, camera, id string) {
	p, ok := s.lookup(w, r, camera, id)
	if !ok {
		return
	}
	if ct := contentType(r); ct != "application/trickle-ice-sdpfrag" {
		s.fail(w, http.StatusUnsupportedMediaType, "content_type", "PATCH takes Content-Type: application/trickle-ice-sdpfrag")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != `"`+p.etag+`"` {
		s.fail(w, http.StatusPreconditionFailed, "etag", "the session's ETag does not match")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPatchBytes))
	if err != nil {
		s.fail(w, http.StatusRequestEntityTooLarge, "too_large", "the SDP fragment is too large")
		return
	}
	status, msg := p.trickle(string(body))
	if status != http.StatusNoContent {
		s.fail(w, status, "trickle", msg)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
