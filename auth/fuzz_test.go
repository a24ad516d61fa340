package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// fuzzCodec is deterministic so that corpus entries stay meaningful.
func fuzzCodec() (*tokenCodec, string) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	c := newTokenCodec(ed25519.NewKeyFromSeed(seed), func() time.Time { return now })
	good, err := c.issue(tokenSubject{name: "alice", kind: KindUser, credential: "0123456789abcdef"}, strings.Repeat("ab", 16), now, now.Add(time.Hour))
	if err != nil {
		panic(err)
	}
	return c, good
}

// FuzzParseToken: parsing never panics, and the only string it accepts is
// the one token the key actually signed (no alternative encodings, no
// algorithm confusion, no signature malleability).
func FuzzParseToken(f *testing.F) {
	c, good := fuzzCodec()
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	f.Add(good)
	f.Add(enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".")
	f.Add(enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2])
	f.Add(parts[0] + "." + parts[1] + "=." + parts[2])
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := c.parse(tok)
		if err != nil {
			return
		}
		if tok != good {
			t.Fatalf("accepted a token that was never issued: %q", tok)
		}
		if claims.Subject != "alice" || claims.Kind != KindUser {
			t.Fatalf("claims %+v", claims)
		}
	})
}
