package harden

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"cordon/internal/httpdigest"
)

// Defaults of the camera HTTP client's bounds.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxBody        = 256 << 10
	maxHeaderBytes        = 16 << 10
)

// Errors the client classifies; they are wrapped with the request.
var (
	// ErrAbsent: the camera answers that it has no such feature (404, or
	// the vendor's "not supported").
	ErrAbsent = errors.New("the camera has no such setting")
	// ErrRedirect: the camera answered with a redirect, which is never
	// followed.
	ErrRedirect = errors.New("camera answered with a redirect, which cordon never follows")
	// ErrUnauthorized: the camera refused the credentials.
	ErrUnauthorized = errors.New("camera refused the credentials (401)")
	// ErrForbidden: the credentials lack the right to do this.
	ErrForbidden = errors.New("camera refused the request (403): the user lacks the right")
	// errTooLarge: the answer was larger than MaxBody.
	errTooLarge = errors.New("answer too large")
)

// Client is the HTTP client for one camera's management interface. It
// connects only to that camera's host and port (whatever a URL says),
// never follows redirects, never uses a proxy, bounds answer sizes and
// times, and sends the credentials only after the camera asked for them:
// as Digest, or as Basic only over https to a camera whose certificate
// is verified (RootCAs) or pinned (CertSHA256) — Basic carries the
// password itself, which an unverified TLS peer (anyone spoofing the
// camera's address) would read.
type Client struct {
	Camera   string   // camera id, for errors
	Base     *url.URL // scheme://host[:port]
	Username string
	Password string
	// RootCAs, when set, verifies the camera's https certificate (chain
	// and the admin URL's host); every connection is refused otherwise.
	RootCAs *x509.CertPool
	// CertSHA256, when set (32 bytes), pins the SHA-256 of the camera's
	// https leaf certificate (DER); every connection to another
	// certificate is refused. Self-signed camera certificates need this.
	CertSHA256 []byte
	// Timeout bounds each request, answer included (0 = 10 s).
	Timeout time.Duration
	// MaxBody bounds each answer body (0 = 256 KiB).
	MaxBody int64
	// ONVIF, when set, is the client of the camera's ONVIF device service
	// where it is not Base + /onvif/device_service (cameras[].onvif on
	// another port or path): the ONVIF vendor talks there. DevicePath is
	// this client's device service path ("" = /onvif/device_service).
	ONVIF      *Client
	DevicePath string

	once    sync.Once
	hc      *http.Client
	tr      *http.Transport
	target  string
	initErr error

	mu    sync.Mutex
	chal  *httpdigest.Challenge
	basic bool // the camera offers Basic only and its certificate is verified
	nc    uint32
}

// Response is a camera's answer, read whole within the bounds.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (c *Client) init() {
	c.once.Do(func() {
		if c.Base == nil || c.Base.Hostname() == "" || (c.Base.Scheme != "http" && c.Base.Scheme != "https") {
			c.initErr = errors.New("no valid admin URL")
			return
		}
		port := c.Base.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[c.Base.Scheme]
		}
		c.target = net.JoinHostPort(c.Base.Hostname(), port)
		timeout := c.timeout()
		dialer := &net.Dialer{Timeout: timeout}
		target := c.target
		c.tr = &http.Transport{
			Proxy: nil, // never a proxy: credentials go to the camera only
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr != target {
					return nil, fmt.Errorf("refusing to connect to %s: only the camera at %s", addr, target)
				}
				return dialer.DialContext(ctx, "tcp", target)
			},
			TLSClientConfig:        c.tlsConfig(),
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: maxHeaderBytes,
			DisableCompression:     true,
			MaxIdleConns:           2,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
		}
		c.hc = &http.Client{
			Transport: c.tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	})
}

// tlsConfig is the TLS configuration of every connection to the camera.
// Without RootCAs or CertSHA256 the certificate is not checked (cameras
// ship self-signed certificates): the connection then carries only Digest
// or WS-Security digests, never the password itself (see verified).
func (c *Client) tlsConfig() *tls.Config {
	host := ""
	if c.Base != nil {
		host = c.Base.Hostname()
	}
	pin, roots := c.CertSHA256, c.RootCAs
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is done in VerifyConnection: against RootCAs and
		// the configured host, and/or the pin.
		InsecureSkipVerify: true, //nolint:gosec // see VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyCamera(cs, host, roots, pin)
		},
	}
}

// verifyCamera checks a camera's certificate against the pin and the CA
// (when configured); with neither it accepts any certificate.
func verifyCamera(cs tls.ConnectionState, host string, roots *x509.CertPool, pin []byte) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the camera sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if len(pin) > 0 {
		sum := sha256.Sum256(leaf.Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return fmt.Errorf("the camera's certificate (SHA-256 %s) is not the pinned one (admin_cert_sha256)", hex.EncodeToString(sum[:]))
		}
	}
	if roots != nil {
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
			return fmt.Errorf("the camera's certificate is not valid for %s under admin_ca_file: %w", host, err)
		}
	}
	return nil
}

// verified reports whether the camera's identity is checked on every
// connection (https with a CA or a pin), the condition for Basic.
func (c *Client) verified() bool {
	return c.Base != nil && c.Base.Scheme == "https" && (c.RootCAs != nil || len(c.CertSHA256) > 0)
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultRequestTimeout
}

func (c *Client) maxBody() int64 {
	if c.MaxBody > 0 {
		return c.MaxBody
	}
	return DefaultMaxBody
}

// Close drops idle connections.
func (c *Client) Close() {
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}

// Do sends an authenticated request (Digest after the camera's 401) and
// returns the answer. A redirect, a 401 after the credentials were sent, a
// body over MaxBody and a timeout are errors; other statuses are returned
// for the caller to interpret. pathQuery is appended to Base verbatim.
func (c *Client) Do(ctx context.Context, method, pathQuery, contentType string, body []byte) (*Response, error) {
	return c.do(ctx, method, pathQuery, contentType, body, true)
}

// Anonymous sends a request without credentials, whatever the camera asks;
// vendor detection uses it before the vendor is known.
func (c *Client) Anonymous(ctx context.Context, method, pathQuery, contentType string, body []byte) (*Response, error) {
	return c.do(ctx, method, pathQuery, contentType, body, false)
}

func (c *Client) do(ctx context.Context, method, pathQuery, contentType string, body []byte, auth bool) (*Response, error) {
	c.init()
	if c.initErr != nil {
		return nil, c.initErr
	}
	fresh := false // the challenge in use came from this call's own 401
	for attempt := 0; attempt < 3; attempt++ {
		authz, err := c.authorization(auth, method, pathQuery)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, method, pathQuery, contentType, body, authz)
		if err != nil {
			return nil, err
		}
		if resp.Status != http.StatusUnauthorized || !auth {
			return resp, nil
		}
		ch, basic, err := pickChallenge(resp.Header.Values("WWW-Authenticate"), c.Base.Scheme, c.verified())
		if err != nil {
			return nil, err
		}
		if authz != "" && fresh && (ch == nil || !ch.Stale) {
			return nil, ErrUnauthorized
		}
		c.mu.Lock()
		c.chal, c.basic, c.nc = ch, basic, 0
		c.mu.Unlock()
		fresh = true
	}
	return nil, ErrUnauthorized
}

// authorization returns the Authorization header for the cached
// challenge ("" when there is none or auth is off).
func (c *Client) authorization(auth bool, method, pathQuery string) (string, error) {
	if !auth {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.basic {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)), nil
	}
	if c.chal == nil {
		return "", nil
	}
	c.nc++
	uri := pathQuery
	if u, err := url.Parse(pathQuery); err == nil {
		uri = u.RequestURI() // exactly the request-target Go will send
	}
	h, err := c.chal.Authorization(method, uri, c.Username, c.Password, c.nc)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNoUsableAuth, err)
	}
	return h, nil
}

// errNoUsableAuth: the camera asks for authentication cordon will not or
// cannot give; nothing else on that camera can work.
var errNoUsableAuth = errors.New("no usable authentication")

// pickChallenge chooses how to answer a 401: Digest (MD5 or SHA-256,
// internal/httpdigest), or Basic only when the camera offers nothing else
// and its https certificate is verified or pinned (Basic sends the password
// itself: over plain HTTP, or to an unverified TLS peer, anyone who takes
// the camera's address on the camera network would read it).
func pickChallenge(values []string, scheme string, verified bool) (*httpdigest.Challenge, bool, error) {
	ch, err := httpdigest.FindChallenge(values)
	if err == nil {
		return ch, false, nil
	}
	basic := false
	for _, v := range values {
		if len(v) >= 5 && strings.EqualFold(v[:5], "basic") {
			basic = true
		}
	}
	switch {
	case basic && scheme == "https" && verified:
		return nil, true, nil
	case basic && scheme == "https" && errors.Is(err, httpdigest.ErrNoDigest):
		return nil, false, fmt.Errorf("%w: camera offers only Basic authentication (the password itself) and its https certificate is not verified; "+
			"cordon sends it only to a pinned (cameras[].admin_cert_sha256) or CA-verified (cameras[].admin_ca_file) certificate", errNoUsableAuth)
	case basic && errors.Is(err, httpdigest.ErrNoDigest):
		return nil, false, fmt.Errorf("%w: camera offers only Basic authentication over plain HTTP; cordon sends camera passwords with Digest only "+
			"(or Basic over https to a pinned or CA-verified certificate)", errNoUsableAuth)
	}
	return nil, false, fmt.Errorf("%w: camera asks for authentication cordon does not speak (%s)", errNoUsableAuth,
		clean(strings.TrimPrefix(err.Error(), "httpdigest: "), 80))
}

// roundTrip sends one request and reads the whole answer within bounds.
func (c *Client) roundTrip(ctx context.Context, method, pathQuery, contentType string, body []byte, authz string) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if !strings.HasPrefix(pathQuery, "/") {
		return nil, errors.New("request path must start with /")
	}
	u := c.Base.Scheme + "://" + c.Base.Host + pathQuery
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("cannot build the request")
	}
	if req.URL.Host != c.Base.Host {
		return nil, errors.New("request would leave the camera's host")
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set("User-Agent", "cordon-harden")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, describeNetErr(ctx, err, c.timeout())
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.StatusCode != http.StatusNotModified {
		return nil, ErrRedirect
	}
	max := c.maxBody()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, describeNetErr(ctx, err, c.timeout())
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, max)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// unreachableError: the camera did not answer (connection, timeout).
type unreachableError struct{ msg string }

func (e *unreachableError) Error() string { return e.msg }

// describeNetErr turns a transport error into a sentence without URLs.
func describeNetErr(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return &unreachableError{fmt.Sprintf("no complete answer within %v", timeout)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return &unreachableError{fmt.Sprintf("cannot reach the camera: %v", oe.Err)}
	}
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160]
	}
	return &unreachableError{"cannot reach the camera: " + msg}
}

// checkStatus maps the generic HTTP statuses to errors; 2xx and anything
// the vendor interprets itself pass.
func checkStatus(r *Response) error {
	switch r.Status {
	case http.StatusNotFound:
		return ErrAbsent
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusUnauthorized:
		return ErrUnauthorized
	}
	if r.Status >= 500 {
		return fmt.Errorf("camera answered %d", r.Status)
	}
	return nil
}
