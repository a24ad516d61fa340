package onvifserve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cordon/internal/soap"
	"cordon/ptz"
)

// fuzzAccess is a fixed Access for the fuzz target: every name has the
// ONVIF secret "fuzz-secret" and views two cameras, one with PTZ whose
// control refuses every command.
type fuzzAccess struct{}

type fuzzAttempt struct{ name string }

func (fuzzAccess) BeginAttempt(name, _ string) (Attempt, error) { return fuzzAttempt{name}, nil }
func (fuzzAttempt) Secret() (string, bool)                      { return "fuzz-secret", true }
func (a fuzzAttempt) Succeeded() (Principal, error)             { return Principal{Name: a.name}, nil }
func (fuzzAttempt) Failed(string)                               {}
func (fuzzAttempt) Cancel()                                     {}

func (fuzzAccess) CheckPassword(_ context.Context, name, _, _ string) (Principal, error) {
	return Principal{Name: name}, nil
}

func (fuzzAccess) Cameras(context.Context, Principal) []Camera {
	return []Camera{{ID: "gate", Main: Stream{Codec: "H264", Width: 640, Height: 360}, Sub: &Stream{}, PTZ: true}, {ID: "yard"}}
}

func (fuzzAccess) AuthorizePTZ(context.Context, Principal, string, string) (int, error) {
	return 10, nil
}
func (fuzzAccess) PTZ(string) PTZControl        { return fuzzPTZ{} }
func (fuzzAccess) PTZGranted(string, Principal) {}

type fuzzPTZ struct{}

func (fuzzPTZ) Do(context.Context, ptz.Controller, ptz.Command) error {
	return &ptz.ConflictError{Holder: "someone", Until: time.Unix(0, 0)}
}

func (fuzzPTZ) Status(context.Context) ptz.Status {
	return ptz.Status{Presets: []ptz.Preset{{Token: "1", Name: "a"}}, Status: &ptz.CameraStatus{Position: &ptz.Position{}}}
}

// FuzzDispatch feeds arbitrary request bodies (and content types) through
// the whole request pipeline: parse, header checks, sign-in, dispatch.
// Every answer must be a SOAP envelope (or the 405/404 of the HTTP
// layer), never a panic or a bare error.
func FuzzDispatch(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok, _ := soap.NewUsernameToken("alice", "fuzz-secret", now)
	hdr := string((&soap.Message{Header: []soap.Node{tok.Node()}}).Bytes())
	hdr = hdr[strings.Index(hdr, "<wsse:Security"):strings.Index(hdr, "</s:Header>")]
	wrap := func(h, b string) string {
		return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="` + soap.NsDevice +
			`" xmlns:trt="` + soap.NsMedia + `" xmlns:tptz="` + soap.NsPTZ + `" xmlns:tt="` + soap.NsSchema + `"><s:Header>` + h + `</s:Header><s:Body>` + b + `</s:Body></s:Envelope>`
	}
	for _, b := range []string{
		`<tds:GetSystemDateAndTime/>`, `<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>`,
		`<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>`,
		`<trt:GetProfiles/>`, `<trt:GetProfile><trt:ProfileToken>gate.sub</trt:ProfileToken></trt:GetProfile>`,
		`<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream></trt:StreamSetup><trt:ProfileToken>gate</trt:ProfileToken></trt:GetStreamUri>`,
		`<tptz:ContinuousMove><tptz:ProfileToken>gate</tptz:ProfileToken><tptz:Velocity><tt:PanTilt x="1" y="-1"/></tptz:Velocity><tptz:Timeout>PT1S</tptz:Timeout></tptz:ContinuousMove>`,
		`<tptz:GetNodes/>`, `<tds:GetScopes/>`, `<trt:GetVideoSources/>`,
	} {
		f.Add(wrap(hdr, b), "application/soap+xml")
		f.Add(wrap("", b), "text/xml")
	}
	f.Add("<x", "application/soap+xml")
	s := &Server{RTSPPort: 8554, Access: fuzzAccess{}, Now: func() time.Time { return now }, Rate: 1e9, Burst: 1 << 30}
	if err := s.prepare(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, ctype string) {
		req := httptest.NewRequest(http.MethodPost, DevicePath, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.RemoteAddr = "192.0.2.9:4000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if _, err := soap.ParseEnvelopeBytes(w.Body.Bytes(), soap.Limits{}); err != nil {
			t.Fatalf("status %d, answer not SOAP: %v: %.200s", w.Code, err, w.Body.Bytes())
		}
	})
}

// FuzzDiscoveryProbe: any UDP datagram on the operator network reaches
// the WS-Discovery responder's parser. It never panics, answers only a
// Probe, and every answer is a well-formed ProbeMatches of bounded size
// (the MessageID it echoes is at most 256 bytes).
func FuzzDiscoveryProbe(f *testing.F) {
	probe := func(hdr, body string) string {
		return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"` +
			` xmlns:d="` + nsWSD + `" xmlns:dn="` + nsDN + `" xmlns:tds="` + soap.NsDevice + `"><s:Header>` + hdr +
			`</s:Header><s:Body>` + body + `</s:Body></s:Envelope>`
	}
	mid := `<a:MessageID>urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a</a:MessageID><a:Action>` + actionProbe + `</a:Action>`
	for _, b := range []string{
		`<d:Probe/>`, `<d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe>`,
		`<d:Probe><d:Types>tds:Device dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name</d:Scopes></d:Probe>`,
		`<d:Probe><d:Scopes MatchBy="` + nsWSD + `/rfc3986">onvif://www.onvif.org/type/</d:Scopes></d:Probe>`,
		`<d:Probe><d:Types>x:Printer</d:Types></d:Probe>`, `<d:Resolve/>`,
	} {
		f.Add([]byte(probe(mid, b)))
		f.Add([]byte(probe("", b)))
	}
	f.Add([]byte("<x"))
	d := &Discovery{XAddr: "http://192.0.2.1:8000/onvif/device_service", Endpoint: "urn:uuid:11111111-2222-3333-4444-555555555555",
		Scopes: []string{"onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/name/cordon"}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, why := d.answer(msg)
		if out == nil {
			if why == "answered" {
				t.Fatal("answered with nothing")
			}
			return
		}
		if why != "answered" || len(out) > 4096 {
			t.Fatalf("%s, %d bytes", why, len(out))
		}
		env, err := soap.ParseEnvelopeBytes(out, soap.Limits{})
		if err != nil {
			t.Fatalf("answer not SOAP: %v: %s", err, out)
		}
		if p := env.Payload(); p == nil || p.Space != nsWSD || p.Local != "ProbeMatches" {
			t.Fatalf("answer is not ProbeMatches: %s", out)
		}
	})
}
