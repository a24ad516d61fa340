package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/config"
	"cordon/web"
)

func (g *Gateway) initHTTP() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.Handle("POST /api/v1/login", g.auth.LoginHandler())
	mux.Handle("POST /api/v1/logout", g.auth.LogoutHandler())
	mux.Handle("GET /api/v1/cameras", g.authed(false, g.listCameras))
	mux.Handle("GET /api/v1/admin/sessions", g.authed(true, g.listSessions))
	mux.Handle("DELETE /api/v1/admin/sessions/{id}", g.authed(true, g.killSession))
	mux.Handle("GET /api/v1/egress", g.authed(true, g.egress))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	})
	mux.Handle("/whep/", g.whep)
	mux.Handle("/", web.Handler())

	ln, err := net.Listen("tcp", g.Config.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	g.httpLn = ln
	g.httpSrv = &http.Server{
		Handler:           web.SecurityHeaders(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          nil,
	}
	if g.tls != nil {
		g.httpSrv.TLSConfig = g.tls
	} else if !config.IsLoopback(ln.Addr().String()) {
		g.Logger.Warn("HTTP is plain text on a non-loopback address: tokens and passwords cross the network in clear; configure http.tls_cert/tls_key or use --self-signed", "listen", ln.Addr().String())
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		var err error
		if g.tls != nil {
			err = g.httpSrv.ServeTLS(ln, "", "")
		} else {
			err = g.httpSrv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.Logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers the contract's JSON error shape.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// authed requires a valid Bearer token (and admin rights when admin).
func (g *Gateway) authed(admin bool, h func(http.ResponseWriter, *http.Request, *auth.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.auth.AuthenticateRequest(r)
		if err != nil {
			auth.WriteError(w, err) // 401 + WWW-Authenticate, 429 + Retry-After, 503
			return
		}
		if admin && !p.Admin {
			g.record(audit.Event{Event: audit.Denied, Actor: p.Name, Remote: remoteHost(r), Protocol: "http", Detail: "admin endpoint " + r.URL.Path})
			writeError(w, http.StatusForbidden, "this needs an administrator")
			return
		}
		h(w, r, p)
	})
}

func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func (g *Gateway) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := g.audit.Healthy(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"status": "failing",
			"error":  "audit log cannot be written, new viewing sessions are refused: " + err.Error(),
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
	// OnDemand cameras are pulled only while watched: idle, they read
	// offline, and a WHEP or RTSP request starts them.
	OnDemand bool `json:"on_demand"`

	URL        string `json:"url,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	Reconnects uint64 `json:"reconnects,omitempty"`
	Transport  string `json:"transport,omitempty"`
}

func (g *Gateway) listCameras(w http.ResponseWriter, _ *http.Request, p *auth.Principal) {
	out := []cameraJSON{}
	for _, u := range g.cameras.Units() {
		c := u.Current()
		if !p.CanView(c.ID) {
			continue
		}
		st := u.State()
		cj := cameraJSON{ID: c.ID, Name: c.Name, Online: st.Online, VideoCodec: st.VideoCodec, AudioCodec: st.AudioCodec,
			Viewers: st.Viewers, OnDemand: c.OnDemand}
		if cj.Name == "" {
			cj.Name = c.ID
		}
		if p.Admin {
			cj.URL = g.Redactor.Redact(c.SafeURL())
			cj.LastError = g.Redactor.Redact(st.LastError)
			cj.Reconnects = st.Reconnects
			cj.Transport = st.Transport
		}
		out = append(out, cj)
	}
	writeJSON(w, http.StatusOK, out)
}

// sessionJSON is one live viewing session (admin API).
type sessionJSON struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Kind     string    `json:"kind"`
	Camera   string    `json:"camera"`
	Remote   string    `json:"remote"`
	Protocol string    `json:"protocol"`
	Started  time.Time `json:"started"`
	Bytes    uint64    `json:"bytes"`
}

func (g *Gateway) sessions() []sessionJSON {
	var out []sessionJSON
	for _, s := range g.whep.Sessions() {
		out = append(out, sessionJSON{s.ID, s.User, s.Kind, s.Camera, s.Remote, "webrtc", s.Started.UTC(), s.Bytes})
	}
	if g.rtsp != nil {
		for _, s := range g.rtsp.Sessions() {
			out = append(out, sessionJSON{s.ID, s.User, s.Kind, s.Camera, s.Remote, "rtsp", s.Started.UTC(), s.Bytes})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

func (g *Gateway) listSessions(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) {
	out := g.sessions()
	if out == nil {
		out = []sessionJSON{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) killSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id := r.PathValue("id")
	i := slices.IndexFunc(g.sessions(), func(s sessionJSON) bool { return s.ID == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, "no such session")
		return
	}
	s := g.sessions()[i]
	killed := g.whep.Kill(id)
	if !killed && g.rtsp != nil {
		killed = g.rtsp.Kill(id)
	}
	if !killed {
		writeError(w, http.StatusNotFound, "no such session")
		return
	}
	g.record(audit.Event{Event: audit.Denied, Actor: s.User, Camera: s.Camera, Remote: s.Remote, Protocol: s.Protocol,
		Detail: "session ended by administrator " + p.Name})
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) egress(w http.ResponseWriter, r *http.Request, _ *auth.Principal) {
	if g.sinkhole == nil {
		writeJSON(w, http.StatusOK, []struct{}{})
		return
	}
	g.sinkhole.ReportHandler().ServeHTTP(w, r)
}
