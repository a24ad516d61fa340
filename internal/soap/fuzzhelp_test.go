package soap

import (
	"strings"
	"unicode/utf8"
)

// xmlChars reports whether s holds only characters XML 1.0 allows.
func xmlChars(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF) {
			continue
		}
		return false
	}
	return true
}

// trimXMLSpace is what Element.Text holds for text s: line ends
// normalized to \n (\r\n and \r; EscapeText writes \r as &#xD; so it
// survives) and Unicode space trimmed.
func trimXMLSpace(s string) string { return strings.TrimSpace(s) }

// normAttr: attribute values keep escaped tabs and newlines.
func normAttr(s string) string { return s }
