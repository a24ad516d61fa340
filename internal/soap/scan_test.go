package soap

import (
	"encoding/xml"
	"errors"
	"testing"
)

// Scan with raw names: prefixes and declarations as written, end elements
// still matched, the same refusals as Parse.
func TestScanRaw(t *testing.T) {
	var starts []xml.Name
	err := Scan([]byte(`<?xml version="1.0"?><a:b xmlns:a="urn:x"><!-- c --><c>t</c></a:b>`), Limits{}, true, func(tok xml.Token) error {
		if s, ok := tok.(xml.StartElement); ok {
			starts = append(starts, s.Name)
			if s.Name.Local == "b" && (len(s.Attr) != 1 || s.Attr[0].Name.Space != "xmlns") {
				t.Errorf("declaration not kept: %+v", s.Attr)
			}
		}
		return nil
	})
	if err != nil || len(starts) != 2 || starts[0] != (xml.Name{Space: "a", Local: "b"}) {
		t.Fatalf("%v %v", starts, err)
	}
	for name, c := range map[string]struct {
		in   string
		want error
	}{
		"mismatched": {"<a><b></a></b>", nil},
		"open":       {"<a><b></b>", nil},
		"doctype":    {`<!DOCTYPE a><a/>`, ErrDirective},
		"charset":    {`<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, ErrCharset},
		"deep":       {"<a><a><a></a></a></a>", ErrLimit},
		"two roots":  {"<a/><a/>", nil},
		"empty":      {"  ", nil},
	} {
		err := Scan([]byte(c.in), Limits{MaxDepth: 2}, true, func(xml.Token) error { return nil })
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	stop := errors.New("stop")
	if err := Scan([]byte("<a/>"), Limits{}, false, func(xml.Token) error { return stop }); err != stop {
		t.Errorf("fn's error not returned as it is: %v", err)
	}
}
