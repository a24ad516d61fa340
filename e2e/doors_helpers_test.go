package e2e

// Helpers of the doors-wiring end-to-end tests (doors_*_test.go, issue
// 10's "Done when"). Names carry a "dw" prefix; the access-control
// helpers of helpers_doors_test.go ("dr") are reused.

import (
	"crypto/md5" //nolint:gosec // RTSP Digest is MD5
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"cordon/internal/testtool"
)

// dwRTSP is one RTSP connection driven by hand from a chosen loopback
// address (testtool.RTSPConn) that remembers its last Digest nonce.
type dwRTSP struct {
	*testtool.RTSPConn
	addr  string
	nonce string
}

func dwRTSPDial(t *testing.T, addr, src string) *dwRTSP {
	t.Helper()
	return &dwRTSP{RTSPConn: testtool.DialRTSP(t, addr, src), addr: addr}
}

// do sends one request; status 0 means the server closed the connection.
// A Digest challenge's nonce is remembered.
func (r *dwRTSP) do(method, path, authz string) (int, http.Header) {
	code, hdr := r.Do(method, path, authz)
	for _, v := range hdr.Values("WWW-Authenticate") {
		var a headers.Authenticate
		if strings.HasPrefix(v, "Digest") && a.Unmarshal(base.HeaderValue{v}) == nil {
			r.nonce = a.Nonce
		}
	}
	return code, hdr
}

// digest answers the connection's last challenge for method on path.
func (r *dwRTSP) digest(user, secret, method, path string) string {
	uri := "rtsp://" + r.addr + "/" + path
	md := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) } //nolint:gosec
	ha1 := md(user + ":cordon:" + secret)
	resp := md(ha1 + ":" + r.nonce + ":" + md(method+":"+uri))
	return fmt.Sprintf(`Digest username="%s", realm="cordon", nonce="%s", uri="%s", response="%s"`, user, r.nonce, uri, resp)
}

func dwBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// dwOfferNoCandidates is a browser-like WHEP offer whose own candidates
// are removed: the session never connects, and ICE checks go only where a
// later PATCH says.
func dwOfferNoCandidates(t *testing.T) string {
	t.Helper()
	return testtool.StripCandidates(drOffer(t))
}

func dwUfrag(sdp string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// dwClosedAtOnce reports whether the server closes c (after at most a
// short refusal it writes) rather than keeping it open: it reads until
// EOF or until within passes with the connection still open.
func dwClosedAtOnce(c net.Conn, within time.Duration) (closed bool, said string) {
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(io.LimitReader(c, 4096))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b)
}
