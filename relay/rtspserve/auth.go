package rtspserve

import (
	"context"
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"cordon/relay"
	"cordon/relay/session"
)

// Authentication runs on every DESCRIBE, SETUP and PLAY against the
// owner's current credentials: nothing of an Authorization header is
// remembered across requests, so a changed password or Digest secret
// refuses the next request of a connection opened with the old one (and
// the owner's live re-check closes the connection: Conns, CloseConn).
// The server issues and checks Digest nonces itself (one per connection,
// fresh for NonceTTL; with qop=auth the nonce count must grow), so a
// captured Digest answer is worth nothing on another connection, and
// hands the owner only a response it may judge. Every failure the server
// detects itself goes to Access.Failed, which counts it towards the
// lockout like a wrong password; a stale nonce is not a failure (the
// client is challenged again).

// DefaultNonceTTL is how long a Digest nonce is accepted after it was
// issued; a request with an older one is challenged again (stale=TRUE).
const DefaultNonceTTL = 5 * time.Minute

// authTimeout bounds one password verification (waiting for a hashing
// slot included).
const authTimeout = 15 * time.Second

// Refusal is an Access error that carries the RTSP answer: the owner maps
// its decisions (lockout: 503 + Retry-After, not permitted: 403, no such
// camera: 404, audit log down: 503, bad credentials: 401) into it. An
// error of any other type answers 401 with a challenge.
type Refusal struct {
	Status     int
	RetryAfter time.Duration
	Err        error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return "refused with status " + strconv.Itoa(r.Status)
}

func (r *Refusal) Unwrap() error { return r.Err }

func (s *Server) conn(c *gortsplib.ServerConn) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[c]
}

// errResponse is a refusal with its status.
func errResponse(code base.StatusCode) *base.Response {
	return &base.Response{StatusCode: code}
}

func (s *Server) digest() bool { return s.DigestEnabled != nil && s.DigestEnabled() }

func (s *Server) basicAllowed() bool { return s.AllowBasic || s.TLSConfig != nil }

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// challenge is a 401 offering the schemes the server accepts, with the
// connection's current nonce (a new one when it has none or it is stale).
func (s *Server) challenge(st *connState, stale bool) *base.Response {
	var h base.HeaderValue
	if s.digest() {
		s.mu.Lock()
		if st.nonce == "" || s.clock().Sub(st.nonceAt) > s.NonceTTL {
			st.nonce, st.nonceAt, st.nc = session.NewID(), s.clock(), 0
		}
		nonce := st.nonce
		s.mu.Unlock()
		alg := headers.AuthAlgorithmMD5
		a := headers.Authenticate{Method: headers.AuthMethodDigest, Realm: Realm, Nonce: nonce, Algorithm: &alg}
		if stale {
			t := "TRUE"
			a.Stale = &t
		}
		h = append(h, a.Marshal()...)
	}
	if s.basicAllowed() {
		h = append(h, headers.Authenticate{Method: headers.AuthMethodBasic, Realm: Realm}.Marshal()...)
	}
	return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{"WWW-Authenticate": h}}
}

// refuse answers err: a Refusal's status (401 with a challenge), any other
// error 401.
func (s *Server) refuse(st *connState, err error) *base.Response {
	var r *Refusal
	if !errors.As(err, &r) || r.Status == int(base.StatusUnauthorized) || r.Status == 0 {
		return s.challenge(st, false)
	}
	res := &base.Response{StatusCode: base.StatusCode(r.Status), Header: base.Header{}}
	if r.RetryAfter > 0 {
		res.Header["Retry-After"] = base.HeaderValue{strconv.Itoa(max(1, int((r.RetryAfter+time.Second-1)/time.Second)))}
	}
	return res
}

// failed counts a failure the server detected itself and answers it.
func (s *Server) failed(st *connState, name, detail string) *base.Response {
	return s.refuse(st, s.Access.Failed(name, st.remote, detail))
}

// authenticate checks the request's credentials now; a nil response means
// the request may go on as v.
func (s *Server) authenticate(c *gortsplib.ServerConn, req *base.Request) (*connState, Viewer, *base.Response) {
	st := s.conn(c)
	if st == nil {
		return nil, Viewer{}, errResponse(base.StatusInternalServerError)
	}
	cred, perr := parseAuthorization(req.Header["Authorization"])
	// a locked address (or name from it) is refused before any work
	if err := s.Access.CheckLocked(cred.user, st.remote); err != nil {
		return nil, Viewer{}, s.refuse(st, err)
	}
	switch {
	case errors.Is(perr, errNoCredentials):
		return nil, Viewer{}, s.challenge(st, false)
	case perr != nil:
		return nil, Viewer{}, s.failed(st, cred.user, "malformed Authorization header: "+perr.Error())
	}
	var v Viewer
	var err error
	switch cred.scheme {
	case schemeBasic:
		if !s.basicAllowed() {
			return nil, Viewer{}, s.failed(st, cred.user, "Basic is not offered without TLS")
		}
		ctx, cancel := context.WithTimeout(s.ctx, authTimeout)
		v, err = s.Access.CheckPassword(ctx, cred.user, cred.pass, st.remote)
		cancel()
	default:
		d := cred.digest
		d.Method = string(req.Method)
		if res := s.checkDigest(st, req, d); res != nil {
			return nil, Viewer{}, res
		}
		v, err = s.Access.CheckDigest(d, st.remote)
	}
	if err != nil {
		return nil, Viewer{}, s.refuse(st, err)
	}
	return st, v, nil
}

// checkDigest checks what the server owns of a Digest answer: the scheme
// is offered, MD5, our realm, a nonce this connection was given and still
// fresh (else a new challenge, not a failure), a growing nonce count with
// qop=auth, and a uri naming the requested resource.
func (s *Server) checkDigest(st *connState, req *base.Request, d Digest) *base.Response {
	switch {
	case !s.digest():
		return s.failed(st, d.Username, "Digest is not offered")
	case d.Algorithm != "" && !strings.EqualFold(d.Algorithm, "MD5"):
		return s.failed(st, d.Username, "unsupported Digest algorithm")
	case d.Realm != Realm:
		return s.failed(st, d.Username, "Digest realm is not cordon's")
	case d.QOP != "" && d.QOP != "auth":
		return s.failed(st, d.Username, "unsupported Digest qop")
	}
	s.mu.Lock()
	fresh := st.nonce != "" && subtle.ConstantTimeCompare([]byte(d.Nonce), []byte(st.nonce)) == 1 &&
		s.clock().Sub(st.nonceAt) <= s.NonceTTL
	replay := false
	if fresh && d.QOP == "auth" {
		nc, err := strconv.ParseUint(d.NC, 16, 64)
		if replay = err != nil || nc <= st.nc; !replay {
			st.nc = nc
		}
	}
	s.mu.Unlock()
	switch {
	case !fresh:
		return s.challenge(st, true)
	case replay:
		return s.failed(st, d.Username, "Digest nonce count replayed")
	case !uriMatches(req, d.URI):
		return s.failed(st, d.Username, "Digest uri does not name the request")
	}
	return nil
}

// cameraOf maps an RTSP path to a camera id ("/gate-north" or with a
// trailing track part added by some clients on SETUP).
func cameraOf(path string) string {
	p := strings.Trim(path, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	return p
}

// streamOf maps an RTSP path to the camera's stream: "/{camera}/sub" (and
// paths under it) is the sub stream, anything else the main stream.
func streamOf(path string) string {
	parts := strings.SplitN(strings.Trim(path, "/"), "/", 3)
	if len(parts) > 1 && parts[1] == "sub" {
		return "sub"
	}
	return ""
}

// descKey names a path's stream in a connection's DESCRIBE results.
func descKey(path string) string {
	if name := streamOf(path); name != "" {
		return cameraOf(path) + "/" + name
	}
	return cameraOf(path)
}

// authorize authenticates the request and asks Access whether its
// principal may view the camera now (permission before existence: a
// camera outside the principal's rights gets the same answer whether or
// not it exists); it returns the stream.
func (s *Server) authorize(c *gortsplib.ServerConn, req *base.Request, path string) (*connState, Viewer, *relay.Stream, *base.Response) {
	camera := cameraOf(path)
	st, v, res := s.authenticate(c, req)
	if res != nil {
		return nil, Viewer{}, nil, res
	}
	ctx, cancel := context.WithTimeout(s.ctx, authTimeout)
	err := s.Access.Authorize(ctx, v, camera, streamOf(path), st.remote)
	cancel()
	if err != nil {
		return nil, Viewer{}, nil, s.refuse(st, err)
	}
	stream := s.Hub.Lookup(camera, streamOf(path))
	if stream == nil { // permitted, and gone since
		return nil, Viewer{}, nil, errResponse(base.StatusNotFound)
	}
	s.mu.Lock()
	st.viewer, st.camera = v, camera
	s.mu.Unlock()
	return st, v, stream, nil
}

// samePrincipal reports whether two viewers are the same principal.
func samePrincipal(a, b Viewer) bool {
	return a.Name == b.Name && a.Kind == b.Kind && a.Source == b.Source
}
