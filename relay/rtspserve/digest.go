package rtspserve

import (
	"crypto/md5" //nolint:gosec // RTSP Digest (RFC 2617) is defined over MD5
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// HA1 returns MD5(name:Realm:secret), the value an operator configures to
// enable RTSP Digest for a principal (`cordon hash-password --rtsp-digest`).
func HA1(name, secret string) string {
	h := md5.Sum([]byte(name + ":" + Realm + ":" + secret)) //nolint:gosec
	return hex.EncodeToString(h[:])
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
