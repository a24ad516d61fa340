package gateway

import (
	"strings"

	"cordon/auth"
	"cordon/relay/session"
)

// The live re-check: one auth.Guard over everything a principal holds
// open through the doors — WHEP and RTSP sessions (the session registry)
// and authenticated RTSP connections. On every auth change (reload,
// logout, directory re-check) and every 2 s it asks auth whether each may
// continue and ends the ones that may not: the session's view_end carries
// auth.EndReason, an RTSP connection is closed.

// rtspConnPrefix marks an RTSP connection among the guard's live items.
const rtspConnPrefix = "rtsp-conn:"

func (g *Gateway) initGuard() error {
	g.guard = &auth.Guard{Service: g.auth, List: g.live, End: g.endLive, Logger: g.Logger.With("component", "auth")}
	return g.guard.Initialize()
}

// live lists sessions first, then connections, so that a sweep ending
// both gives the sessions their own reason before their connection goes.
// Peer nodes relaying a camera hold no principal: their right is this
// node's ownership, and ownerChanged ends them when it moves.
func (g *Gateway) live() []auth.Live {
	var out []auth.Live
	for _, in := range g.sessions.List() {
		if in.Kind == session.KindPeer {
			continue
		}
		p, _ := in.Principal.(*auth.Principal) // nil: deny by default, ended
		out = append(out, auth.Live{ID: in.ID, Principal: p, Right: auth.RightView, Camera: in.Camera})
	}
	if g.rtsp != nil {
		for _, c := range g.rtsp.Conns() {
			if c.Viewer.Kind == session.KindPeer {
				continue
			}
			p, _ := c.Viewer.Principal.(*auth.Principal)
			out = append(out, auth.Live{ID: rtspConnPrefix + c.ID, Principal: p, Right: auth.RightView, Camera: c.Camera})
		}
	}
	return out
}

// endLive ends one live item (idempotent: a second call finds nothing).
func (g *Gateway) endLive(l auth.Live, err error) {
	reason := auth.EndReason(err)
	if id, ok := strings.CutPrefix(l.ID, rtspConnPrefix); ok {
		if g.rtsp != nil {
			g.rtsp.CloseConn(id, reason)
		}
		return
	}
	g.sessions.Kill(l.ID, reason)
}
