package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits bound what Parse accepts. Zero fields take the defaults.
type Limits struct {
	// MaxBytes is the largest document (default 1 MiB).
	MaxBytes int64
	// MaxDepth is the deepest element nesting (default 32).
	MaxDepth int
	// MaxTokens is the most XML tokens (start, end, text, comments...;
	// default 50,000).
	MaxTokens int
	// MaxAttrs is the most attributes (namespace declarations included) on
	// one element (default 64).
	MaxAttrs int
}

// Default limits.
const (
	DefaultMaxBytes  = 1 << 20
	DefaultMaxDepth  = 32
	DefaultMaxTokens = 50000
	DefaultMaxAttrs  = 64
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	return l
}

// ErrTooLarge is wrapped by Parse errors for a document over MaxBytes.
var ErrTooLarge = errors.New("soap: message too large")

// ErrLimit is wrapped by Parse errors for a depth, token or attribute limit.
var ErrLimit = errors.New("soap: message over a parse limit")

// Element is one parsed XML element.
type Element struct {
	// Space is the namespace URI ("" when none), Local the local name.
	Space, Local string
	// Attrs are the attributes other than namespace declarations, with
	// their namespace URIs resolved.
	Attrs []xml.Attr
	// Text is the element's own character data (CDATA included), with
	// surrounding white space trimmed.
	Text string
	// Children in document order.
	Children []*Element

	parent *Element
	ns     map[string]string // declarations on this element: prefix -> URI ("" = default)
}

// Child returns the first child with this namespace and local name, or nil.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Local == local && c.Space == space {
			return c
		}
	}
	return nil
}

// ChildLocal returns the first child with this local name in any
// namespace, or nil: cameras put the same element in vendor or wrong
// namespaces often enough that readers of camera answers use this.
func (e *Element) ChildLocal(local string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Local == local {
			return c
		}
	}
	return nil
}

// ChildrenLocal returns every child with this local name, in any namespace.
func (e *Element) ChildrenLocal(local string) []*Element {
	if e == nil {
		return nil
	}
	var out []*Element
	for _, c := range e.Children {
		if c.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// Path follows ChildLocal through the given local names; nil if any step
// is missing.
func (e *Element) Path(locals ...string) *Element {
	for _, l := range locals {
		e = e.ChildLocal(l)
		if e == nil {
			return nil
		}
	}
	return e
}

// TextOf returns the Text of Path(locals...), "" when missing.
func (e *Element) TextOf(locals ...string) string {
	if c := e.Path(locals...); c != nil {
		return c.Text
	}
	return ""
}

// Attr returns the value of the attribute with this local name (any
// namespace) and whether it is present.
func (e *Element) Attr(local string) (string, bool) {
	if e == nil {
		return "", false
	}
	for _, a := range e.Attrs {
		if a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// LookupPrefix returns the namespace URI bound to prefix ("" = the default
// namespace) where this element is, and whether it is bound.
func (e *Element) LookupPrefix(prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return "http://www.w3.org/XML/1998/namespace", true
	}
	for x := e; x != nil; x = x.parent {
		if uri, ok := x.ns[prefix]; ok {
			return uri, true
		}
	}
	return "", false
}

// ResolveQName resolves a QName value such as "ter:NotAuthorized" in this
// element's scope. An unbound prefix yields Space "" and the whole text as
// Local: the caller still sees what the sender wrote.
func (e *Element) ResolveQName(v string) xml.Name {
	v = strings.TrimSpace(v)
	prefix, local, ok := strings.Cut(v, ":")
	if !ok {
		uri, _ := e.LookupPrefix("")
		return xml.Name{Space: uri, Local: v}
	}
	uri, bound := e.LookupPrefix(prefix)
	if !bound {
		return xml.Name{Local: v}
	}
	return xml.Name{Space: uri, Local: local}
}

// Parse reads one XML document within the limits and returns its root.
func Parse(r io.Reader, lim Limits) (*Element, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("soap: read: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, lim.MaxBytes)
	}
	return ParseBytes(data, lim)
}

// ParseBytes parses one XML document held in memory within the limits.
func ParseBytes(data []byte, lim Limits) (*Element, error) {
	var root, cur *Element
	var text [][]byte
	err := Scan(data, lim, false, func(tok xml.Token) error {
		switch t := tok.(type) {
		case xml.StartElement:
			el := &Element{Space: t.Name.Space, Local: t.Name.Local, parent: cur}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					el.bind(a.Name.Local, a.Value)
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					el.bind("", a.Value)
				default:
					el.Attrs = append(el.Attrs, a)
				}
			}
			if cur == nil {
				root = el
			} else {
				cur.Children = append(cur.Children, el)
			}
			cur = el
			text = append(text, nil)
		case xml.EndElement:
			cur.Text = strings.TrimSpace(string(text[len(text)-1]))
			text = text[:len(text)-1]
			cur = cur.parent
		case xml.CharData:
			text[len(text)-1] = append(text[len(text)-1], t...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return root, nil
}

// ErrDirective is wrapped by Scan errors for a DTD or any other directive
// (so no entity can ever be declared).
var ErrDirective = errors.New("soap: DTDs and other directives are refused")

// ErrCharset is wrapped by Scan errors for an encoding other than UTF-8
// (or its ASCII subset).
var ErrCharset = errors.New("soap: unsupported charset")

// Scan is cordon's one reader of untrusted XML: it reads one document held
// in memory within the limits and hands fn every element start, element
// end and character data inside the root element, in order (comments and
// processing instructions are not handed on). It refuses what Limits
// bounds, DTDs and other directives, entities other than XML's five, any
// encoding but UTF-8 (or ASCII), more than one root element, text outside
// it, and an incomplete document. Names are namespace-resolved, or with
// raw as written (prefix in Name.Space, namespace declarations kept as
// attributes: xml.Decoder.RawToken) for a caller that writes the document
// back; end elements are checked against their start either way. An error
// from fn ends the scan and is returned as it is.
// (Function over 50 lines: one token loop with its checks.)
func Scan(data []byte, lim Limits, raw bool, fn func(xml.Token) error) error {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return fmt.Errorf("%w (over %d bytes)", ErrTooLarge, lim.MaxBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.Entity = nil // only the five predefined entities
	d.CharsetReader = func(charset string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return in, nil
		}
		return nil, fmt.Errorf("%w %q", ErrCharset, clip(charset, 40))
	}
	next := d.Token
	if raw {
		next = d.RawToken
	}
	var open []xml.Name // raw: RawToken does not match end elements
	depth, tokens, roots := 0, 0, 0
	for {
		tok, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return malformed(err)
		}
		if tokens++; tokens > lim.MaxTokens {
			return fmt.Errorf("%w: more than %d tokens", ErrLimit, lim.MaxTokens)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return errors.New("soap: malformed XML: more than one root element")
				}
			}
			if depth++; depth > lim.MaxDepth {
				return fmt.Errorf("%w: nesting deeper than %d", ErrLimit, lim.MaxDepth)
			}
			if len(t.Attr) > lim.MaxAttrs {
				return fmt.Errorf("%w: more than %d attributes on <%s>", ErrLimit, lim.MaxAttrs, t.Name.Local)
			}
			if raw {
				open = append(open, t.Name)
			}
		case xml.EndElement:
			if raw {
				if len(open) == 0 || open[len(open)-1] != t.Name {
					return errors.New("soap: malformed XML: mismatched end element")
				}
				open = open[:len(open)-1]
			}
			depth--
		case xml.CharData:
			if depth == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return errors.New("soap: malformed XML: text outside the root element")
				}
				continue
			}
		case xml.Directive:
			return ErrDirective
		default: // the XML declaration, other processing instructions, comments
			continue
		}
		if err := fn(tok); err != nil {
			return err
		}
	}
	if roots == 0 {
		return errors.New("soap: empty document")
	}
	if depth != 0 {
		return errors.New("soap: malformed XML: no complete root element")
	}
	return nil
}

func (e *Element) bind(prefix, uri string) {
	if e.ns == nil {
		e.ns = make(map[string]string, 2)
	}
	e.ns[prefix] = uri
}

// malformed turns a decoder error into a bounded one: encoding/xml quotes
// the offending name or text whole, and a hostile peer chooses it (a
// kilobyte-long element name would otherwise reach logs and the API).
func malformed(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("soap: malformed XML: line %d: %s", se.Line, clip(se.Msg, 120))
	}
	return fmt.Errorf("soap: malformed XML: %w", err) // our own errors (charset): bounded already
}
