// Package ptz is cordon's pan-tilt-zoom command path for one camera: the
// control lock, the camera commands and their audit (CONTRACT "PTZ and
// ONVIF").
//
// The caller (the HTTP door, the ONVIF device face) has already decided
// that a principal may steer the camera; it passes a Controller (name and
// PTZ priority) and a Command. A Control then:
//   - gives control to the principal who commanded last and keeps it for
//     Hold (10 s) after its last command; a higher priority takes it at
//     once (audit ptz_takeover); an equal or lower one gets *ConflictError
//     with the holder and until when (409);
//   - sends Stop to the camera whenever control moves to someone else or
//     ends (expiry, Release by an administrator, EndPrincipal when a session
//     ends or rights change), and when a continuous move's timeout elapses,
//     besides the camera's own ONVIF Timeout, so no move can stay stuck;
//   - decides the lock at once, apart from the camera: camera commands
//     are serialized, but a slow or hostile camera never delays a decision;
//     when control moves, the previous holder's command in flight is
//     cancelled so the new holder's Stop and command go out at once;
//   - validates velocities and preset tokens, rate-limits commands per
//     principal, and keeps the camera's last PTZ error;
//   - audits ptz_start, ptz_end (commands, duration) and ptz_takeover
//     through Auditor, and fails closed: control is granted only when its
//     ptz_start (and ptz_takeover) line is written, else ErrAudit (503).
//
// The camera is the Camera interface, implemented by camnet/onvif. The
// package knows nothing of auth. It is a top-level package because both
// doors and the camera unit use it and it belongs to none of them.
package ptz
