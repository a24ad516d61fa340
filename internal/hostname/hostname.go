// Package hostname checks DNS host names in configuration (a syslog
// collector, a listen address, a cluster peer). It lives in internal/
// because config and auth/audit both need it and neither owns it.
package hostname

import "strings"

// Valid reports whether h is a DNS host name: at most 253 bytes of
// dot-separated labels, each 1 to 63 letters, digits or hyphens.
func Valid(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
