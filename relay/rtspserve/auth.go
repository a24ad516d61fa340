package rtspserve

import (
	"errors"
	"strings"

	"github.com/bluenviron/gortsplib/v5"
	rtspauth "github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"cordon/relay"
)

// Authentication (Basic, Digest with a configured HA1) once per connection
// and Authorization header, and the camera check on every request.

func (s *Server) conn(c *gortsplib.ServerConn) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[c]
}

// errResponse is a refusal with its status.
func errResponse(code base.StatusCode) *base.Response {
	return &base.Response{StatusCode: code}
}

// authenticate checks the request's credentials; nil response means OK.
func (s *Server) authenticate(c *gortsplib.ServerConn, req *base.Request, camera string) (*connState, *base.Response) {
	st := s.conn(c)
	if st == nil {
		return nil, errResponse(base.StatusInternalServerError)
	}
	unauthorized := func() *base.Response {
		var methods []rtspauth.VerifyMethod
		if s.digest() {
			methods = append(methods, rtspauth.VerifyMethodDigestMD5)
		}
		if s.basicAllowed() {
			methods = append(methods, rtspauth.VerifyMethodBasic)
		}
		return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
			"WWW-Authenticate": rtspauth.GenerateWWWAuthenticate(methods, Realm, st.nonce),
		}}
	}
	raw := req.Header["Authorization"]
	if len(raw) != 1 {
		return nil, unauthorized()
	}
	s.mu.Lock()
	cached := st.authz != "" && st.authz == raw[0]
	s.mu.Unlock()
	if !cached {
		v, ok, err := s.verify(st, req, raw)
		if errors.Is(err, ErrUnavailable) {
			return nil, errResponse(base.StatusServiceUnavailable)
		}
		if !ok {
			// a failure Access judged (err) is Access's to audit: one
			// failure, one audit line
			if s.Events != nil && err == nil {
				s.Events.Denied(v.Name, camera, st.remote, "rtsp authentication failed")
			}
			return nil, unauthorized()
		}
		s.mu.Lock()
		st.authz, st.viewer = raw[0], v
		s.mu.Unlock()
	}
	return st, nil
}

func (s *Server) digest() bool { return s.DigestEnabled != nil && s.DigestEnabled() }

func (s *Server) basicAllowed() bool { return s.AllowBasic || s.TLSConfig != nil }

func (s *Server) verify(st *connState, req *base.Request, raw base.HeaderValue) (Viewer, bool, error) {
	var a headers.Authorization
	if err := a.Unmarshal(raw); err != nil {
		return Viewer{}, false, nil
	}
	switch a.Method {
	case headers.AuthMethodBasic:
		if !s.basicAllowed() {
			return Viewer{Name: a.Username}, false, nil
		}
		v, err := s.Access.CheckPassword(a.Username, a.BasicPass, st.remote)
		if err != nil {
			return Viewer{Name: a.Username}, false, err
		}
		return v, true, nil
	case headers.AuthMethodDigest:
		if !s.digest() || (a.Algorithm != nil && *a.Algorithm != headers.AuthAlgorithmMD5) {
			return Viewer{Name: a.Username}, false, nil
		}
		v, ha1, ok := s.Access.DigestHA1(a.Username)
		if !ok {
			return Viewer{Name: a.Username}, false, nil
		}
		if err := verifyDigest(req, &a, ha1, st.nonce); err != nil {
			return Viewer{Name: a.Username}, false, nil
		}
		return v, true, nil
	}
	return Viewer{}, false, nil
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

// authorize authenticates and checks the camera; it returns the stream.
func (s *Server) authorize(c *gortsplib.ServerConn, req *base.Request, path string) (*connState, *relay.Stream, *base.Response) {
	camera := cameraOf(path)
	st, res := s.authenticate(c, req, camera)
	if res != nil {
		return nil, nil, res
	}
	s.mu.Lock()
	v := st.viewer
	s.mu.Unlock()
	stream := s.Hub.Lookup(camera, streamOf(path))
	if stream == nil {
		return nil, nil, errResponse(base.StatusNotFound)
	}
	if !s.Access.CanView(v, camera) {
		if s.Events != nil {
			s.Events.Denied(v.Name, camera, st.remote, "camera not permitted")
		}
		return nil, nil, errResponse(base.StatusForbidden)
	}
	return st, stream, nil
}
