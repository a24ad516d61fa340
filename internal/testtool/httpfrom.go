package testtool

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// HTTPClientFrom returns an HTTP client whose connections leave from the
// local IP src (a loopback address), so that per-address lockouts and caps
// under test count against that address alone. No keep-alive: every
// request is a new connection. tlsConf may be nil.
func HTTPClientFrom(src string, tlsConf *tls.Config, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: tlsConf, DisableKeepAlives: true},
		Timeout:   timeout,
	}
}
