package directory

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLogin runs GET /oidc/login as if from remote; it returns the status
// and the Retry-After header.
func startLogin(e *rp, remote string) (int, string) {
	req := httptest.NewRequest("GET", "/api/v1/oidc/login", nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	e.o.LoginHandler().ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Retry-After")
}

// One address (IPv6: one /64) can hold only MaxPendingPerAddr sign-ins in
// progress, so it cannot fill the shared store and block single sign-on
// for everyone; other addresses still start; finished or expired sign-ins
// free the address's share.
func TestOIDCPendingPerAddress(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newRP(t, func(o *OIDC) {
		o.Now, o.StateTTL = clock, time.Minute
		o.MaxPending, o.MaxPendingPerAddr = 12, 4
		o.LoginRate, o.LoginBurst = 1000, 1000 // this test is about the store
	})
	// 10,000 starts from one IPv4 address: 4 pending, the rest 429.
	refused := 0
	for i := range 10000 {
		code, retry := startLogin(e, fmt.Sprintf("192.0.2.1:%d", 1024+i%60000))
		switch {
		case code == http.StatusFound && i < 4:
		case code == http.StatusTooManyRequests && i >= 4 && retry != "":
			refused++
		default:
			t.Fatalf("start %d from one address: %d (Retry-After %q)", i, code, retry)
		}
	}
	// One /64 is one address, however many addresses in it are used.
	for i := range 100 {
		code, _ := startLogin(e, fmt.Sprintf("[2001:db8:7:8:%x::1]:443", i+1))
		if (i < 4) != (code == http.StatusFound) {
			t.Fatalf("start %d from one /64: %d", i, code)
		}
	}
	if n := e.o.pending.len(); n != 8 {
		t.Fatalf("%d sign-ins pending, want 8 (4 per address)", n)
	}
	// Everyone else can still sign in.
	for _, remote := range []string{"192.0.2.2:5000", "[2001:db8:7:9::1]:443"} {
		if code, _ := startLogin(e, remote); code != http.StatusFound {
			t.Fatalf("another address %s blocked: %d", remote, code)
		}
	}
	// The global cap still holds: two more addresses fill it, the next gets 503.
	for _, remote := range []string{"192.0.2.2:5000", "192.0.2.3:5000"} {
		startLogin(e, remote)
	}
	if code, _ := startLogin(e, "192.0.2.4:5000"); code != http.StatusServiceUnavailable {
		t.Fatalf("over the global cap: %d, want 503", code)
	}
	// Expired sign-ins free their address's share.
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if code, _ := startLogin(e, "192.0.2.1:9"); code != http.StatusFound {
		t.Fatalf("after expiry: %d", code)
	}
	if n := len(e.o.pending.perAddr); n != 1 {
		t.Fatalf("per-address counts not dropped with their sign-ins: %v", e.o.pending.perAddr)
	}
}

// A finished sign-in frees its address's share at once.
func TestOIDCPendingFreedByCallback(t *testing.T) {
	e := newRP(t, func(o *OIDC) { o.MaxPendingPerAddr = 1 })
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cb, browser := callbackURL(t, e, "alice", "alice-idp-1")
	if status, _ := get(t, noFollow, e.loginURL()); status != http.StatusTooManyRequests {
		t.Fatalf("second sign-in in progress from one address: %d, want 429", status)
	}
	browser.CheckRedirect = nil
	if status, body := get(t, browser, cb); status != 200 || len(e.signedIn()) != 1 {
		t.Fatalf("callback: %d %s", status, body)
	}
	if status, _ := get(t, noFollow, e.loginURL()); status != http.StatusFound {
		t.Fatalf("after the sign-in finished: %d, want 302", status)
	}
}

// GET /oidc/login is rate-limited per address (429 with Retry-After);
// another address is not affected.
func TestOIDCLoginRateLimit(t *testing.T) {
	e := newRP(t, func(o *OIDC) { o.LoginRate, o.LoginBurst = 0.001, 3 })
	for i := range 3 {
		if code, _ := startLogin(e, "198.51.100.7:1000"); code != http.StatusFound {
			t.Fatalf("start %d: %d", i, code)
		}
	}
	req := httptest.NewRequest("GET", "/api/v1/oidc/login", nil)
	req.RemoteAddr = "198.51.100.7:1001"
	rec := httptest.NewRecorder()
	e.o.LoginHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Too many sign-ins") {
		t.Fatalf("over the rate: %d %q", rec.Code, rec.Body)
	}
	if code, _ := startLogin(e, "198.51.100.8:1000"); code != http.StatusFound {
		t.Fatalf("another address: %d", code)
	}
	// RemoteAddr (auth's, honouring trusted proxies) decides the address.
	e2 := newRP(t, func(o *OIDC) {
		o.LoginRate, o.LoginBurst = 0.001, 1
		o.RemoteAddr = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	for i, want := range []int{http.StatusFound, http.StatusFound} {
		req := httptest.NewRequest("GET", "/api/v1/oidc/login", nil)
		req.RemoteAddr = "127.0.0.1:1" // the proxy
		req.Header.Set("X-Test-Client", fmt.Sprintf("203.0.113.%d", i+1))
		rec := httptest.NewRecorder()
		e2.o.LoginHandler().ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("client %d behind one proxy: %d", i, rec.Code)
		}
	}
}
