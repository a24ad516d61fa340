package gateway

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/relay/rtspserve"
	"cordon/relay/session"
	"cordon/relay/whep"
)

// whepAccess applies auth to WHEP requests (once per request, never on the
// media path).
type whepAccess struct{ g *Gateway }

func (a whepAccess) Authorize(r *http.Request, camera string) (whep.Viewer, error) {
	g := a.g
	p, err := g.auth.AuthenticateRequest(r)
	if err != nil {
		status := auth.HTTPStatus(err)
		msg := "a valid bearer token is required"
		var retry time.Duration
		switch status {
		case http.StatusTooManyRequests:
			msg = "too many failed attempts from this address or for this account; retry later"
			var lo *auth.LockedOutError
			if errors.As(err, &lo) {
				retry = lo.RetryAfter
			}
		case http.StatusServiceUnavailable:
			msg = "the audit log cannot be written; new sessions are refused"
			retry = 5 * time.Second
		case http.StatusInternalServerError:
			status = http.StatusUnauthorized
		}
		return whep.Viewer{}, &whep.HTTPError{Status: status, Msg: msg, RetryAfter: retry}
	}
	// permission before existence: a caller cannot probe which camera ids
	// exist outside their rights
	if !p.CanView(camera) { // repeatable at will: aggregated per principal
		_ = g.auth.RecordDenied(audit.Event{Actor: p.Name, Camera: camera, Remote: g.auth.RemoteAddr(r), Protocol: "webrtc", Detail: "camera not permitted"})
		return whep.Viewer{}, &whep.HTTPError{Status: http.StatusForbidden, Msg: "you may not view this camera"}
	}
	if g.hub.Get(camera) == nil {
		return whep.Viewer{}, &whep.HTTPError{Status: http.StatusNotFound, Msg: "no such camera"}
	}
	return whep.Viewer{Name: p.Name, Kind: p.Kind, TokenID: p.TokenID, Admin: p.Admin, Remote: g.auth.RemoteAddr(r)}, nil
}

// rtspAccess applies auth to RTSP clients.
type rtspAccess struct{ g *Gateway }

func (a rtspAccess) CheckPassword(name, secret, remote string) (rtspserve.Viewer, error) {
	p, err := a.g.auth.AuthenticatePassword(name, secret, remote, "rtsp")
	if errors.Is(err, auth.ErrAuditUnavailable) {
		return rtspserve.Viewer{}, fmt.Errorf("%w: %v", rtspserve.ErrUnavailable, err)
	}
	if err != nil {
		return rtspserve.Viewer{}, err
	}
	return rtspserve.Viewer{Name: p.Name, Kind: p.Kind}, nil
}

func (a rtspAccess) DigestHA1(name string) (rtspserve.Viewer, string, bool) {
	g := a.g
	g.cfgMu.RLock()
	defer g.cfgMu.RUnlock()
	for _, u := range g.cfg.Auth.Users {
		if ha1 := userDigestHA1(u); subtle.ConstantTimeCompare([]byte(u.Name), []byte(name)) == 1 && ha1 != "" {
			return rtspserve.Viewer{Name: u.Name, Kind: auth.KindUser}, ha1, true
		}
	}
	for _, k := range g.cfg.Auth.APIKeys {
		if ha1 := keyDigestHA1(k); subtle.ConstantTimeCompare([]byte(k.Name), []byte(name)) == 1 && ha1 != "" {
			return rtspserve.Viewer{Name: k.Name, Kind: auth.KindAPIKey}, ha1, true
		}
	}
	return rtspserve.Viewer{}, "", false
}

// CanView re-reads the principal's current rights, so a reload that narrows
// them applies to live RTSP sessions.
func (a rtspAccess) CanView(v rtspserve.Viewer, camera string) bool {
	p, ok := a.g.auth.Lookup(v.Name, v.Kind)
	return ok && p.CanView(camera)
}

func (a rtspAccess) Ready() error { return a.g.audit.Healthy() }

// viewEvents audits view starts and ends for every door and fails new
// sessions closed while the audit log cannot be written.
type viewEvents struct{ g *Gateway }

func (e viewEvents) Ready() error { return e.g.audit.Healthy() }

// ViewStart records a view start; an error refuses the session (fail closed).
func (e viewEvents) ViewStart(s session.Info) error {
	if err := e.g.audit.Append(audit.Event{Event: audit.ViewStart, Actor: s.User, Camera: s.Camera, Remote: s.Remote, Protocol: s.Protocol, Detail: "session " + s.ID}); err != nil {
		e.g.Logger.Error("refusing a viewing session: the audit log cannot be written", "user", s.User, "camera", s.Camera, "protocol", s.Protocol, "err", err)
		return err
	}
	e.g.Logger.Info("view started", "user", s.User, "camera", s.Camera, "remote", s.Remote, "protocol", s.Protocol, "session", s.ID)
	return nil
}

// ViewEnd records a view end with its duration and bytes.
func (e viewEvents) ViewEnd(s session.Info, dur time.Duration, bytes uint64) {
	e.g.Record(audit.Event{Event: audit.ViewEnd, Actor: s.User, Camera: s.Camera, Remote: s.Remote, Protocol: s.Protocol, Detail: "session " + s.ID,
		DurationS: dur.Seconds(), Bytes: int64(bytes)})
	e.g.Logger.Info("view ended", "user", s.User, "camera", s.Camera, "protocol", s.Protocol, "session", s.ID, "duration", dur.Round(time.Millisecond).String(), "bytes", bytes)
}

// rtspEvents adds the RTSP door's denials.
type rtspEvents struct{ viewEvents }

func (e rtspEvents) Denied(name, camera, remote, reason string) {
	ev := audit.Event{Event: audit.Denied, Actor: name, Camera: camera, Remote: remote, Protocol: "rtsp", Detail: reason}
	if reason == rtspAuthFailed { // anyone can cause it: aggregated per address
		e.g.hostile.Record(hostileSource(remote), audit.Denied, ev)
		return
	}
	_ = e.g.auth.RecordDenied(ev) // an authenticated principal denied a camera: per principal
}

// egressAudit records the sinkhole's egress attempts.
type egressAudit struct{ g *Gateway }

func (e egressAudit) Record(event, camera, remote, detail string) {
	e.g.hostile.Record(sinkholeSource(camera, remote), event, audit.Event{Event: event, Camera: camera, Remote: remote, Protocol: "dns", Detail: detail})
}

// digestConfigured reports whether any principal has an RTSP Digest HA1.
func (g *Gateway) digestConfigured() bool {
	g.cfgMu.RLock()
	defer g.cfgMu.RUnlock()
	for _, u := range g.cfg.Auth.Users {
		if userDigestHA1(u) != "" {
			return true
		}
	}
	for _, k := range g.cfg.Auth.APIKeys {
		if keyDigestHA1(k) != "" {
			return true
		}
	}
	return false
}
