// Package soap is cordon's SOAP 1.2 layer (SOAP 1.1 tolerated) for ONVIF,
// used on both sides: camnet/onvif speaks it to cameras, democam's ONVIF
// camera and cordon's ONVIF device face answer it.
//
// Every message is input from someone who may be hostile (a camera, a
// VMS), so Parse is bounded: body size, element depth, token count,
// attributes per element and text size all have limits (Limits), DTDs and
// any other directive are refused (so no external entities and no entity
// expansion), and only XML's predefined entities are known. Names are
// namespace-aware: an Element carries its namespace URI, and QName values
// (fault codes) are resolved against the declarations in scope.
//
// Building: Node is a small element tree written with explicit prefixes;
// Message puts it in an envelope with the prefixes declared once on the
// Envelope (what gSOAP-based cameras send and expect). Faults (SOAP 1.2
// Code/Subcode/Reason, SOAP 1.1 faultcode/faultstring) are read and written
// with the ONVIF subcodes (ter:NotAuthorized, ter:ActionNotSupported...).
//
// WS-Security: UsernameToken with PasswordDigest
// (Base64(SHA1(nonce + created + password))) or PasswordText, built for
// requests (NewUsernameToken) and checked on the server side (Verifier:
// created-time window, nonce replay cache, constant-time compare).
//
// It lives in internal/ because it is shared plumbing of camnet/onvif,
// democam and the ONVIF device face, and part of none of them.
package soap
