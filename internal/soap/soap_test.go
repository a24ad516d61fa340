package soap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// hikGetPresets is modelled on a real camera's GetPresetsResponse
// (agsh/onvif test/serverMockup/GetPresets.xml: gSOAP SOAP-ENV prefix,
// dozens of namespace declarations, a WS-Security header echoed back).
const hikGetPresets = `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:ter="http://www.onvif.org/ver10/error">
 <SOAP-ENV:Header><wsse:Security><wsse:UsernameToken><wsse:Username>admin</wsse:Username>
  <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">o2/fd8sFdCFcqisToY0/WKiQiPM=</wsse:Password>
  <wsse:Nonce>NTQzOTU2NDk4MA==</wsse:Nonce><wsu:Created>2014-12-25T16:38:59.919Z</wsu:Created></wsse:UsernameToken></wsse:Security></SOAP-ENV:Header>
 <SOAP-ENV:Body><tptz:GetPresetsResponse>
  <tptz:Preset token="P001"><tt:Name>P001</tt:Name></tptz:Preset>
  <tptz:Preset token="Home"><tt:Name>Home &amp; away</tt:Name></tptz:Preset>
 </tptz:GetPresetsResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>`

func TestParseRealResponse(t *testing.T) {
	env, err := ParseEnvelopeBytes([]byte(hikGetPresets), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if env.Version != SOAP12 || FaultOf(env) != nil {
		t.Fatalf("version %v fault %v", env.Version, FaultOf(env))
	}
	p := env.Payload()
	if p.Space != NsPTZ || p.Local != "GetPresetsResponse" {
		t.Fatalf("payload {%s}%s", p.Space, p.Local)
	}
	ps := p.ChildrenLocal("Preset")
	if len(ps) != 2 {
		t.Fatalf("%d presets", len(ps))
	}
	if tok, _ := ps[1].Attr("token"); tok != "Home" || ps[1].TextOf("Name") != "Home & away" {
		t.Fatalf("preset %q %q", tok, ps[1].TextOf("Name"))
	}
	if ps[1].Child(NsSchema, "Name") == nil || ps[1].Child(NsPTZ, "Name") != nil {
		t.Fatal("namespace-aware Child")
	}
	tok, err := ParseUsernameToken(env.Header)
	if err != nil || tok.Username != "admin" || !tok.Digest || string(tok.Nonce) != "5439564980" {
		t.Fatalf("token %+v %v", tok, err)
	}
}

// The example of the ONVIF Application Programmer's Guide (5.12.2).
func TestPasswordDigestVector(t *testing.T) {
	nonce, _ := base64.StdEncoding.DecodeString("LKqI6G/AikKCQrN0zqZFlg==")
	if got := PasswordDigest(nonce, "2010-09-16T07:50:45Z", "userpassword"); got != "tuOSpGlFlIXsozq4HFNeeGeFLEI=" {
		t.Fatalf("digest %s", got)
	}
	// non-ASCII password: UTF-8 bytes (computed with Python's hashlib)
	n := make([]byte, 16)
	for i := range n {
		n[i] = byte(i)
	}
	if got := PasswordDigest(n, "2026-11-30T05:00:00.000Z", "päss"); got != "7Rl/ejJb/IKWXEsnbkEAr7wuf7Q=" {
		t.Fatalf("digest %s", got)
	}
}

func TestParseLimitsAndRefusals(t *testing.T) {
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	many := "<r>" + strings.Repeat("<x/>", 3000) + "</r>"
	attrs := "<r" + strings.Repeat(` a%d="1"`, 1) + "/>"
	var ab strings.Builder
	ab.WriteString("<r")
	for i := range 70 {
		ab.WriteString(" a" + string(rune('a'+i%26)) + strings.Repeat("x", i) + `="1"`)
	}
	ab.WriteString("/>")
	cases := []struct {
		name, doc string
		lim       Limits
		want      error
		contains  string
	}{
		{"depth", deep, Limits{}, ErrLimit, "deeper"},
		{"tokens", many, Limits{MaxTokens: 1000}, ErrLimit, "tokens"},
		{"size", many, Limits{MaxBytes: 100}, ErrTooLarge, ""},
		{"attrs", ab.String(), Limits{}, ErrLimit, "attributes"},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>`, Limits{}, nil, "DTD"},
		{"external entity", `<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>`, Limits{}, nil, "DTD"},
		{"undefined entity", `<r>&lol;</r>`, Limits{}, nil, "malformed"},
		{"two roots", `<r/><s/>`, Limits{}, nil, "root"},
		{"text outside", `<r/>junk`, Limits{}, nil, "outside"},
		{"unclosed", `<r><s></r>`, Limits{}, nil, "malformed"},
		{"empty", ``, Limits{}, nil, "empty"},
		{"charset", `<?xml version="1.0" encoding="ISO-2022-JP"?><r/>`, Limits{}, nil, "charset"},
	}
	_ = attrs
	for _, c := range cases {
		_, err := ParseBytes([]byte(c.doc), c.lim)
		if err == nil {
			t.Errorf("%s: parsed", c.name)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if c.contains != "" && !strings.Contains(err.Error(), c.contains) {
			t.Errorf("%s: %v lacks %q", c.name, err, c.contains)
		}
	}
	// Parse (reader) enforces MaxBytes without reading everything.
	_, err := Parse(io.MultiReader(strings.NewReader("<r>"), zeros{}), Limits{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless reader: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestEnvelopeShape(t *testing.T) {
	for _, doc := range []string{
		`<r/>`,
		`<e:Envelope xmlns:e="urn:other"><e:Body/></e:Envelope>`,
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/></s:Envelope>`,
	} {
		if _, err := ParseEnvelopeBytes([]byte(doc), Limits{}); err == nil {
			t.Errorf("accepted %s", doc)
		}
	}
}

func TestFaultRoundTrip(t *testing.T) {
	for _, v := range []Version{SOAP12, SOAP11} {
		f := InvalidArgVal("no such profile", "NoProfile")
		msg := (&Message{Version: v, Body: []Node{f.Node(v)}}).Bytes()
		env, err := ParseEnvelopeBytes(msg, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got := FaultOf(env)
		if got == nil || got.Code != CodeSender || got.Reason != "no such profile" {
			t.Fatalf("%v: %+v", v, got)
		}
		if !got.Has(NsError, "NoProfile") {
			t.Fatalf("%v: subcodes %v", v, got.Subcodes)
		}
		if v == SOAP12 && !got.Has(NsError, "InvalidArgVal") {
			t.Fatalf("outer subcode lost: %v", got.Subcodes)
		}
	}
	// a foreign-namespace subcode gets its own declaration
	f := &Fault{Code: CodeReceiver, Reason: "x"}
	f.Subcodes = append(f.Subcodes, NewFault("", "", "ActionNotSupported").Subcodes[0])
	f.Subcodes = append(f.Subcodes, struct{ Space, Local string }{"urn:vendor", "Busy"})
	env, err := ParseEnvelopeBytes((&Message{Body: []Node{f.Node(SOAP12)}}).Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := FaultOf(env)
	if !got.Has("urn:vendor", "Busy") || !got.Has(NsError, "ActionNotSupported") || got.HTTPStatus() != 500 {
		t.Fatalf("%+v", got)
	}
	if NotAuthorized().HTTPStatus() != 400 {
		t.Fatal("sender fault status")
	}
}

// A SOAP 1.1 fault as gSOAP-based cameras send it when asked in SOAP 1.1
// (faultcode in the envelope namespace, detail text).
func TestFault11FromCamera(t *testing.T) {
	doc := `<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode>
<faultstring>The action requested requires authorization and the sender is not authorized</faultstring>
<detail>ter:NotAuthorized</detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`
	env, err := ParseEnvelopeBytes([]byte(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f := FaultOf(env)
	if env.Version != SOAP11 || f.Code != CodeSender || !f.Has(NsError, "NotAuthorized") {
		t.Fatalf("%v %+v", env.Version, f)
	}
	// the text of a fault is the camera's: clipped and cleaned in Error()
	f.Reason = strings.Repeat("\x1b[31m", 100)
	if s := f.Error(); strings.ContainsRune(s, 0x1b) || len(s) > 300 {
		t.Fatalf("unclean error %q", s)
	}
}

func TestMessageEscapesAndRoundTrips(t *testing.T) {
	tricky := `a<b>&"c'` + "\u00e9"
	m := &Message{Body: []Node{El("tptz:GotoPreset", Text("tptz:PresetToken", tricky).With("tt:x", tricky))}}
	env, err := ParseEnvelopeBytes(m.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tok := env.Payload().Child(NsPTZ, "PresetToken")
	if tok == nil || tok.Text != tricky {
		t.Fatalf("%+v", tok)
	}
	if v, _ := tok.Attr("x"); v != tricky || tok.Attrs[0].Name.Space != NsSchema {
		t.Fatalf("attr %q %v", v, tok.Attrs)
	}
}

func TestUsernameTokenVerify(t *testing.T) {
	now := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	v := NewVerifier()
	v.Now = func() time.Time { return now }
	tok, err := NewUsernameToken("alice", "s3cret", now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelopeBytes((&Message{Header: []Node{tok.Node()}, Body: []Node{El("tds:GetDeviceInformation")}}).Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseUsernameToken(env.Header)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyDigest(got, "wrong"); !errors.Is(err, ErrBadDigest) {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := v.VerifyDigest(got, "s3cret"); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if err := v.VerifyDigest(got, "s3cret"); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// a failed attempt does not burn the nonce of a later good one
	tok2, _ := NewUsernameToken("alice", "s3cret", now)
	if err := v.VerifyDigest(tok2, "nope"); !errors.Is(err, ErrBadDigest) {
		t.Fatal(err)
	}
	if err := v.VerifyDigest(tok2, "s3cret"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want error
	}{{now.Add(-6 * time.Minute), ErrStale}, {now.Add(6 * time.Minute), ErrStale}, {now.Add(4 * time.Minute), nil}} {
		tk, _ := NewUsernameToken("alice", "s3cret", c.at)
		if err := v.VerifyDigest(tk, "s3cret"); !errors.Is(err, c.want) {
			t.Errorf("created %v: %v, want %v", c.at, err, c.want)
		}
	}
	text := UsernameToken{Username: "alice", Password: "s3cret"}
	if err := v.VerifyDigest(text, "s3cret"); !errors.Is(err, ErrNotDigest) {
		t.Fatal(err)
	}
	if err := v.VerifyDigest(UsernameToken{Username: "a", Digest: true, Password: "x"}, "x"); !errors.Is(err, ErrTokenFields) {
		t.Fatal(err)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	now := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	v := NewVerifier()
	v.MaxNonces = 3
	v.Now = func() time.Time { return now }
	for i := range 3 {
		tk, _ := NewUsernameToken("u", "p", now)
		if err := v.VerifyDigest(tk, "p"); err != nil {
			t.Fatal(i, err)
		}
	}
	tk, _ := NewUsernameToken("u", "p", now)
	if err := v.VerifyDigest(tk, "p"); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(6 * time.Minute) // the old nonces expire
	tk, _ = NewUsernameToken("u", "p", now)
	if err := v.VerifyDigest(tk, "p"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(v.seen) != 1 {
		t.Fatalf("cache holds %d", len(v.seen))
	}
}

func TestParseUsernameTokenRefusals(t *testing.T) {
	hdr := func(inner string) *Element {
		doc := `<s:Envelope xmlns:s="` + NsSOAP12 + `" xmlns:wsse="` + NsWSSE + `"><s:Header><wsse:Security><wsse:UsernameToken>` + inner +
			`</wsse:UsernameToken></wsse:Security></s:Header><s:Body/></s:Envelope>`
		env, err := ParseEnvelopeBytes([]byte(doc), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return env.Header
	}
	for name, inner := range map[string]string{
		"no password":  `<wsse:Username>a</wsse:Username>`,
		"bad type":     `<wsse:Username>a</wsse:Username><wsse:Password Type="urn:x">p</wsse:Password>`,
		"bad nonce":    `<wsse:Username>a</wsse:Username><wsse:Password>p</wsse:Password><wsse:Nonce>!!!</wsse:Nonce>`,
		"long nonce":   `<wsse:Username>a</wsse:Username><wsse:Password>p</wsse:Password><wsse:Nonce>` + strings.Repeat("QUFB", 40) + `</wsse:Nonce>`,
		"long name":    `<wsse:Username>` + strings.Repeat("a", 300) + `</wsse:Username><wsse:Password>p</wsse:Password>`,
		"nonce encode": `<wsse:Username>a</wsse:Username><wsse:Password>p</wsse:Password><wsse:Nonce EncodingType="urn:hex">00</wsse:Nonce>`,
	} {
		if _, err := ParseUsernameToken(hdr(inner)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseUsernameToken(nil); !errors.Is(err, ErrNoToken) {
		t.Fatal(err)
	}
}

func TestServerHelpers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env, f := ReadRequest(w, r, Limits{MaxBytes: 4096})
		if f != nil {
			WriteFault(w, RequestVersion(r), f)
			return
		}
		if env.Payload() == nil || env.Payload().Local != "GetDeviceInformation" {
			WriteFault(w, env.Version, ActionNotSupported())
			return
		}
		WriteResponse(w, env.Version, El("tds:GetDeviceInformationResponse", Text("tds:Model", "x")))
	})
	do := func(ct, body string) (*http.Response, *Envelope) {
		r := httptest.NewRequest(http.MethodPost, "/onvif/device_service", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		env, err := ParseEnvelope(res.Body, Limits{})
		if err != nil {
			t.Fatalf("answer to %q is not SOAP: %v", body, err)
		}
		return res, env
	}
	ok := string((&Message{Body: []Node{El("tds:GetDeviceInformation")}}).Bytes())
	res, env := do("application/soap+xml", ok)
	if res.StatusCode != 200 || env.Payload().TextOf("Model") != "x" || res.Header.Get("Content-Type") != SOAP12.ContentType() {
		t.Fatalf("%d %+v", res.StatusCode, env.Payload())
	}
	ok11 := string((&Message{Version: SOAP11, Body: []Node{El("tds:GetDeviceInformation")}}).Bytes())
	if _, env := do("text/xml", ok11); env.Version != SOAP11 {
		t.Fatal("SOAP 1.1 answered in 1.2")
	}
	res, env = do("application/soap+xml", string((&Message{Body: []Node{El("tds:Reboot")}}).Bytes()))
	if f := FaultOf(env); res.StatusCode != 500 || f == nil || !f.Has(NsError, "ActionNotSupported") {
		t.Fatalf("%d %+v", res.StatusCode, f)
	}
	res, env = do("application/soap+xml", "<junk")
	if f := FaultOf(env); res.StatusCode != 400 || f == nil || !f.Has(NsError, "WellFormed") {
		t.Fatalf("%d %+v", res.StatusCode, f)
	}
	big := `<s:Envelope xmlns:s="` + NsSOAP12 + `"><s:Body>` + string(bytes.Repeat([]byte("x"), 5000)) + `</s:Body></s:Envelope>`
	res, env = do("application/soap+xml", big)
	if f := FaultOf(env); res.StatusCode != 400 || f == nil || !strings.Contains(f.Reason, "too large") {
		t.Fatalf("%d %+v", res.StatusCode, f)
	}
}

func TestPrefix(t *testing.T) {
	if Prefix("tptz") != NsPTZ || Prefix("tt") != NsSchema || Prefix("s") != "" || Prefix("") != "" {
		t.Fatal("Prefix")
	}
	b := string((&Message{Version: SOAP12, Namespaces: map[string]string{"tt": "urn:override"},
		Body: []Node{El("tds:GetScopes")}}).Bytes())
	for _, want := range []string{`xmlns:tds="` + NsDevice + `"`, `xmlns:tt="urn:override"`, `xmlns:s="` + NsSOAP12 + `"`} {
		if !strings.Contains(b, want) {
			t.Fatalf("%s lacks %s", b, want)
		}
	}
}
