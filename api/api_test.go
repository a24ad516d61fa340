package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/config"
	"cordon/relay/session"
)

// tokens are principal names; "root" is an admin.
type fakeAuth map[string]*auth.Principal

func (f fakeAuth) AuthenticateRequest(r *http.Request) (*auth.Principal, error) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if p := f[tok]; p != nil {
		return p, nil
	}
	return nil, auth.ErrNoCredentials
}

func (fakeAuth) RemoteAddr(*http.Request) string { return "10.9.8.7" }

func (fakeAuth) Current(p *auth.Principal) (*auth.Principal, error) { return p, nil }

func (fakeAuth) RecordDenied(audit.Event) error { return nil }

type auditRec struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditRec) Record(e audit.Event) { a.mu.Lock(); a.events = append(a.events, e); a.mu.Unlock() }

type fakeSession struct {
	in    session.Info
	r     *session.Registry
	ended chan string
}

func (f *fakeSession) Info() session.Info { return f.in }
func (f *fakeSession) End(reason string) {
	f.r.Remove(f.in.ID)
	f.ended <- reason
}

func newAPI(t *testing.T) (*httptest.Server, *session.Registry, *auditRec) {
	t.Helper()
	reg := &session.Registry{}
	rec := &auditRec{}
	s := &Server{
		Auth: fakeAuth{
			"root":  {Name: "root", Kind: "user", Admin: true},
			"carol": {Name: "carol", Kind: "user", Cameras: []string{"*"}},
		},
		Sessions: reg, Audit: rec, Redactor: &config.Redactor{}, Healthy: func() error { return nil },
	}
	mux := http.NewServeMux()
	s.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, reg, rec
}

// call sends a request without a body (send).
func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	return send(t, method, url, token, "")
}

// An admin's kill ends the session and is audited once, as the admin's
// act, naming the session's principal; the listing is the registry's.
func TestKillSessionAudited(t *testing.T) {
	hs, reg, rec := newAPI(t)
	f := &fakeSession{in: session.Info{ID: session.NewID(), Camera: "gate", User: "carol", Kind: "user", Remote: "10.1.1.1",
		Protocol: "rtsp", Started: time.Unix(1700000000, 0)}, r: reg, ended: make(chan string, 1)}
	if err := reg.Add(f); err != nil {
		t.Fatal(err)
	}
	st, body := call(t, http.MethodGet, hs.URL+"/api/v1/admin/sessions", "root")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); st != 200 || err != nil || len(list) != 1 || list[0]["user"] != "carol" || list[0]["protocol"] != "rtsp" {
		t.Fatalf("list: %d %s", st, body)
	}
	if st, _ := call(t, http.MethodDelete, hs.URL+"/api/v1/admin/sessions/"+f.in.ID, "carol"); st != http.StatusForbidden {
		t.Fatalf("kill by a non-admin: %d", st)
	}
	if st, _ := call(t, http.MethodDelete, hs.URL+"/api/v1/admin/sessions/"+f.in.ID, "root"); st != http.StatusNoContent {
		t.Fatalf("kill: %d", st)
	}
	if reason := <-f.ended; reason != "killed" {
		t.Fatalf("ended for %q", reason)
	}
	if st, _ := call(t, http.MethodDelete, hs.URL+"/api/v1/admin/sessions/"+f.in.ID, "root"); st != http.StatusNotFound {
		t.Fatalf("second kill: %d", st)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var kills []audit.Event
	for _, e := range rec.events {
		if e.Event == audit.SessionKilled {
			kills = append(kills, e)
		}
	}
	if len(kills) != 1 || kills[0].Actor != "root" || kills[0].Camera != "gate" || kills[0].Protocol != "rtsp" || kills[0].Remote != "10.9.8.7" ||
		!strings.Contains(kills[0].Detail, "carol") || !strings.Contains(kills[0].Detail, f.in.ID) {
		t.Fatalf("audit %+v", rec.events)
	}
}

func TestHealthzAndUnknownEndpoint(t *testing.T) {
	hs, _, _ := newAPI(t)
	if st, body := call(t, http.MethodGet, hs.URL+"/healthz", ""); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", st, body)
	}
	if st, body := call(t, http.MethodGet, hs.URL+"/api/v1/nope", "root"); st != 404 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown endpoint: %d %s", st, body)
	}
	if st, _ := call(t, http.MethodGet, hs.URL+"/api/v1/egress", "root"); st != 200 {
		t.Fatalf("egress without a sinkhole: %d", st)
	}
	if st, _ := call(t, http.MethodGet, hs.URL+"/api/v1/egress", ""); st != 401 {
		t.Fatalf("egress without a token: %d", st)
	}
}
