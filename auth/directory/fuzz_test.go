package directory

import (
	"encoding/json"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzLDAPFilterValue: whatever a user types as a name, the user_filter
// stays one equality match whose value is exactly the name.
func FuzzLDAPFilterValue(f *testing.F) {
	for _, s := range []string{"alice", "*", "*)(uid=*", "alice)(|(uid=*", `\2a`, "a\x00b", "ops(night)*", "é", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := goldap.CompileFilter(fillFilter("(uid=%s)", name))
		if err != nil {
			t.Fatalf("%q: filter does not compile: %v", name, err)
		}
		if p.Tag != goldap.FilterEqualityMatch || len(p.Children) != 2 {
			t.Fatalf("%q: not a single equality match (tag %d)", name, p.Tag)
		}
		if got := p.Children[1].Data.String(); got != name {
			t.Fatalf("%q: filter matches %q", name, got)
		}
	})
}

// FuzzGroupsClaim: any JSON claims object gives groups within the bounds
// or an ErrInvalidCredentials, never a panic.
func FuzzGroupsClaim(f *testing.F) {
	f.Add([]byte(`{"groups":["a","b"]}`), "groups")
	f.Add([]byte(`{"realm_access":{"roles":["r"]}}`), "realm_access.roles")
	f.Add([]byte(`{"groups":"one"}`), "groups")
	f.Add([]byte(`{"groups":[1,{"a":null}]}`), "groups")
	f.Add([]byte(`{"a":{"b":{"c":[]}}}`), "a.b.c.d")
	f.Fuzz(func(t *testing.T, data []byte, claim string) {
		claims := map[string]any{}
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		groups, _, err := groupsFrom(claims, claim)
		if err != nil {
			return
		}
		if len(groups) > MaxGroups {
			t.Fatalf("%d groups accepted", len(groups))
		}
		_ = checkGroups(groups)
	})
}
