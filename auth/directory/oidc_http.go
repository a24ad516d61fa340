package directory

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxIssuerResponse bounds every response read from the issuer
// (discovery, JWKS, token, userinfo).
const maxIssuerResponse = 1 << 20

// issuerClient returns the HTTP client cordon uses towards the issuer:
// only the issuer's scheme, host and port, the configured CA, no proxy, no
// redirects, timeouts on every phase, and bounded bodies.
func issuerClient(issuer *url.URL, roots *x509.CertPool, timeout time.Duration) *http.Client {
	base := &http.Transport{
		Proxy:                  nil, // a closed network: never an environment proxy
		DialContext:            (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:        clientTLS(roots, issuer.Hostname()),
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConnsPerHost:    4,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &issuerTransport{base: base, scheme: issuer.Scheme, host: issuer.Host},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the issuer answered with a redirect; cordon follows none")
		},
	}
}

// issuerTransport refuses any request that is not to the issuer's origin,
// whatever URL a discovery document names, and bounds response bodies.
type issuerTransport struct {
	base         *http.Transport
	scheme, host string
}

func (t *issuerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != t.scheme || !strings.EqualFold(r.URL.Host, t.host) {
		return nil, fmt.Errorf("request to %s refused: only the issuer's origin is reached", r.URL.Redacted())
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxIssuerResponse {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("response from %s larger than %d bytes", r.URL.Path, maxIssuerResponse)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxIssuerResponse}
	return resp, nil
}

func (t *issuerTransport) closeIdle() { t.base.CloseIdleConnections() }

// errTooLarge: a response exceeded maxIssuerResponse.
var errTooLarge = errors.New("issuer response too large")

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// one more byte would exceed the bound
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// sameOrigin reports whether u has the issuer's scheme, host and port.
func sameOrigin(issuer *url.URL, raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == issuer.Scheme && strings.EqualFold(u.Host, issuer.Host)
}
