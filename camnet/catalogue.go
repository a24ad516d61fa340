package camnet

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed catalogue.yaml
var defaultCatalogueYAML []byte

// VendorNone is the metric label for a name that matches no catalogue entry.
const VendorNone = "none"

// Vendor is one catalogue entry: a vendor cloud, P2P, DDNS or time service.
type Vendor struct {
	ID       string   `yaml:"id" json:"vendor"`
	Name     string   `yaml:"name" json:"name"`
	Owner    string   `yaml:"owner" json:"owner,omitempty"`
	Patterns []string `yaml:"patterns" json:"-"`
}

// Catalogue classifies DNS names by vendor cloud. It is immutable after
// construction and safe for concurrent use.
type Catalogue struct {
	vendors  []Vendor
	patterns []pattern
}

type pattern struct {
	vendor   int      // index into vendors
	order    int      // position in the file, for ties
	suffix   bool     // "*.rest": rest and anything below it
	labels   []string // lowercase labels (after "*." for suffix patterns)
	literals int      // literal characters: specificity
	exact    bool     // no '*' at all
}

var vendorIDRe = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// DefaultCatalogue parses the catalogue shipped with cordon (catalogue.yaml,
// embedded). It returns an error only if the shipped file is broken, which
// the package tests rule out.
func DefaultCatalogue() (*Catalogue, error) {
	return ParseCatalogue(defaultCatalogueYAML)
}

// ParseCatalogue parses and validates a catalogue in the catalogue.yaml
// format. Unknown keys are errors.
func ParseCatalogue(data []byte) (*Catalogue, error) {
	var doc struct {
		Vendors []Vendor `yaml:"vendors"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	return NewCatalogue(doc.Vendors)
}

// NewCatalogue validates vendors and builds a catalogue from them.
func NewCatalogue(vendors []Vendor) (*Catalogue, error) {
	c := &Catalogue{}
	seen := map[string]bool{}
	order := 0
	for i, v := range vendors {
		if !vendorIDRe.MatchString(v.ID) || v.ID == VendorNone || v.ID == UnknownCamera {
			return nil, fmt.Errorf("catalogue: vendors[%d].id: %q must match [a-z0-9_]{1,64} and not be %q or %q", i, v.ID, VendorNone, UnknownCamera)
		}
		if seen[v.ID] {
			return nil, fmt.Errorf("catalogue: vendors[%d].id: duplicate %q", i, v.ID)
		}
		seen[v.ID] = true
		if strings.TrimSpace(v.Name) == "" {
			return nil, fmt.Errorf("catalogue: vendors[%d].name: empty", i)
		}
		if len(v.Patterns) == 0 {
			return nil, fmt.Errorf("catalogue: vendors[%d].patterns: empty", i)
		}
		v.Patterns = append([]string(nil), v.Patterns...)
		c.vendors = append(c.vendors, v)
		for j, raw := range v.Patterns {
			p, err := compilePattern(raw)
			if err != nil {
				return nil, fmt.Errorf("catalogue: vendors[%d].patterns[%d]: %w", i, j, err)
			}
			p.vendor = len(c.vendors) - 1
			p.order = order
			order++
			c.patterns = append(c.patterns, p)
		}
	}
	return c, nil
}

func compilePattern(raw string) (pattern, error) {
	s := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
	if s == "" {
		return pattern{}, fmt.Errorf("%q: empty pattern", raw)
	}
	var p pattern
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		p.suffix = true
		s = rest
	}
	p.labels = strings.Split(s, ".")
	p.exact = !p.suffix
	for _, l := range p.labels {
		if l == "" {
			return pattern{}, fmt.Errorf("%q: empty label", raw)
		}
		if strings.Contains(l, "*") {
			if p.suffix {
				return pattern{}, fmt.Errorf("%q: '*.' suffix patterns cannot have other wildcards", raw)
			}
			p.exact = false
		}
		p.literals += len(strings.ReplaceAll(l, "*", ""))
	}
	p.literals += len(p.labels) - 1 // the dots between labels
	if p.suffix && len(p.labels) < 2 {
		return pattern{}, fmt.Errorf("%q: a suffix pattern needs at least two labels (no '*.com')", raw)
	}
	return p, nil
}

// NormalizeName lower-cases an ASCII DNS name and removes one trailing dot.
func NormalizeName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// Vendors returns a copy of the catalogue's entries in file order.
func (c *Catalogue) Vendors() []Vendor {
	out := make([]Vendor, len(c.vendors))
	for i, v := range c.vendors {
		v.Patterns = append([]string(nil), v.Patterns...)
		out[i] = v
	}
	return out
}

// Match classifies name (any case, with or without trailing dot). It returns
// the most specific matching vendor, or false.
func (c *Catalogue) Match(name string) (Vendor, bool) {
	if c == nil {
		return Vendor{}, false
	}
	n := NormalizeName(name)
	if n == "" {
		return Vendor{}, false
	}
	labels := strings.Split(n, ".")
	best := -1
	for i := range c.patterns {
		p := &c.patterns[i]
		if !p.match(n, labels) {
			continue
		}
		if best < 0 || p.better(&c.patterns[best]) {
			best = i
		}
	}
	if best < 0 {
		return Vendor{}, false
	}
	v := c.vendors[c.patterns[best].vendor]
	v.Patterns = append([]string(nil), v.Patterns...)
	return v, true
}

func (p *pattern) better(q *pattern) bool {
	if p.literals != q.literals {
		return p.literals > q.literals
	}
	if p.exact != q.exact {
		return p.exact
	}
	return p.order < q.order
}

func (p *pattern) match(name string, labels []string) bool {
	if p.suffix {
		if len(labels) < len(p.labels) {
			return false
		}
		tail := labels[len(labels)-len(p.labels):]
		for i, l := range p.labels {
			if tail[i] != l {
				return false
			}
		}
		return true
	}
	if len(labels) != len(p.labels) {
		return false
	}
	for i, l := range p.labels {
		if !globLabel(l, labels[i]) {
			return false
		}
	}
	return true
}

// globLabel matches one DNS label against a pattern label where '*' stands
// for any run of characters (within the label).
func globLabel(pat, s string) bool {
	if !strings.Contains(pat, "*") {
		return pat == s
	}
	parts := strings.Split(pat, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
