package democam

import (
	"net"
	"net/http"
	"sync"
	"time"

	"cordon/internal/httpdigest"
	"cordon/internal/soap"
)

// ONVIFQuirks reproduce ONVIF behaviours of real cameras on a PTZCamera
// (zero = a well-behaved camera).
type ONVIFQuirks struct {
	// SOAP11 answers every request in SOAP 1.1 (text/xml), as older OEM
	// firmware does.
	SOAP11 bool
	// HTTPDigestOnly ignores WS-Security and wants HTTP Digest.
	HTTPDigestOnly bool
	// ClockOffset is how wrong the camera's clock is; WS-Security Created
	// is checked against it (5-minute window).
	ClockOffset time.Duration
	// ForeignXAddrs reports service addresses on another host
	// (http://192.0.2.64/...), as a camera behind NAT does.
	ForeignXAddrs bool
	// ContinuousOnly: no presets and no home position (GetPresets,
	// GotoPreset, GotoHomePosition answer ter:ActionNotSupported and
	// GetNodes says so).
	ContinuousOnly bool
	// NoGetCapabilities: GetCapabilities answers ActionNotSupported; the
	// services are found with GetServices.
	NoGetCapabilities bool
	// IgnoreTimeout: ContinuousMove's Timeout is ignored; the dome moves
	// until Stop.
	IgnoreTimeout bool
}

// Service paths of a PTZCamera (Hikvision-style).
const (
	DevicePath = "/onvif/device_service"
	MediaPath  = "/onvif/Media"
	PTZPath    = "/onvif/PTZ"
)

const maxCallLog = 1000

// onvifServer answers device, media and PTZ requests for one PTZCamera.
type onvifServer struct {
	cam      *PTZCamera
	q        ONVIFQuirks
	verifier *soap.Verifier
	digest   *httpdigest.Server
	mgmt     *deviceMgmt

	mu    sync.Mutex
	calls []string
}

type opFunc func(req *soap.Element) ([]soap.Node, *soap.Fault)

func newONVIFServer(c *PTZCamera) (*onvifServer, error) {
	s := &onvifServer{cam: c, q: c.ONVIF, mgmt: &deviceMgmt{s: FactorySettings()}}
	now := func() time.Time { return time.Now().Add(s.q.ClockOffset) }
	s.verifier = soap.NewVerifier()
	s.verifier.Now = now
	d, err := httpdigest.NewServer("democam-" + c.ID)
	if err != nil {
		return nil, err
	}
	s.digest = d
	return s, nil
}

func (s *onvifServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ops map[string]opFunc
	switch r.URL.Path {
	case DevicePath:
		ops = s.deviceOps()
	case MediaPath:
		ops = s.mediaOps()
	case PTZPath:
		ops = s.ptzOps()
	default:
		http.NotFound(w, r)
		return
	}
	env, f := soap.ReadRequest(w, r, soap.Limits{MaxBytes: 64 << 10})
	v := soap.RequestVersion(r)
	if env != nil {
		v = env.Version
	}
	if s.q.SOAP11 {
		v = soap.SOAP11
	}
	if f != nil {
		soap.WriteFault(w, v, f)
		return
	}
	p := env.Payload()
	if p == nil {
		soap.WriteFault(w, v, soap.WellFormed("empty Body"))
		return
	}
	op, ok := ops[p.Local]
	if !ok {
		s.log(p.Local + " (unsupported)")
		soap.WriteFault(w, v, soap.ActionNotSupported())
		return
	}
	if p.Local != "GetSystemDateAndTime" && !s.authorized(w, r, env) {
		s.log(p.Local + " (refused)")
		return
	}
	s.log(p.Local)
	res, f := op(p)
	if f != nil {
		soap.WriteFault(w, v, f)
		return
	}
	soap.WriteResponse(w, v, res...)
}

// authorized checks HTTP Digest or WS-Security and answers the refusal
// itself: 401 with a Digest challenge when no credentials came, a
// NotAuthorized fault for a bad token.
func (s *onvifServer) authorized(w http.ResponseWriter, r *http.Request, env *soap.Envelope) bool {
	users := func(u string) (string, bool) { return s.cam.Password, u == s.cam.Username }
	if s.cam.Username == "" {
		return true
	}
	if r.Header.Get("Authorization") != "" {
		if _, err := s.digest.Verify(r, users); err == nil {
			return true
		}
	}
	if !s.q.HTTPDigestOnly {
		tok, err := soap.ParseUsernameToken(env.Header)
		if err == nil {
			if tok.Username == s.cam.Username && s.verifier.VerifyDigest(tok, s.cam.Password) == nil {
				return true
			}
			v := env.Version
			if s.q.SOAP11 {
				v = soap.SOAP11
			}
			soap.WriteFault(w, v, soap.NotAuthorized())
			return false
		}
	}
	w.Header().Set("WWW-Authenticate", s.digest.Challenge())
	http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
	return false
}

func (s *onvifServer) log(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == maxCallLog {
		s.calls = s.calls[1:]
	}
	s.calls = append(s.calls, op)
}

// xaddr is the address of a service as this camera reports it.
func (s *onvifServer) xaddr(r string) string {
	if s.q.ForeignXAddrs {
		return "http://192.0.2.64" + r
	}
	return "http://" + s.cam.httpAddr + r
}

func isIP(v string) bool   { return net.ParseIP(v) != nil }
func isIPv4(v string) bool { ip := net.ParseIP(v); return ip != nil && ip.To4() != nil }
