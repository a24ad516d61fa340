package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/config"
	"cordon/internal/connlimit"
	"cordon/relay/onvifserve"
)

// The ONVIF device face (relay/onvifserve, onvif.listen): cordon as one
// ONVIF device for a VMS. The face decides nothing; onvifAccess answers it
// with auth (lockout, the one authorizer, audit) and the camera units
// (streams, and PTZ through the same cameraPTZ attachment and ptz.Control
// the HTTP PTZ API uses: one lock, one audit, one Guard per camera).

// onvifLoginEvery: each ONVIF request signs in again, so a VMS polling a
// device would write a login_ok line per request; one line per name,
// address and this interval is written instead. Failures are never
// de-duplicated here (auth aggregates them per address).
const onvifLoginEvery = 10 * time.Minute

// initONVIF starts the device face when onvif.listen is set, and the
// WS-Discovery responder when onvif.discovery is.
func (g *Gateway) initONVIF() error {
	cfg := g.Config
	if cfg.ONVIF.Listen == "" {
		return nil
	}
	if g.rtsp == nil {
		return fmt.Errorf("onvif.listen %q: needs rtsp.listen (stream URIs point at cordon's RTSP re-serve)", cfg.ONVIF.Listen)
	}
	_, port, err := net.SplitHostPort(g.rtsp.Addr().String())
	if err != nil {
		return fmt.Errorf("onvif.listen: %w", err)
	}
	rtspPort, _ := strconv.Atoi(port)
	g.onvifLogins = newLoginDedup(onvifLoginEvery, 4096)
	m := onvifserve.NewMetrics(g.reg)
	g.onvif = &onvifserve.Server{
		Listen:       cfg.ONVIF.Listen,
		TLSConfig:    g.tls,
		RTSPPort:     rtspPort,
		RTSPTLS:      g.tls != nil, // the RTSP re-serve serves RTSPS with the same certificate
		DeviceName:   "cordon",
		Version:      g.version(),
		SerialNumber: cfg.Cluster.NodeID, // "" = derived from the host name
		Access:       onvifAccess{g},
		Logger:       g.Logger,
		Metrics:      m,
		WrapListener: g.limitListener("onvif", config.ConnLimit{PerAddress: onvifPerAddress, Total: onvifTotal}, connlimit.HTTPReject),
	}
	if err := g.onvif.Initialize(); err != nil {
		return fmt.Errorf("onvif.listen %q: %w", cfg.ONVIF.Listen, err)
	}
	if !cfg.ONVIF.Discovery {
		return nil
	}
	host, _, _ := net.SplitHostPort(cfg.ONVIF.Listen)
	_, boundPort, _ := net.SplitHostPort(g.onvif.Addr().String())
	scheme := "http"
	if g.tls != nil {
		scheme = "https"
	}
	g.discovery = &onvifserve.Discovery{
		IP:       host,
		XAddr:    scheme + "://" + net.JoinHostPort(host, boundPort) + onvifserve.DevicePath,
		Endpoint: g.onvif.EndpointUUID(),
		Scopes:   g.onvif.Scopes(),
		Logger:   g.Logger,
		Metrics:  m,
	}
	if err := g.discovery.Initialize(); err != nil {
		return fmt.Errorf("onvif.discovery: %w", err)
	}
	return nil
}

// closeONVIF stops discovery and the face.
func (g *Gateway) closeONVIF() {
	if g.discovery != nil {
		g.discovery.Close()
	}
	if g.onvif != nil {
		g.onvif.Close()
	}
}

// ONVIFAddr is the bound address of the ONVIF device face ("" when off).
func (g *Gateway) ONVIFAddr() string {
	if g.onvif == nil {
		return ""
	}
	return g.onvif.Addr().String()
}

// onvifAccess is the face's owner: sign-in through auth, the cameras a
// principal may view, PTZ through the camera units' controls.
type onvifAccess struct{ g *Gateway }

// BeginAttempt reserves the attempt against lockout and looks up the
// name's ONVIF-only secret. Names: a user's name is the user's, as on
// every other password door (auth looks users up before API keys); an API
// key with the same name as a user cannot sign in over ONVIF.
func (a onvifAccess) BeginAttempt(name, remote string) (onvifserve.Attempt, error) {
	att, err := a.g.auth.BeginAttempt(name, remote, "onvif", auth.SourceLocal)
	if err != nil {
		return nil, onvifError(err)
	}
	secret, kind, ok := a.g.onvifSecret(name)
	return &onvifAttempt{g: a.g, att: att, name: name, remote: remote, kind: kind, secret: secret, ok: ok}, nil
}

// CheckPassword checks WS-Security PasswordText (the face accepts it over
// TLS only) against the login password hash, through auth's one password
// path (argon2id, bounded hashing, lockout, audit).
func (a onvifAccess) CheckPassword(ctx context.Context, name, password, remote string) (onvifserve.Principal, error) {
	p, err := a.g.auth.AuthenticatePasswordContext(ctx, name, password, remote, "onvif")
	if err != nil {
		return onvifserve.Principal{}, onvifError(err)
	}
	return onvifserve.Principal{Name: p.Name, Ref: p}, nil
}

// Cameras lists the cameras p may view now, in config order. Listing is
// not a request for a camera, so cameras outside p's rights are skipped
// without a denial; those within are asked of the one authorizer.
func (a onvifAccess) Cameras(ctx context.Context, op onvifserve.Principal) []onvifserve.Camera {
	p, ok := op.Ref.(*auth.Principal)
	if !ok {
		return nil
	}
	cur, err := a.g.auth.Current(p)
	if err != nil {
		return nil
	}
	var out []onvifserve.Camera
	for _, u := range a.g.cameras.Units() {
		c := u.Current()
		if !cur.CanView(c.ID) {
			continue
		}
		if err := a.g.auth.Authorize(ctx, auth.Access{Principal: p, Right: auth.RightView, Camera: c.ID, Protocol: "onvif"}); err != nil {
			continue
		}
		cam := onvifserve.Camera{ID: c.ID, Name: c.Name, PTZ: cur.Has(auth.RightPTZ, c.ID) && u.Attachment(PTZAttachment) != nil &&
			a.g.ptzHere(c.ID)}
		if s := u.Stream(""); s != nil {
			cam.Main = streamInfo(s)
		}
		if s := u.Stream("sub"); s != nil {
			sub := streamInfo(s)
			cam.Sub = &sub
		}
		out = append(out, cam)
	}
	return out
}

// AuthorizePTZ asks the one authorizer for the ptz right (a denial is
// audited there) and returns the principal's current ptz_priority.
func (a onvifAccess) AuthorizePTZ(ctx context.Context, op onvifserve.Principal, camera, remote string) (int, error) {
	p, ok := op.Ref.(*auth.Principal)
	if !ok {
		return 0, auth.ErrNoCredentials
	}
	if err := a.g.auth.Authorize(ctx, auth.Access{Principal: p, Right: auth.RightPTZ, Camera: camera, Remote: remote, Protocol: "onvif"}); err != nil {
		return 0, err
	}
	cur, err := a.g.auth.Current(p)
	if err != nil {
		return 0, err
	}
	prio := cur.PTZPriority(camera)
	if prio <= 0 {
		return 0, auth.ErrForbidden
	}
	return prio, nil
}

// PTZ is the camera's PTZ attachment (cameraPTZ: Do and Status over its
// current ptz.Control, the one the HTTP PTZ API uses), nil when the camera
// has none.
func (a onvifAccess) PTZ(id string) onvifserve.PTZControl {
	if !a.g.ptzHere(id) { // a cluster node that does not own the camera
		return nil
	}
	if c := a.g.cameraPTZ(id); c != nil {
		return c
	}
	return nil // not a typed nil: the face compares with nil
}

// PTZGranted tells the PTZ Guard who holds control after an ONVIF command,
// as the HTTP API does: the holder's loss of the ptz right, or its
// removal, ends its control.
func (a onvifAccess) PTZGranted(camera string, op onvifserve.Principal) {
	p, ok := op.Ref.(*auth.Principal)
	ctl := a.g.PTZ(camera)
	if !ok || ctl == nil {
		return
	}
	if h, _ := ctl.Holder(); h.Name == p.Name {
		a.g.PTZGranted(camera, p)
	}
}

// onvifAttempt is one ONVIF sign-in with the ONVIF-only secret.
type onvifAttempt struct {
	g            *Gateway
	att          *auth.Attempt
	name, remote string
	kind, secret string
	ok           bool
}

func (a *onvifAttempt) Secret() (string, bool) { return a.secret, a.ok }

// Succeeded ends the attempt and returns the principal as configured now.
// login_ok is audited once per name, address and onvifLoginEvery; the
// request is refused (503) while the audit log cannot be written.
func (a *onvifAttempt) Succeeded() (onvifserve.Principal, error) {
	p, found := a.g.auth.Lookup(a.name, a.kind)
	if !a.ok || !found {
		// the configuration changed between the secret and now
		_ = a.att.Failed("account removed or its ONVIF password changed")
		return onvifserve.Principal{}, auth.ErrBadCredentials
	}
	a.att.Succeeded()
	if err := a.g.audit.Healthy(); err != nil {
		return onvifserve.Principal{}, &onvifserve.Unavailable{RetryAfter: 5 * time.Second, Reason: "the audit log cannot be written; sign-ins are refused"}
	}
	key := a.kind + "\x00" + a.name + "\x00" + auth.AddrID(a.remote)
	if a.g.onvifLogins.due(key, time.Now()) {
		err := a.g.audit.Append(audit.Event{Event: audit.LoginOK, Actor: p.Name, Remote: a.remote, Protocol: "onvif", Source: auth.SourceLocal,
			Detail: p.Kind + " (ONVIF password; one line per " + onvifLoginEvery.String() + " per address)"})
		if err != nil {
			return onvifserve.Principal{}, &onvifserve.Unavailable{RetryAfter: 5 * time.Second, Reason: "the audit log cannot be written; sign-ins are refused"}
		}
		a.g.onvifLogins.done(key, time.Now())
	}
	return onvifserve.Principal{Name: p.Name, Ref: p}, nil
}

func (a *onvifAttempt) Failed(detail string) { _ = a.att.Failed(detail) }
func (a *onvifAttempt) Cancel()              { a.att.Cancel() }

// onvifSecret returns the ONVIF-only secret (onvif_password_file) of a
// user, or else an API key, named name, and which kind it is. ok is false
// when there is none (unknown name, or no onvif_password_file).
func (g *Gateway) onvifSecret(name string) (secret, kind string, ok bool) {
	g.cfgMu.RLock()
	defer g.cfgMu.RUnlock()
	for i := range g.cfg.Auth.Users {
		u := &g.cfg.Auth.Users[i]
		if subtle.ConstantTimeCompare([]byte(u.Name), []byte(name)) != 1 {
			continue
		}
		pw, err := u.ONVIFPassword()
		return pw, auth.KindUser, err == nil && pw != ""
	}
	for i := range g.cfg.Auth.APIKeys {
		k := &g.cfg.Auth.APIKeys[i]
		if subtle.ConstantTimeCompare([]byte(k.Name), []byte(name)) != 1 {
			continue
		}
		pw, err := k.ONVIFPassword()
		return pw, auth.KindAPIKey, err == nil && pw != ""
	}
	return "", auth.KindUser, false
}

// onvifError maps auth's refusals to the face's: a lockout (429 with
// Retry-After) and "cannot sign in now" (503); anything else is a
// credential the face answers with ter:NotAuthorized.
func onvifError(err error) error {
	ans := auth.Explain(err)
	switch ans.HTTPStatus {
	case http.StatusTooManyRequests:
		return &onvifserve.LockedOut{RetryAfter: ans.RetryAfter}
	case http.StatusServiceUnavailable:
		return &onvifserve.Unavailable{RetryAfter: max(ans.RetryAfter, time.Second), Reason: ans.Message}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &onvifserve.Unavailable{RetryAfter: time.Second, Reason: "sign-in did not finish in time; try again"}
	}
	return err
}

// userDigestHA1 is a user's RTSP Digest HA1: rtsp_digest_ha1 when set,
// else the HA1 of the user's ONVIF password. A VMS that adds cordon over
// ONVIF signs in to the stream URIs it is handed with the same name and
// password (every VMS uses one credential per device), and the ONVIF
// password is already an MD5/SHA-1-grade, random, protocol-only secret
// kept in a file, like the RTSP Digest secret.
func userDigestHA1(u config.User) string {
	if u.RTSPDigestHA1 != "" {
		return strings.ToLower(u.RTSPDigestHA1)
	}
	if pw, err := u.ONVIFPassword(); err == nil && pw != "" {
		return auth.DigestHA1(u.Name, pw)
	}
	return ""
}

// keyDigestHA1 is userDigestHA1 for an API key.
func keyDigestHA1(k config.APIKey) string {
	if k.RTSPDigestHA1 != "" {
		return strings.ToLower(k.RTSPDigestHA1)
	}
	if pw, err := k.ONVIFPassword(); err == nil && pw != "" {
		return auth.DigestHA1(k.Name, pw)
	}
	return ""
}
