package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cordon/auth/audit"
)

// Access is one question a door asks: may Principal do Right on Camera
// (Stream: "" or "main", or "sub") now? Remote and Protocol are for the
// audit line of a denial.
type Access struct {
	Principal *Principal
	Right     Right
	Camera    string
	Stream    string
	Remote    string
	Protocol  string
}

// Authorize answers an Access. Deny by default. In order:
//
//  1. the audit log must be writable (fail closed: ErrAuditUnavailable);
//  2. the principal is re-read: its token not revoked (ErrTokenRevoked),
//     it still exists with the credential it proved, and a directory
//     identity is neither removed nor expired (ErrPrincipalGone);
//  3. its CURRENT grants must hold Right on Camera (ErrForbidden, audited
//     as denied, through Service.Hostile when set: the first per principal,
//     protocol and interval, then a count);
//  4. only then, when Service.Cameras is set, the camera must exist
//     (ErrNoSuchCamera): a caller cannot tell a camera outside its rights
//     from one that does not exist.
//
// Map errors with Explain / WriteError. ctx is accepted for future
// remote checks; today every check is in memory.
func (s *Service) Authorize(ctx context.Context, a Access) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.Principal == nil {
		return ErrNoCredentials
	}
	if a.Right.bit() == 0 {
		return fmt.Errorf("%w: unknown right %q", ErrForbidden, string(a.Right))
	}
	if err := s.AuditHealthy(); err != nil {
		return err
	}
	cur, err := s.Current(a.Principal)
	if err != nil {
		return err
	}
	if !cur.Has(a.Right, a.Camera) {
		if aerr := s.auditDenied(audit.Event{Event: audit.Denied, Actor: cur.Name, Camera: a.Camera, Remote: a.Remote, Protocol: a.Protocol,
			Detail: "right " + string(a.Right) + " not granted on this camera"}); aerr != nil {
			return fmt.Errorf("%w: %v", ErrAuditUnavailable, aerr)
		}
		return ErrForbidden
	}
	if s.Cameras != nil && !s.Cameras.CameraExists(a.Camera, a.Stream) {
		return ErrNoSuchCamera
	}
	return nil
}

// Current re-reads p: its current grants, admin flag and roles, or why it
// may no longer act (ErrTokenRevoked, ErrPrincipalGone). The returned
// principal keeps p's token id and expiry. Use it for values derived from
// rights at the moment of an action (e.g. PTZPriority).
func (s *Service) Current(p *Principal) (*Principal, error) {
	if p == nil {
		return nil, ErrNoCredentials
	}
	var cur *Principal
	if p.Source != "" && p.Source != SourceLocal {
		// a directory identity's removal is named before the revocation
		// of its tokens that the removal caused (not a logout)
		var err error
		if cur, err = s.identities.principal(p.Source, p.Name, s.Directory.current(), s.now()); err != nil {
			return nil, err
		}
	}
	if p.TokenID != "" && s.revoked.revoked(p.TokenID) {
		return nil, ErrTokenRevoked
	}
	if cur == nil {
		e := s.Directory.current().find(p.Name, p.Kind)
		if e == nil || !e.credentialValid(p.credential) {
			return nil, ErrPrincipalGone
		}
		cur = e.principal()
		cur.credential = p.credential
	}
	cur.TokenID, cur.ExpiresAt = p.TokenID, p.ExpiresAt
	return cur, nil
}

// Recheck tells whether a live session, control or connection of p that
// uses right on camera may continue: the token is not revoked, the
// principal still exists with the credential it proved (a directory
// identity: not removed, not expired), and its current grants hold right
// on camera. It is what a session registry calls on every Change (see
// Guard). It does not end sessions when a token merely expires (a session
// outlives the token that started it; logout or a change ends it), and it
// writes no audit line. Errors: ErrTokenRevoked, ErrPrincipalGone,
// ErrForbidden.
func (s *Service) Recheck(p *Principal, right Right, camera string) error {
	cur, err := s.Current(p)
	if err != nil {
		return err
	}
	if !cur.Has(right, camera) {
		return ErrForbidden
	}
	return nil
}

// AuthorizeView is Authorize for the view right (the call the doors made
// before rights existed). Prefer Authorize.
func (s *Service) AuthorizeView(p *Principal, camera, remote, protocol string) error {
	return s.Authorize(context.Background(), Access{Principal: p, Right: RightView, Camera: camera, Remote: remote, Protocol: protocol})
}

// RecordViewStart durably records a view_start; refuse the session if it
// returns an error (ErrAuditUnavailable).
func (s *Service) RecordViewStart(p *Principal, camera, remote, protocol string) error {
	if err := s.audit(audit.Event{Event: audit.ViewStart, Actor: p.Name, Camera: camera, Remote: remote, Protocol: protocol, Detail: p.Kind}); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// RecordViewEnd records a view_end with the session's duration and bytes
// sent, and why it ended (a short caller-provided reason, never a secret;
// EndReason(err) for an error from Recheck).
func (s *Service) RecordViewEnd(p *Principal, camera, remote, protocol string, d time.Duration, bytes int64, reason string) error {
	if err := s.audit(audit.Event{Event: audit.ViewEnd, Actor: p.Name, Camera: camera, Remote: remote, Protocol: protocol,
		Detail: reason, DurationS: d.Seconds(), Bytes: bytes}); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// RecordSessionKilled records an administrator ending someone's session
// (session_killed: actor = the administrator, detail names the session's
// principal and id).
func (s *Service) RecordSessionKilled(admin *Principal, camera, remote, protocol, victim, sessionID string) error {
	if err := s.audit(audit.Event{Event: audit.SessionKilled, Actor: admin.Name, Camera: camera, Remote: remote, Protocol: protocol,
		Detail: "ended the session " + sessionID + " of " + victim}); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// EndReason is the audit reason for a session ended by a Recheck error.
func EndReason(err error) string {
	switch {
	case err == nil:
		return "ended"
	case errors.Is(err, ErrTokenRevoked):
		return "ended: token revoked (logout)"
	case errors.Is(err, ErrPrincipalGone):
		return "ended: account removed, expired or its credentials changed"
	case errors.Is(err, ErrForbidden):
		return "ended: right withdrawn"
	}
	return "ended: " + err.Error()
}
