package gateway

import (
	"context"
	"net/http"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/relay/rtspserve"
	"cordon/relay/session"
	"cordon/relay/whep"
)

// The doors ask auth, through these adapters, every question: who is
// this (authentication with lockout and bounded hashing), may they view
// this camera now (Service.Authorize: permission before existence,
// denials audited). Answers are auth.Explain's, on every door.

// whepAccess applies auth to WHEP requests (once per request, never on the
// media path).
type whepAccess struct{ g *Gateway }

// whepError is auth's answer to an error, as the WHEP door writes it.
func whepError(err error) error {
	a := auth.Explain(err)
	return &whep.HTTPError{Status: a.HTTPStatus, Msg: a.Message, RetryAfter: a.RetryAfter, Challenge: a.Challenge}
}

func (a whepAccess) viewer(r *http.Request, p *auth.Principal) whep.Viewer {
	return whep.Viewer{Name: p.Name, Kind: p.Kind, Source: p.Source, TokenID: p.TokenID, Admin: p.Admin,
		Remote: a.g.auth.RemoteAddr(r), Principal: p}
}

// Authorize answers a POST: a valid Bearer, and the view right on the
// camera (and stream) now.
func (a whepAccess) Authorize(r *http.Request, camera string) (whep.Viewer, error) {
	svc := a.g.auth
	p, err := svc.AuthenticateRequest(r)
	if err != nil {
		return whep.Viewer{}, whepError(err)
	}
	v := a.viewer(r, p)
	if err := svc.Authorize(r.Context(), auth.Access{Principal: p, Right: auth.RightView, Camera: camera, Stream: streamParam(r),
		Remote: v.Remote, Protocol: "webrtc"}); err != nil {
		return whep.Viewer{}, whepError(err)
	}
	return v, nil
}

// Authenticate answers a PATCH or DELETE: a valid Bearer (the door checks
// that it is the session's own principal, or an admin).
func (a whepAccess) Authenticate(r *http.Request) (whep.Viewer, error) {
	p, err := a.g.auth.AuthenticateRequest(r)
	if err != nil {
		return whep.Viewer{}, whepError(err)
	}
	return a.viewer(r, p), nil
}

// streamParam is the stream a WHEP request asks for ("" = main; the
// ?stream= parameter of the sub streams).
func streamParam(r *http.Request) string {
	if r.URL == nil {
		return ""
	}
	if s := r.URL.Query().Get("stream"); s != "main" {
		return s
	}
	return ""
}

// rtspAccess applies auth to RTSP requests: every DESCRIBE, SETUP and
// PLAY authenticates again against the current credentials.
type rtspAccess struct{ g *Gateway }

// rtspRefusal is auth's answer to an error, as the RTSP door writes it.
func rtspRefusal(err error) error {
	a := auth.Explain(err)
	return &rtspserve.Refusal{Status: a.RTSPStatus, RetryAfter: a.RetryAfter, Err: err}
}

func rtspViewer(p *auth.Principal) rtspserve.Viewer {
	return rtspserve.Viewer{Name: p.Name, Kind: p.Kind, Source: p.Source, Principal: p}
}

func (a rtspAccess) CheckLocked(name, remote string) error {
	if err := a.g.auth.CheckLocked(name, remote); err != nil {
		return rtspRefusal(err)
	}
	return nil
}

// CheckPassword is RTSP Basic: one call to auth's password check (users,
// API keys, and what else it knows), lockout and audit included; a peer
// node's name is checked against the peer key (clusterauth.go).
func (a rtspAccess) CheckPassword(ctx context.Context, name, secret, remote string) (rtspserve.Viewer, error) {
	if v, peer, err := a.g.peerPassword(name, secret, remote); peer {
		if err != nil {
			return rtspserve.Viewer{}, rtspRefusal(err)
		}
		return v, nil
	}
	p, err := a.g.auth.AuthenticatePasswordContext(ctx, name, secret, remote, "rtsp")
	if err != nil {
		return rtspserve.Viewer{}, rtspRefusal(err)
	}
	return rtspViewer(p), nil
}

func (a rtspAccess) CheckDigest(d rtspserve.Digest, remote string) (rtspserve.Viewer, error) {
	r := auth.DigestResponse{Username: d.Username, Realm: d.Realm, Nonce: d.Nonce, URI: d.URI,
		Response: d.Response, Algorithm: d.Algorithm, QOP: d.QOP, NC: d.NC, CNonce: d.CNonce, Method: d.Method}
	if v, peer, err := a.g.peerDigest(r, remote); peer {
		if err != nil {
			return rtspserve.Viewer{}, rtspRefusal(err)
		}
		return v, nil
	}
	p, err := a.g.auth.AuthenticateDigest(r, remote, "rtsp")
	if err != nil {
		return rtspserve.Viewer{}, rtspRefusal(err)
	}
	return rtspViewer(p), nil
}

func (a rtspAccess) Failed(name, remote, detail string) error {
	return rtspRefusal(a.g.auth.RecordAuthFailure(name, remote, "rtsp", auth.SourceLocal, detail))
}

// Authorize: a user or key through auth; a peer node only for the
// cameras this node owns (any other camera answers as not permitted).
func (a rtspAccess) Authorize(ctx context.Context, v rtspserve.Viewer, camera, stream, remote string) error {
	if v.Kind == session.KindPeer {
		if !a.g.peerMayView(camera) {
			return rtspRefusal(auth.ErrForbidden)
		}
		return nil
	}
	p, _ := v.Principal.(*auth.Principal)
	if err := a.g.auth.Authorize(ctx, auth.Access{Principal: p, Right: auth.RightView, Camera: camera, Stream: stream,
		Remote: remote, Protocol: "rtsp"}); err != nil {
		return rtspRefusal(err)
	}
	return nil
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

// ViewEnd records a view end with its duration, bytes and why it ended.
func (e viewEvents) ViewEnd(s session.Info, dur time.Duration, bytes uint64) {
	detail := "session " + s.ID
	if s.Reason != "" {
		detail += "; " + s.Reason
	}
	e.g.Record(audit.Event{Event: audit.ViewEnd, Actor: s.User, Camera: s.Camera, Remote: s.Remote, Protocol: s.Protocol, Detail: clip(detail, 256),
		DurationS: dur.Seconds(), Bytes: int64(bytes)})
	e.g.Logger.Info("view ended", "user", s.User, "camera", s.Camera, "protocol", s.Protocol, "session", s.ID, "reason", s.Reason,
		"duration", dur.Round(time.Millisecond).String(), "bytes", bytes)
}

// egressAudit records the sinkhole's egress attempts.
type egressAudit struct{ g *Gateway }

func (e egressAudit) Record(event, camera, remote, detail string) {
	e.g.hostile.Record(sinkholeSource(camera, remote), event, audit.Event{Event: event, Camera: camera, Remote: remote, Protocol: "dns", Detail: detail})
}
