package soap

import (
	"testing"
)

// FuzzParseEnvelope: any bytes, small limits: never a panic, and whatever
// parses can be read as a fault and a token without panicking.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(hikGetPresets))
	f.Add((&Message{Body: []Node{InvalidArgVal("x", "NoProfile").Node(SOAP12)}}).Bytes())
	f.Add((&Message{Version: SOAP11, Body: []Node{NotAuthorized().Node(SOAP11)}}).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelopeBytes(data, Limits{MaxBytes: 64 << 10, MaxDepth: 16, MaxTokens: 2000})
		if err != nil {
			return
		}
		_ = FaultOf(env)
		_, _ = ParseUsernameToken(env.Header)
		if p := env.Payload(); p != nil {
			_ = p.ResolveQName(p.Text)
			_ = p.TextOf("a", "b")
		}
	})
}

// FuzzMessageRoundTrip: any text written into a message reads back the
// same (escaping is complete), when it is valid XML character data.
func FuzzMessageRoundTrip(f *testing.F) {
	f.Add("plain", "attr")
	f.Add("<&>\"'", "]]>")
	f.Fuzz(func(t *testing.T, text, attr string) {
		if !xmlChars(text) || !xmlChars(attr) {
			return
		}
		m := &Message{Body: []Node{Text("tt:V", text).With("a", attr)}}
		env, err := ParseEnvelopeBytes(m.Bytes(), Limits{})
		if err != nil {
			t.Fatalf("own message does not parse: %v", err)
		}
		v := env.Payload()
		if got, want := v.Text, trimXMLSpace(text); got != want {
			t.Fatalf("text %q, want %q", got, want)
		}
		if got, _ := v.Attr("a"); got != normAttr(attr) {
			t.Fatalf("attr %q, want %q", got, normAttr(attr))
		}
	})
}
