package soap

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// Fault codes (SOAP 1.2 names; SOAP 1.1's Client/Server are read as
// Sender/Receiver).
const (
	CodeSender          = "Sender"
	CodeReceiver        = "Receiver"
	CodeVersionMismatch = "VersionMismatch"
	CodeMustUnderstand  = "MustUnderstand"
)

// Fault is a SOAP fault, as read from a message or to be written.
type Fault struct {
	// Code is CodeSender, CodeReceiver, CodeVersionMismatch or
	// CodeMustUnderstand (other values a peer sent are kept as they came).
	Code string
	// Subcodes, outermost first (ONVIF: ter:InvalidArgVal, then
	// ter:NoProfile...). Written ONVIF subcodes use Space NsError.
	Subcodes []xml.Name
	// Reason is the human text (the first Reason/Text, or faultstring).
	Reason string
	// Detail is the text content of Detail (or detail), if any.
	Detail string
}

// Error implements error. The text is the peer's, bounded and cleaned.
func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("SOAP fault ")
	b.WriteString(clip(f.Code, 40))
	for _, s := range f.Subcodes {
		b.WriteByte('/')
		if s.Space == NsError {
			b.WriteString("ter:")
		}
		b.WriteString(clip(s.Local, 60))
	}
	if f.Reason != "" {
		b.WriteString(": ")
		b.WriteString(clip(f.Reason, 200))
	}
	return b.String()
}

// Has reports whether any subcode is {space}local (space "" = any).
func (f *Fault) Has(space, local string) bool {
	for _, s := range f.Subcodes {
		if s.Local == local && (space == "" || s.Space == space) {
			return true
		}
	}
	return false
}

// HTTPStatus is the status a server answers this fault with: SOAP 1.2's
// HTTP binding says 400 for Sender faults and 500 otherwise.
func (f *Fault) HTTPStatus() int {
	if f.Code == CodeSender {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// NewFault returns a fault with ONVIF (ter:) subcodes, outermost first.
func NewFault(code, reason string, terSubcodes ...string) *Fault {
	f := &Fault{Code: code, Reason: reason}
	for _, s := range terSubcodes {
		f.Subcodes = append(f.Subcodes, xml.Name{Space: NsError, Local: s})
	}
	return f
}

// ONVIF's common faults (ONVIF Core Specification, "Fault definitions").
func NotAuthorized() *Fault {
	return NewFault(CodeSender, "Sender not authorized", "NotAuthorized")
}

// ActionNotSupported is the answer to an operation the device does not have.
func ActionNotSupported() *Fault {
	return NewFault(CodeReceiver, "Optional Action Not Implemented", "ActionNotSupported")
}

// InvalidArgVal is a wrong argument value; sub names the ONVIF reason
// (e.g. "NoProfile", "NoToken"), "" for none.
func InvalidArgVal(reason, sub string) *Fault {
	if sub == "" {
		return NewFault(CodeSender, reason, "InvalidArgVal")
	}
	return NewFault(CodeSender, reason, "InvalidArgVal", sub)
}

// WellFormed is the answer to a message that is not well-formed XML or
// not a SOAP envelope.
func WellFormed(reason string) *Fault {
	return NewFault(CodeSender, reason, "WellFormed")
}

// FaultOf returns the fault an envelope carries, or nil.
func FaultOf(env *Envelope) *Fault {
	p := env.Payload()
	if p == nil || p.Local != "Fault" || p.Space != env.Version.EnvNS() {
		return nil
	}
	if env.Version == SOAP11 {
		return fault11(p)
	}
	f := &Fault{}
	code := p.Child(NsSOAP12, "Code")
	if v := code.Child(NsSOAP12, "Value"); v != nil {
		f.Code = v.ResolveQName(v.Text).Local
	}
	for sub, n := code.Child(NsSOAP12, "Subcode"), 0; sub != nil && n < 8; sub, n = sub.Child(NsSOAP12, "Subcode"), n+1 {
		if v := sub.Child(NsSOAP12, "Value"); v != nil {
			f.Subcodes = append(f.Subcodes, v.ResolveQName(v.Text))
		}
	}
	if r := p.Child(NsSOAP12, "Reason"); r != nil {
		if t := r.Child(NsSOAP12, "Text"); t != nil {
			f.Reason = t.Text
		}
	}
	f.Detail = allText(p.Child(NsSOAP12, "Detail"), 0)
	return f
}

func fault11(p *Element) *Fault {
	f := &Fault{Code: CodeReceiver}
	// SOAP 1.1 fault children are unqualified; tolerate qualified ones.
	if c := p.ChildLocal("faultcode"); c != nil {
		q := c.ResolveQName(c.Text)
		switch {
		case q.Space == NsSOAP11 && q.Local == "Client":
			f.Code = CodeSender
		case q.Space == NsSOAP11 && q.Local == "Server":
			f.Code = CodeReceiver
		case q.Space == NsSOAP11:
			f.Code = q.Local
		default:
			f.Subcodes = append(f.Subcodes, q)
			f.Code = CodeSender
		}
	}
	f.Reason = p.TextOf("faultstring")
	f.Detail = allText(p.ChildLocal("detail"), 0)
	if f.Detail != "" && strings.HasPrefix(f.Detail, "ter:") {
		f.Subcodes = append(f.Subcodes, xml.Name{Space: NsError, Local: strings.TrimPrefix(f.Detail, "ter:")})
	}
	return f
}

// allText joins the text of e and its descendants (bounded depth).
func allText(e *Element, depth int) string {
	if e == nil || depth > 8 {
		return ""
	}
	parts := []string{}
	if e.Text != "" {
		parts = append(parts, e.Text)
	}
	for _, c := range e.Children {
		if t := allText(c, depth+1); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " ")
}

// Node returns the fault as a Body child of a version v message.
func (f *Fault) Node(v Version) Node {
	if v == SOAP11 {
		code := "s:Server"
		if f.Code == CodeSender {
			code = "s:Client"
		}
		n := El("s:Fault", Text("faultcode", code), Text("faultstring", f.Reason))
		if len(f.Subcodes) > 0 {
			last := f.Subcodes[len(f.Subcodes)-1]
			if last.Space == NsError {
				n = n.Add(Text("detail", "ter:"+last.Local))
			}
		}
		return n
	}
	code := Node{Name: "s:Code", Children: []Node{Text("s:Value", "s:"+f.Code)}}
	// nest subcodes innermost-last
	var inner *Node
	for i := len(f.Subcodes) - 1; i >= 0; i-- {
		s := f.Subcodes[i]
		sub := Node{Name: "s:Subcode"}
		val := Text("s:Value", s.Local)
		switch s.Space {
		case NsError:
			val.Text = "ter:" + s.Local
		case "":
		default:
			sub = sub.With(fmt.Sprintf("xmlns:sc%d", i), s.Space)
			val.Text = fmt.Sprintf("sc%d:%s", i, s.Local)
		}
		sub.Children = append(sub.Children, val)
		if inner != nil {
			sub.Children = append(sub.Children, *inner)
		}
		inner = &sub
	}
	if inner != nil {
		code.Children = append(code.Children, *inner)
	}
	n := El("s:Fault", code, El("s:Reason", Text("s:Text", f.Reason).With("xml:lang", "en")))
	if f.Detail != "" {
		n = n.Add(El("s:Detail", Text("s:Text", f.Detail)))
	}
	return n
}
