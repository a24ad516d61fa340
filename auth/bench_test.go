package auth

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
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

// BenchmarkLoginDuringFlood: a legitimate login from a clean address
// while 50 bad logins flood in, with production argon2id parameters and
// the default bounds (limits.argon2_concurrent, limits.argon2_queue).
// Reports the legitimate login's latency (p50 and max over the
// iterations), how many flood computations started before its own once it
// had arrived (independent of the machine's load), the most argon2id
// computations ever in flight, and how the flood was answered.
//
//   - one_address: lockout reservations and the one-per-address slot keep
//     the flood to a single queue place; the legitimate login must succeed.
//   - 50_addresses (a botnet, flood under way): each flooding address has
//     failed before, so its attempts wait in the failing lane and the
//     clean address's login is served next; it must succeed.
//   - 50_fresh_addresses (the residual): the burst is the very first
//     attempt of 50 never-seen addresses, arriving with the legitimate
//     login: nothing tells them apart, they share the clean lane, whose
//     bound answers the surplus 503 + Retry-After at once
//     (login-ok-fraction says how often the legitimate login was served).
func BenchmarkLoginDuringFlood(b *testing.B) {
	for _, bc := range []struct {
		name   string
		addrs  int
		failed bool // the flooding addresses have failed before
	}{{"one_address", 1, false}, {"50_addresses", 50, true}, {"50_fresh_addresses", 50, false}} {
		b.Run(bc.name, func(b *testing.B) {
			f := benchFixture(b)
			h := f.svc.LoginHandler()
			var lat []time.Duration
			codes := map[int]int{}
			var mu sync.Mutex
			iter, legitOK, aheadTotal := 0, 0, 0
			for b.Loop() {
				iter++
				floodStarted := make(chan struct{})
				var once sync.Once
				legitAddr := fmt.Sprintf("192.0.2.%d", iter%250+1)
				floodAddr := func(i int) string { return fmt.Sprintf("198.18.%d.%d", iter%250, i%bc.addrs+1) }
				if bc.failed {
					for i := range bc.addrs {
						_ = f.svc.RecordAuthFailure("alice", floodAddr(i), "http", "", "an earlier guess")
					}
				}
				var before, ahead int
				f.svc.hashesMu.Lock()
				f.svc.hashHook = func(remote string) {
					once.Do(func() { close(floodStarted) })
					if remote == legitAddr { // called with hashesMu released: count what ran first
						ahead += f.svc.hashCount() - 1 - before
					}
				}
				f.svc.hashesMu.Unlock()
				var wg sync.WaitGroup
				for i := range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						w := newRecorder()
						h.ServeHTTP(w, loginRequestFor("alice", fmt.Sprintf("guess-%d", i), floodAddr(i)))
						mu.Lock()
						codes[w.Code]++
						mu.Unlock()
					}()
				}
				<-floodStarted
				before = f.svc.hashCount()
				start := time.Now()
				w := newRecorder()
				h.ServeHTTP(w, loginRequestFor("alice", alicePW, legitAddr))
				lat = append(lat, time.Since(start))
				switch {
				case w.Code == http.StatusOK:
					legitOK++
				case bc.name != "50_fresh_addresses" || w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "":
					b.Fatalf("legitimate login during the flood: %d %s", w.Code, w.Body)
				}
				wg.Wait()
				aheadTotal += ahead
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "login-p50-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "login-max-ms")
			b.ReportMetric(float64(f.svc.HashesInFlightMax()), "argon2-in-flight-max")
			n := float64(iter)
			b.ReportMetric(float64(legitOK)/n, "login-ok-fraction")
			b.ReportMetric(float64(aheadTotal)/n, "argon2-ahead-of-login/op")
			b.ReportMetric(float64(codes[http.StatusUnauthorized])/n, "flood-401/op")
			b.ReportMetric(float64(codes[http.StatusTooManyRequests])/n, "flood-429/op")
			b.ReportMetric(float64(codes[http.StatusServiceUnavailable])/n, "flood-503/op")
		})
	}
}
