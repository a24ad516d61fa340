package auth

import (
	"net/http"
	"testing"
)

func benchFixture(b *testing.B) *fixture {
	b.Helper()
	h, err := HashSecret([]byte(alicePW)) // production parameters
	if err != nil {
		b.Fatal(err)
	}
	users := []User{{Name: "alice", PasswordHash: h, Cameras: []string{"*"}, Admin: true}}
	k, err := HashSecret([]byte(vmsKey))
	if err != nil {
		b.Fatal(err)
	}
	keys := []APIKey{{Name: "vms-1", KeyHash: k, Cameras: []string{"gate-*"}}}
	return newFixtureWith(b, b.TempDir(), users, keys)
}

// BenchmarkLogin: one full HTTP login with production argon2id parameters
// (m=64 MiB, t=3, p=2), token signing and a durable (fsynced) audit line.
func BenchmarkLogin(b *testing.B) {
	f := benchFixture(b)
	h := f.svc.LoginHandler()
	b.ResetTimer()
	for b.Loop() {
		w := newRecorder()
		h.ServeHTTP(w, loginRequestFor("alice", alicePW, "192.0.2.1"))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkAuthenticateRequest: the per-request path. Session tokens cost
// one Ed25519 verification; API keys hit the verification cache.
func BenchmarkAuthenticateRequest(b *testing.B) {
	f := benchFixture(b)
	tok := f.token(b, "alice", alicePW)
	for _, bc := range []struct{ name, cred string }{
		{"session_token", tok},
		{"api_key_named_cached", "key:vms-1:" + vmsKey},
		{"api_key_bare_cached", vmsKey},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := bearerRequest(http.MethodGet, "/api/v1/cameras", bc.cred)
			if _, err := f.svc.AuthenticateRequest(r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.svc.AuthenticateRequest(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
