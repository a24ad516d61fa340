package hostname

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	for h, want := range map[string]bool{
		"localhost": true, "syslog.example.org": true, "a-1.b2": true, "XN--bcher-kva.example": true,
		label63 + ".x": true,
		strings.Repeat(label63+".", 3) + strings.Repeat("b", 61): true,  // 253 bytes
		strings.Repeat(label63+".", 3) + strings.Repeat("b", 62): false, // 254 bytes
		"": false, ".": false, "a..b": false, "a.": false, ".a": false,
		strings.Repeat("a", 64): false, "a_b": false, "a b": false, "ä.example": false, "a:1": false, "10.0.0.1/8": false,
	} {
		if got := Valid(h); got != want {
			t.Errorf("Valid(%q) = %v, want %v", h, got, want)
		}
	}
}
