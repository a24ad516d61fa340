// Package onvifserve is cordon's ONVIF device face: the operator-side door
// through which a VMS (Milestone, Genetec, ...) adds cordon as ONE ONVIF
// device, in the manner of an NVR, beside relay/whep (browsers) and
// relay/rtspserve (RTSP clients). It lives under relay/ with the other
// doors that serve cordon's cameras to the operator side.
//
// The face answers a Profile S subset at /onvif/device_service,
// /onvif/media_service and /onvif/ptz_service: device information
// (cordon's own identity, never a camera's), capabilities and services,
// scopes, one video source per camera the signed-in principal may view
// and one media profile per stream (main, and sub when the camera has
// one), GetStreamUri pointing at cordon's RTSP re-serve on the host the
// client connected to, and the PTZ service routed through the owner's
// rights and each camera's ptz.Control (rights first, then the lock; a
// conflict is a SOAP fault naming the holder). Anything else is answered
// with a SOAP fault (ter:ActionNotSupported), never a bare HTTP error.
//
// Authentication: GetSystemDateAndTime is open (clients learn the clock
// before signing); everything else needs WS-Security UsernameToken
// (PasswordDigest with the principal's ONVIF-only secret, created window
// and nonce replay enforced; PasswordText over TLS only, checked against
// the principal's password hash) or HTTP Digest (qop=auth, the ONVIF
// secret, replayed nc/cnonce refused). Every failure counts towards
// lockout through Access; the face itself never decides a right.
//
// Requests are bounded (body size, XML depth and tokens through
// internal/soap, header size, read/write times), rate-limited per address
// (IPv6 per /64; internal/addrlimit, whose bounded table forgets the least
// recently used address rather than refusing newcomers)
// and capped in flight. An optional WS-Discovery responder (Discovery)
// answers Probe on the operator side only.
package onvifserve
