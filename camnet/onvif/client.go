// Package onvif is cordon's ONVIF client to cameras: the device service
// (information, capabilities/services, time, and the network settings the
// hardening work reads and sets), the media service (profiles) and the PTZ
// service (continuous move with timeout, stop, presets, home, status).
// Client implements ptz.Camera.
//
// The camera is the attacker. A Client talks only to the configured
// host:port: service addresses a camera returns are rewritten to it (only
// their path is kept), redirects are never followed, no proxy is used, the
// dialer refuses any other address, and answers are bounded in size and
// time. Credentials go only into requests to that host:port. Errors name
// the camera and the operation, carry the camera's fault text clipped and
// cleaned, and never a secret.
//
// Authentication: WS-Security UsernameToken PasswordDigest on every
// request (with the camera's clock offset, learnt from
// GetSystemDateAndTime), and HTTP Digest when the camera challenges for it.
//
// No maintained Go ONVIF library fits: the ones there are (use-go/onvif and
// its forks) post to whatever service address the camera returns with a
// default http.Client (redirects followed, no size bound), which is what
// this package exists to prevent.
package onvif

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"cordon/internal/httpdigest"
	"cordon/internal/soap"
)

// Defaults of a Client.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	maxHeaderBytes          = 16 << 10
	maxServicePath          = 512
)

// Client speaks ONVIF to one camera. Set the fields, call Initialize;
// methods are safe for concurrent use.
type Client struct {
	// CameraID names the camera in errors and logs.
	CameraID string
	// URL is the device service, e.g. "http://10.20.0.12/onvif/device_service"
	// (config cameras[].onvif). It must not hold credentials.
	URL string
	// Username and Password are the camera's credentials.
	Username, Password string
	// Timeout bounds each request (5 s).
	Timeout time.Duration
	// MaxResponseBytes bounds each answer (1 MiB).
	MaxResponseBytes int64
	// TLSConfig for https device URLs (nil = verify against system roots).
	TLSConfig *tls.Config
	Logger    *slog.Logger
	// Now is the clock (nil = time.Now).
	Now func() time.Time

	log      *slog.Logger
	base     *url.URL // scheme://host:port of URL
	hostport string
	devPath  string
	http     *http.Client

	mu         sync.Mutex
	offset     time.Duration // camera clock minus ours
	timeSynced time.Time
	challenge  *httpdigest.Challenge
	nc         uint32
	warnedHost bool
	disc       *discovery
}

// Error is what every Client method returns on failure.
type Error struct {
	Camera, Op string
	Err        error
}

func (e *Error) Error() string {
	return "onvif camera " + e.Camera + ": " + e.Op + ": " + e.Err.Error()
}
func (e *Error) Unwrap() error { return e.Err }

// Errors a caller may test for (errors.Is).
var (
	ErrRedirect     = errors.New("camera answered with a redirect (not followed)")
	ErrNoPTZ        = errors.New("camera has no PTZ service or no profile with a PTZ configuration")
	ErrUnauthorized = errors.New("camera refused the credentials")
	ErrTooLarge     = errors.New("camera answer over the size limit")
)

// Initialize checks the URL and builds the HTTP client. It does not
// contact the camera.
func (c *Client) Initialize() error {
	c.log = c.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("camera", c.CameraID, "component", "onvif")
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &Error{c.CameraID, "configure", errors.New("onvif URL must be http:// or https:// with a host")}
	}
	if u.User != nil {
		return &Error{c.CameraID, "configure", errors.New("onvif URL must not hold credentials (use the camera's username and password)")}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	c.hostport = net.JoinHostPort(u.Hostname(), port)
	c.base = &url.URL{Scheme: u.Scheme, Host: u.Host}
	c.devPath = u.EscapedPath()
	if c.devPath == "" {
		c.devPath = "/onvif/device_service"
	}
	dialer := &net.Dialer{Timeout: c.Timeout}
	tr := &http.Transport{
		Proxy: nil, // a proxy would receive the credentials
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != c.hostport {
				return nil, fmt.Errorf("refusing to connect to %s: not the camera's address", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:        c.TLSConfig,
		TLSHandshakeTimeout:    c.Timeout,
		ResponseHeaderTimeout:  c.Timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
	}
	c.http = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() {
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

// servicePath keeps only the path (and query) of a service address the
// camera returned; the scheme and host:port are always the configured ones.
func (c *Client) servicePath(xaddr string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(xaddr))
	if err != nil || u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("camera returned an unusable service address %q", soap.Clip(xaddr, 80))
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if len(p) > maxServicePath {
		return "", errors.New("camera returned a service address that is too long")
	}
	if u.Host != "" && (u.Host != c.base.Host || u.Scheme != c.base.Scheme) {
		c.mu.Lock()
		warn := !c.warnedHost
		c.warnedHost = true
		c.mu.Unlock()
		if warn {
			c.log.Warn("camera reports its services at another address; using the configured one",
				"reported", soap.Clip(u.Scheme+"://"+u.Host, 80), "path", soap.Clip(p, 80))
		}
	}
	return p, nil
}

// call sends one operation to a service path and returns the response
// payload (the element after Body), or an *Error.
func (c *Client) call(ctx context.Context, op, path string, body soap.Node, auth bool) (*soap.Element, error) {
	p, err := c.roundTrip(ctx, op, path, body, auth)
	if err != nil {
		return nil, &Error{c.CameraID, op, err}
	}
	return p, nil
}

// (Function over 50 lines: one exchange with its retry rules.)
func (c *Client) roundTrip(ctx context.Context, op, path string, body soap.Node, auth bool) (*soap.Element, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	ns := strings.TrimSuffix(nsOfPrefix(body.Name), "/")
	resynced := false
	for attempt := 0; attempt < 3; attempt++ {
		res, data, err := c.post(ctx, ns+"/"+op, path, body, auth)
		if err != nil {
			return nil, err
		}
		if res.StatusCode == http.StatusUnauthorized {
			ch, cerr := httpdigest.FindChallenge(res.Header.Values("WWW-Authenticate"))
			c.mu.Lock()
			fresh := c.challenge == nil || cerr == nil && ch.Nonce != c.challenge.Nonce
			if cerr == nil {
				c.challenge, c.nc = ch, 0
			}
			c.mu.Unlock()
			if cerr == nil && auth && fresh {
				continue
			}
			return nil, ErrUnauthorized
		}
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			return nil, ErrRedirect
		}
		env, perr := soap.ParseEnvelopeBytes(data, soap.Limits{MaxBytes: c.MaxResponseBytes})
		if perr != nil {
			if res.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("HTTP %d", res.StatusCode)
			}
			return nil, fmt.Errorf("malformed answer: %w", perr)
		}
		if f := soap.FaultOf(env); f != nil {
			// a camera whose clock moved refuses our Created: learn its
			// time again and retry once
			if auth && !resynced && isAuthFault(f) {
				resynced = true
				if c.syncTime(ctx) == nil {
					continue
				}
			}
			if isAuthFault(f) {
				return nil, fmt.Errorf("%w (%v)", ErrUnauthorized, f)
			}
			return nil, f
		}
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d", res.StatusCode)
		}
		p := env.Payload()
		if p == nil || p.Local != op+"Response" {
			got := "nothing"
			if p != nil {
				got = "<" + soap.Clip(p.Local, 60) + ">"
			}
			return nil, fmt.Errorf("unexpected answer %s", got)
		}
		return p, nil
	}
	return nil, ErrUnauthorized
}

func isAuthFault(f *soap.Fault) bool {
	return f.Has("", "NotAuthorized") || f.Has("", "FailedAuthentication") || f.Has("", "InvalidSecurity")
}

// post sends the request and reads the bounded answer.
func (c *Client) post(ctx context.Context, action, path string, body soap.Node, auth bool) (*http.Response, []byte, error) {
	msg := &soap.Message{Body: []soap.Node{body}}
	if auth && c.Username != "" {
		c.mu.Lock()
		now := c.Now().Add(c.offset)
		c.mu.Unlock()
		tok, err := soap.NewUsernameToken(c.Username, c.Password, now)
		if err != nil {
			return nil, nil, err
		}
		msg.Header = []soap.Node{tok.Node()}
	}
	u := c.base.String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(msg.Bytes()))
	if err != nil {
		return nil, nil, fmt.Errorf("bad service address")
	}
	req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
	if auth && c.Username != "" {
		c.mu.Lock()
		ch := c.challenge
		c.nc++
		nc := c.nc
		c.mu.Unlock()
		if ch != nil {
			h, err := ch.Authorization(http.MethodPost, req.URL.RequestURI(), c.Username, c.Password, nc)
			if err != nil {
				return nil, nil, err
			}
			req.Header.Set("Authorization", h)
		}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, nil, scrub(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, c.MaxResponseBytes+1))
	if err != nil {
		return nil, nil, scrub(err)
	}
	if int64(len(data)) > c.MaxResponseBytes {
		return nil, nil, ErrTooLarge
	}
	return res, data, nil
}

// scrub reduces a transport error to its cause (the URL holds no secret,
// but the message is shorter and stable without it).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	return err
}

// ErrTimeout: the camera did not answer within Timeout (or the caller's
// deadline). It also matches context.DeadlineExceeded with errors.Is.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string        { return "no answer in time" }
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// nsOfPrefix maps a Node name's prefix to its namespace (for SOAP action).
func nsOfPrefix(name string) string {
	p, _, _ := strings.Cut(name, ":")
	return soap.Prefix(p)
}
