package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cordon/auth"
)

func TestSignInMethods(t *testing.T) {
	for _, c := range []struct {
		m    SignInMethods
		want string
	}{
		{SignInMethods{}, `{"password":true,"ldap":false,"oidc":null}`},
		{SignInMethods{LDAP: true, OIDC: "Force IdP"}, `{"password":true,"ldap":true,"oidc":{"name":"Force IdP","login_url":"/api/v1/oidc/login?return_to=/"}}`},
	} {
		w := httptest.NewRecorder()
		c.m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/auth/methods", nil))
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != c.want || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%+v: %d %s", c.m, w.Code, w.Body)
		}
	}
}

func TestMe(t *testing.T) {
	exp := time.Date(2026, 5, 6, 8, 0, 0, 0, time.UTC)
	a := fakeAuth{
		"root": {Name: "root", Kind: "user", Admin: true},
		"olga": {Name: "olga", Kind: "user", Source: auth.SourceOIDC, Roles: []string{"operator"}, TokenID: "t", ExpiresAt: exp},
		"nils": {Name: "nils", Kind: "user", Source: auth.SourceLDAP},
	}
	h := MeHandler(a)
	for tok, want := range map[string]string{
		"root": `{"name":"root","kind":"user","source":"local","roles":[],"admin":true}`,
		"olga": `{"name":"olga","kind":"user","source":"oidc","roles":["operator"],"admin":false,"expires_at":"2026-05-06T08:00:00Z"}`,
		"nils": `{"name":"nils","kind":"user","source":"ldap","roles":[],"admin":false}`,
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
			t.Errorf("%s: %d %s", tok, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/me", nil))
	if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("without a token: %d %v", w.Code, w.Header())
	}
}

// /healthz: 200 "degraded" naming the parts that are down (a directory),
// 503 only when the audit log cannot be written.
func TestHealthzDegraded(t *testing.T) {
	s := &Server{Auth: fakeAuth{}, Healthy: func() error { return nil },
		Degraded: func() map[string]string {
			return map[string]string{"ldap": "ldap directory unavailable: no answer within 5s"}
		}}
	mux := http.NewServeMux()
	s.Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var got struct {
		Status   string            `json:"status"`
		Reason   string            `json:"reason"`
		Degraded map[string]string `json:"degraded"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got.Status != "degraded" ||
		!strings.Contains(got.Degraded["ldap"], "no answer") || !strings.HasPrefix(got.Reason, "ldap: ldap directory unavailable") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	s.Healthy = func() error { return errors.New("disk full") }
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("audit down: %d %s", w.Code, w.Body)
	}
	s.Healthy = func() error { return nil }
	s.Degraded = func() map[string]string { return map[string]string{} }
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"ok"`) {
		t.Fatalf("nothing degraded: %d %s", w.Code, w.Body)
	}
}
