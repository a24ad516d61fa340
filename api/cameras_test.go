package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/camera"
	"cordon/config"
	"cordon/relay"
	"cordon/relay/sanitize"
	"cordon/relay/session"
)

// realAuth resolves tokens to principals of a real auth.Directory, and
// Current re-reads them there, as auth.Service does.
type realAuth struct {
	dir    *auth.Directory
	tokens map[string][2]string // token -> name, kind
	denied []audit.Event
}

func (a *realAuth) AuthenticateRequest(r *http.Request) (*auth.Principal, error) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	nk, ok := a.tokens[tok]
	if !ok {
		return nil, auth.ErrNoCredentials
	}
	p, ok := a.dir.Lookup(nk[0], nk[1])
	if !ok {
		return nil, auth.ErrPrincipalGone
	}
	return p, nil
}

func (a *realAuth) Current(p *auth.Principal) (*auth.Principal, error) {
	cur, ok := a.dir.Lookup(p.Name, p.Kind)
	if !ok {
		return nil, auth.ErrPrincipalGone
	}
	return cur, nil
}

func (a *realAuth) RecordDenied(e audit.Event) error { a.denied = append(a.denied, e); return nil }
func (*realAuth) RemoteAddr(*http.Request) string    { return "10.9.8.7" }

// GET /api/v1/cameras lists the cameras the caller may view now, each
// with the caller's rights on it; admin status is read as it is now.
// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestCamerasCarryRights(t *testing.T) {
	hash, err := auth.HashSecret([]byte("not-used-here"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := auth.NewDirectoryConfig(auth.DirectoryConfig{
		Roles: []auth.Role{
			{Name: "operator", Cameras: []string{"gate-*"}, Rights: []auth.Right{auth.RightView, auth.RightPTZ}, PTZPriority: 100},
			{Name: "evidence", Cameras: []string{"*"}, Rights: []auth.Right{auth.RightPlayback, auth.RightExport}},
		},
		Users: []auth.User{
			{Name: "olga", PasswordHash: hash, Roles: []string{"operator"}, Cameras: []string{"yard"}},
			{Name: "eve", PasswordHash: hash, Roles: []string{"evidence"}}, // no view anywhere
			{Name: "root", PasswordHash: hash, Admin: true},
		},
		APIKeys: []auth.APIKey{{Name: "nvr", KeyHash: hash, Cameras: []string{"gate-north"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := relay.NewHub()
	reg := &camera.Registry{New: func(config.Camera) *camera.Unit { return &camera.Unit{Hub: hub} }}
	var cams []config.Camera
	for _, id := range []string{"gate-north", "gate-south", "yard", "lobby"} {
		cams = append(cams, config.Camera{ID: id, URL: "rtsp://127.0.0.1:1/" + id, OnDemand: true}) // never pulled
	}
	if err := reg.Apply(cams, sanitize.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ra := &realAuth{dir: dir, tokens: map[string][2]string{
		"olga": {"olga", auth.KindUser}, "eve": {"eve", auth.KindUser}, "root": {"root", auth.KindUser}, "nvr": {"nvr", auth.KindAPIKey},
	}}
	s := &Server{Auth: ra, Cameras: reg, Sessions: &session.Registry{}, Audit: &auditRec{}, Redactor: &config.Redactor{}, Healthy: func() error { return nil }}
	mux := http.NewServeMux()
	s.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	list := func(tok string) map[string][]string {
		t.Helper()
		st, body := call(t, http.MethodGet, hs.URL+"/api/v1/cameras", tok)
		var out []struct {
			ID     string   `json:"id"`
			Rights []string `json:"rights"`
		}
		if st != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("cameras as %s: %d %s", tok, st, body)
		}
		m := map[string][]string{}
		for _, c := range out {
			m[c.ID] = c.Rights
		}
		return m
	}
	want := map[string]map[string][]string{
		"olga": {"gate-north": {"view", "ptz"}, "gate-south": {"view", "ptz"}, "yard": {"view"}},
		"eve":  {}, // playback and export everywhere, view nowhere: nothing listed
		"root": {}, // admin is the admin API only
		"nvr":  {"gate-north": {"view"}},
	}
	for tok, w := range want {
		got := list(tok)
		if len(got) != len(w) {
			t.Errorf("%s sees %v, want %v", tok, got, w)
			continue
		}
		for id, r := range w {
			if !slices.Equal(got[id], r) {
				t.Errorf("%s on %s: rights %v, want %v", tok, id, got[id], r)
			}
		}
	}
	// a principal holding view and more elsewhere: eve gets view on yard
	// through a new role; her other rights show beside it
	if err := dir.Apply(auth.DirectoryConfig{
		Roles: []auth.Role{{Name: "evidence", Cameras: []string{"*"}, Rights: []auth.Right{auth.RightPlayback, auth.RightExport}},
			{Name: "yardwatch", Cameras: []string{"yard"}, Rights: []auth.Right{auth.RightView}}},
		Users: []auth.User{{Name: "eve", PasswordHash: hash, Roles: []string{"evidence", "yardwatch"}}, {Name: "root", PasswordHash: hash}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := list("eve"); len(got) != 1 || !slices.Equal(got["yard"], []string{"view", "playback", "export"}) {
		t.Errorf("eve after the reload: %v", got)
	}
	// root is no longer an admin: refused (and the refusal recorded per principal)
	if st, _ := call(t, http.MethodGet, hs.URL+"/api/v1/admin/sessions", "root"); st != http.StatusForbidden {
		t.Errorf("former admin on the admin API: %d, want 403", st)
	}
	if len(ra.denied) != 1 || ra.denied[0].Actor != "root" {
		t.Errorf("denials recorded %+v", ra.denied)
	}
	// olga is gone: her token no longer works
	if st, _ := call(t, http.MethodGet, hs.URL+"/api/v1/cameras", "olga"); st != http.StatusUnauthorized {
		t.Errorf("removed principal: %d, want 401", st)
	}
}
