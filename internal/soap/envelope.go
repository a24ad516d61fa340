package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Version is the SOAP version of a message.
type Version int

// SOAP versions.
const (
	SOAP12 Version = iota // http://www.w3.org/2003/05/soap-envelope (ONVIF's)
	SOAP11                // http://schemas.xmlsoap.org/soap/envelope/ (tolerated)
)

// Namespace URIs used by ONVIF messages.
const (
	NsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	NsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NsSchema = "http://www.onvif.org/ver10/schema"
	NsDevice = "http://www.onvif.org/ver10/device/wsdl"
	NsMedia  = "http://www.onvif.org/ver10/media/wsdl"
	NsPTZ    = "http://www.onvif.org/ver20/ptz/wsdl"
	NsError  = "http://www.onvif.org/ver10/error"
)

// The usual ONVIF prefixes, declared on every Message envelope unless the
// Message overrides them (see Prefix). An array: nothing can change it.
var prefixes = [...]struct{ prefix, ns string }{
	{"tt", NsSchema},
	{"tds", NsDevice},
	{"trt", NsMedia},
	{"tptz", NsPTZ},
	{"ter", NsError},
}

// Prefix returns the namespace of one of the usual ONVIF prefixes (tt,
// tds, trt, tptz, ter), or "".
func Prefix(p string) string {
	for _, x := range prefixes {
		if x.prefix == p {
			return x.ns
		}
	}
	return ""
}

// EnvNS returns the envelope namespace of v.
func (v Version) EnvNS() string {
	if v == SOAP11 {
		return NsSOAP11
	}
	return NsSOAP12
}

// ContentType returns the HTTP Content-Type of a message of version v.
func (v Version) ContentType() string {
	if v == SOAP11 {
		return "text/xml; charset=utf-8"
	}
	return "application/soap+xml; charset=utf-8"
}

func (v Version) String() string {
	if v == SOAP11 {
		return "SOAP 1.1"
	}
	return "SOAP 1.2"
}

// Envelope is a parsed SOAP message.
type Envelope struct {
	Version Version
	// Header is the Header element (nil when absent).
	Header *Element
	// Body is the Body element.
	Body *Element
}

// Payload returns the first child of the Body (the operation or its
// response, or a Fault), or nil for an empty Body.
func (e *Envelope) Payload() *Element {
	if e == nil || e.Body == nil || len(e.Body.Children) == 0 {
		return nil
	}
	return e.Body.Children[0]
}

// ParseEnvelope parses a SOAP 1.2 or 1.1 message within the limits.
func ParseEnvelope(r io.Reader, lim Limits) (*Envelope, error) {
	root, err := Parse(r, lim)
	if err != nil {
		return nil, err
	}
	return envelopeOf(root)
}

// ParseEnvelopeBytes is ParseEnvelope on a message held in memory.
func ParseEnvelopeBytes(data []byte, lim Limits) (*Envelope, error) {
	root, err := ParseBytes(data, lim)
	if err != nil {
		return nil, err
	}
	return envelopeOf(root)
}

func envelopeOf(root *Element) (*Envelope, error) {
	if root.Local != "Envelope" {
		return nil, fmt.Errorf("soap: root element is <%s>, not a SOAP Envelope", root.Local)
	}
	env := &Envelope{}
	switch root.Space {
	case NsSOAP12:
		env.Version = SOAP12
	case NsSOAP11:
		env.Version = SOAP11
	default:
		return nil, fmt.Errorf("soap: unknown envelope namespace %q", clip(root.Space, 80))
	}
	for _, c := range root.Children {
		if c.Space != root.Space {
			continue
		}
		switch c.Local {
		case "Header":
			if env.Header == nil {
				env.Header = c
			}
		case "Body":
			if env.Body == nil {
				env.Body = c
			}
		}
	}
	if env.Body == nil {
		return nil, errors.New("soap: envelope has no Body")
	}
	return env, nil
}

// Attr is one attribute of a Node: Name may carry a declared prefix.
type Attr struct{ Name, Value string }

// Node is an element to write. Name carries its prefix ("tptz:Stop");
// prefixes must be declared on the Message (Prefixes, or Message.Namespaces)
// or by an "xmlns:..." Attr on the Node itself.
type Node struct {
	Name     string
	Attrs    []Attr
	Text     string
	Children []Node
}

// El returns an element with children.
func El(name string, children ...Node) Node { return Node{Name: name, Children: children} }

// Text returns an element holding text.
func Text(name, text string) Node { return Node{Name: name, Text: text} }

// With returns n with an attribute added.
func (n Node) With(name, value string) Node {
	n.Attrs = append(append([]Attr(nil), n.Attrs...), Attr{name, value})
	return n
}

// Add returns n with children appended.
func (n Node) Add(children ...Node) Node {
	n.Children = append(append([]Node(nil), n.Children...), children...)
	return n
}

func (n Node) write(b *bytes.Buffer) {
	b.WriteByte('<')
	b.WriteString(n.Name)
	for _, a := range n.Attrs {
		b.WriteByte(' ')
		b.WriteString(a.Name)
		b.WriteString(`="`)
		escape(b, a.Value)
		b.WriteByte('"')
	}
	if n.Text == "" && len(n.Children) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	escape(b, n.Text)
	for _, c := range n.Children {
		c.write(b)
	}
	b.WriteString("</")
	b.WriteString(n.Name)
	b.WriteByte('>')
}

func escape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // writes to a bytes.Buffer never fail
}

// Message is a SOAP message to write.
type Message struct {
	Version Version
	// Namespaces adds (or overrides) prefix -> URI declarations on the
	// Envelope, besides Prefixes. "s" is the envelope's own prefix.
	Namespaces map[string]string
	// Header children (e.g. a WS-Security header from UsernameToken.Node).
	Header []Node
	// Body children (the operation, its response, or a Fault).
	Body []Node
}

// Bytes returns the serialized message with an XML declaration.
func (m *Message) Bytes() []byte {
	ns := make(map[string]string, len(prefixes)+len(m.Namespaces)+1)
	for _, x := range prefixes {
		ns[x.prefix] = x.ns
	}
	for p, u := range m.Namespaces {
		ns[p] = u
	}
	ns["s"] = m.Version.EnvNS()
	names := make([]string, 0, len(ns))
	for p := range ns {
		names = append(names, p)
	}
	sort.Strings(names)
	env := Node{Name: "s:Envelope"}
	for _, p := range names {
		env.Attrs = append(env.Attrs, Attr{"xmlns:" + p, ns[p]})
	}
	if len(m.Header) > 0 {
		env.Children = append(env.Children, El("s:Header", m.Header...))
	}
	env.Children = append(env.Children, El("s:Body", m.Body...))
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	env.write(&b)
	return b.Bytes()
}

// clip bounds and cleans text that came from the other side before it goes
// into an error or a log: at most n bytes, control characters replaced.
func clip(s string, n int) string {
	out := make([]rune, 0, min(len(s), n))
	size := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = ' '
		}
		size += len(string(r))
		if size > n {
			out = append(out, '…')
			break
		}
		out = append(out, r)
	}
	return string(out)
}

// Clip is clip for other packages: bound (n bytes) and clean text a peer
// sent before putting it in an error or log.
func Clip(s string, n int) string { return clip(s, n) }
