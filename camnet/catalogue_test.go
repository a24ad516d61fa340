package camnet

import (
	"strings"
	"testing"
)

func TestDefaultCatalogueMatch(t *testing.T) {
	c, err := DefaultCatalogue()
	if err != nil {
		t.Fatalf("shipped catalogue does not parse: %v", err)
	}
	tests := []struct {
		name, want string // want "" = no match
	}{
		{"litedev.hik-connect.com", "hikvision_hikconnect"},
		{"LiteDev.Hik-Connect.COM.", "hikvision_hikconnect"}, // case and trailing dot
		{"hik-connect.com", "hikvision_hikconnect"},          // *.x covers x itself
		{"a.b.c.hik-connect.com", "hikvision_hikconnect"},    // any depth
		{"xhik-connect.com", ""},                             // label boundary
		{"hik-connect.com.evil.example", ""},
		{"api.ezvizlife.com", "hikvision_ezviz"},
		{"www.hikvision.com", "hikvision"},
		{"www.easy4ipcloud.com", "dahua_easy4ip"},
		{"www.dahuaddns.com", "dahua_ddns"},
		{"app.lechange.cn", "dahua_imou"},
		{"p2p.reolink.com", "reolink_p2p"},    // glob label, 0 chars
		{"p2p11.reolink.com", "reolink_p2p"},  // more specific than *.reolink.com
		{"pushx.reolink.com", "reolink_push"}, // exact beats suffix
		{"www.reolink.com", "reolink"},        // falls back to the suffix
		{"x.p2p1.reolink.com", "reolink"},     // glob is one label only
		{"a1.tuyaeu.com", "tuya"},
		{"de.ezcloud.uniview.com", "uniview_ezcloud"}, // longer suffix wins
		{"www.uniview.com", "uniview"},
		{"0.pool.ntp.org", "ntp_public"},
		{"time.windows.com", "ntp_public"},
		{"time.nist.gov.", "ntp_public"},
		{"example.org", ""},
		{"", ""},
		{".", ""},
		{"com", ""},
	}
	for _, tt := range tests {
		v, ok := c.Match(tt.name)
		got := ""
		if ok {
			got = v.ID
		}
		if got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCatalogueMostSpecificWins(t *testing.T) {
	c, err := NewCatalogue([]Vendor{
		{ID: "broad", Name: "Broad", Patterns: []string{"*.example.com"}},
		{ID: "deep", Name: "Deep", Patterns: []string{"*.cloud.example.com"}},
		{ID: "glob", Name: "Glob", Patterns: []string{"p2p*.cloud.example.com"}},
		{ID: "exact", Name: "Exact", Patterns: []string{"p2p1.cloud.example.com"}},
		{ID: "tie_late", Name: "Tie", Patterns: []string{"*.other.com"}},
		{ID: "tie_early", Name: "Tie 2", Patterns: []string{"*.OTHER.com."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"www.example.com":        "broad",
		"x.cloud.example.com":    "deep",
		"p2p7.cloud.example.com": "glob",
		"p2p1.cloud.example.com": "exact",
		"a.other.com":            "tie_late", // equal specificity: earlier entry
	} {
		v, ok := c.Match(name)
		if !ok || v.ID != want {
			t.Errorf("Match(%q) = %q/%v, want %q", name, v.ID, ok, want)
		}
	}
}

func TestCatalogueValidation(t *testing.T) {
	bad := []string{
		"vendors: [{id: Bad-ID, name: x, patterns: [a.com]}]",
		"vendors: [{id: none, name: x, patterns: [a.com]}]",
		"vendors: [{id: unknown, name: x, patterns: [a.com]}]",
		"vendors: [{id: a, name: '', patterns: [a.com]}]",
		"vendors: [{id: a, name: x, patterns: []}]",
		"vendors: [{id: a, name: x, patterns: ['*.com']}]",
		"vendors: [{id: a, name: x, patterns: ['a..com']}]",
		"vendors: [{id: a, name: x, patterns: ['*.p2p*.com']}]",
		"vendors: [{id: a, name: x, patterns: [a.com]}, {id: a, name: y, patterns: [b.com]}]",
		"vendors: [{id: a, name: x, patterns: [a.com], extra: 1}]",
		"vendors: [",
	}
	for _, doc := range bad {
		if _, err := ParseCatalogue([]byte(doc)); err == nil {
			t.Errorf("ParseCatalogue(%q) = nil error, want an error", doc)
		}
	}
	if _, err := ParseCatalogue([]byte("vendors: [{id: a_1, name: X, patterns: ['p*2*p.x.com']}]")); err != nil {
		t.Errorf("valid catalogue rejected: %v", err)
	}
}

func TestCatalogueShippedVendors(t *testing.T) {
	c, err := DefaultCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, v := range c.Vendors() {
		ids[v.ID] = true
	}
	for _, want := range []string{"hikvision_hikconnect", "hikvision_ezviz", "dahua_easy4ip", "dahua_ddns", "dahua_imou", "reolink_p2p", "tuya", "uniview_ezcloud", "ntp_public"} {
		if !ids[want] {
			t.Errorf("catalogue lacks vendor %q", want)
		}
	}
}

func TestGlobLabel(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"p2p*", "p2p", true}, {"p2p*", "p2p11", true}, {"p2p*", "xp2p", false},
		{"*x", "abx", true}, {"*x", "abxy", false}, {"a*b*c", "abc", true},
		{"a*b*c", "a-b-b-c", true}, {"a*b*c", "acb", false}, {"ab*ba", "aba", false},
	} {
		if got := globLabel(tt.pat, tt.s); got != tt.want {
			t.Errorf("globLabel(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
	if !strings.Contains(NormalizeName("A.B."), "a.b") {
		t.Error("NormalizeName")
	}
}
