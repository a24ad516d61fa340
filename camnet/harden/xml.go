package harden

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"cordon/internal/soap"
)

// node is an element of a small XML document (an ISAPI body): name as
// written (prefix kept), attributes as written, the text directly inside,
// and child elements. Mixed content keeps only the text.
type node struct {
	space, local string // prefix (not resolved) and local name
	attrs        []xml.Attr
	text         string
	children     []*node
}

// Bounds of parseXML. ISAPI documents are a few KiB with depth < 8.
const (
	maxXMLDepth    = 24
	maxXMLElements = 4096
	maxXMLText     = 8192
)

// parseXML parses a bounded XML document through soap.Scan (cordon's one
// reader of untrusted XML) with names as written, so that marshal writes
// back what the camera sent: it refuses DOCTYPE and every other directive
// (so no entity can be declared), unknown entities, non-UTF-8 encodings,
// more than one root, and documents deeper or larger than the bounds. The
// caller bounds the byte size. Errors never quote the camera's bytes.
func parseXML(data []byte) (*node, error) {
	var root *node
	var stack []*node
	var bound error // what the tree below refused: its element and text bounds
	count := 0
	err := soap.Scan(data, soap.Limits{MaxDepth: maxXMLDepth}, true, func(tok xml.Token) error {
		switch t := tok.(type) {
		case xml.StartElement:
			if count++; count > maxXMLElements {
				bound = errors.New("XML has too many elements")
				return bound
			}
			n := &node{space: t.Name.Space, local: t.Name.Local, attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top := stack[len(stack)-1]
			if len(top.text)+len(t) > maxXMLText {
				bound = errors.New("XML text too long")
				return bound
			}
			top.text += string(t)
		}
		return nil
	})
	switch {
	case err == nil:
		return root, nil
	case err == bound:
		return nil, err
	case errors.Is(err, soap.ErrDirective):
		return nil, errors.New("XML with a DOCTYPE or other directive is refused")
	case errors.Is(err, soap.ErrCharset):
		return nil, errors.New("XML in an encoding other than UTF-8 is refused")
	case errors.Is(err, soap.ErrLimit), errors.Is(err, soap.ErrTooLarge):
		return nil, errors.New("XML nested too deeply or too large")
	}
	return nil, errors.New("malformed XML")
}

// child returns the first child with the given local name (nil if none).
func (n *node) child(local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.local == local {
			return c
		}
	}
	return nil
}

// path walks children by local names.
func (n *node) path(locals ...string) *node {
	for _, l := range locals {
		n = n.child(l)
	}
	return n
}

// all returns every child with the given local name.
func (n *node) all(local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.children {
		if c.local == local {
			out = append(out, c)
		}
	}
	return out
}

// value is the element's trimmed text ("" for nil).
func (n *node) value() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.text)
}

// setValue replaces the element's text.
func (n *node) setValue(s string) { n.text = s }

// ensure returns the child with the local name, appending an empty one
// (in the parent's prefix) when it is missing.
func (n *node) ensure(local string) *node {
	if c := n.child(local); c != nil {
		return c
	}
	c := &node{space: n.space, local: local}
	n.children = append(n.children, c)
	return c
}

// marshal serializes the document with an XML declaration.
func (n *node) marshal() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	n.write(&b)
	return b.Bytes()
}

func (n *node) name() string {
	if n.space == "" {
		return n.local
	}
	return n.space + ":" + n.local
}

func (n *node) write(b *bytes.Buffer) {
	b.WriteString("<" + n.name())
	for _, a := range n.attrs {
		name := a.Name.Local
		if a.Name.Space != "" {
			name = a.Name.Space + ":" + a.Name.Local
		}
		fmt.Fprintf(b, ` %s="`, name)
		_ = xml.EscapeText(b, []byte(a.Value))
		b.WriteString(`"`)
	}
	b.WriteString(">")
	if len(n.children) == 0 {
		_ = xml.EscapeText(b, []byte(n.text))
	} else {
		for _, c := range n.children {
			c.write(b)
		}
	}
	b.WriteString("</" + n.name() + ">")
}
