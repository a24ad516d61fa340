package rtspserve

import (
	"crypto/md5" //nolint:gosec // RTSP Digest (RFC 2617) is defined over MD5
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
)

// HA1 returns MD5(name:Realm:secret), the value an operator configures to
// enable RTSP Digest for a principal (`cordon hash-password --rtsp-digest`).
func HA1(name, secret string) string {
	return md5hex(name + ":" + Realm + ":" + secret)
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s)) //nolint:gosec
	return hex.EncodeToString(h[:])
}

// verifyDigest checks an RFC 2617 Digest response (no qop, as RTSP clients
// such as ffmpeg and VLC send it) against a stored HA1.
func verifyDigest(req *base.Request, a *headers.Authorization, ha1, nonce string) error {
	if a.Realm != Realm {
		return errors.New("wrong realm")
	}
	if subtle.ConstantTimeCompare([]byte(a.Nonce), []byte(nonce)) != 1 {
		return errors.New("stale nonce")
	}
	if !uriMatches(req, a.URI) {
		return errors.New("wrong uri")
	}
	want := md5hex(ha1 + ":" + nonce + ":" + md5hex(string(req.Method)+":"+a.URI))
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(a.Response)), []byte(want)) != 1 {
		return errors.New("authentication failed")
	}
	return nil
}

// uriMatches accepts the digest uri when it names the requested resource
// (clients differ: absolute URL, path only, with or without a track suffix).
func uriMatches(req *base.Request, uri string) bool {
	if req.URL == nil {
		return false
	}
	reqPath := strings.TrimSuffix(req.URL.Path, "/")
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	p := strings.TrimSuffix(u.Path, "/")
	return p == reqPath || strings.HasPrefix(reqPath, p+"/") || strings.HasPrefix(p, reqPath+"/")
}
