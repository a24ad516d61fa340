package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/camnet/harden"
	"cordon/config"
)

// fakeWatcher records applies; camera "gone" is unknown.
type fakeWatcher struct {
	mu      sync.Mutex
	applies []string
	ctxErr  error
}

func (f *fakeWatcher) Results() []harden.CameraResult {
	return []harden.CameraResult{{Camera: "gate", Vendor: "hikvision", CheckedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Settings: []harden.SettingResult{{Name: "upnp", Want: "off", Have: "on", OK: false, Status: harden.StatusDrift}}}}
}

func (f *fakeWatcher) Apply(ctx context.Context, camera string, reboot bool, actor string) (harden.CameraResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctxErr = ctx.Err()
	if camera == "gone" {
		return harden.CameraResult{}, harden.ErrUnknownCamera
	}
	f.applies = append(f.applies, camera+" "+actor+" "+map[bool]string{true: "reboot", false: "no-reboot"}[reboot])
	return harden.CameraResult{Camera: camera, Vendor: "hikvision",
		Settings: []harden.SettingResult{{Name: "upnp", Want: "off", Have: "off", OK: true, Status: harden.StatusSet}}}, nil
}

func newHardeningAPI(t *testing.T, w HardeningWatcher) *httptest.Server {
	t.Helper()
	s := &Server{
		Auth: fakeAuth{
			"root":  {Name: "root", Kind: "user", Admin: true},
			"carol": {Name: "carol", Kind: "user", Cameras: []string{"*"}},
		},
		Audit: &auditRec{}, Redactor: &config.Redactor{}, Healthy: func() error { return nil },
	}
	mux := http.NewServeMux()
	s.Register(mux)
	(&Hardening{API: s, Watcher: w}).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

// send sends a request with body ("" = none) and token ("" = none) and
// returns the status and the body of the answer.
func send(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// GET lists the CONTRACT shape for admins only; apply runs with the
// administrator as actor, optional reboot, and answers the new result.
func TestHardeningRoutes(t *testing.T) {
	w := &fakeWatcher{}
	hs := newHardeningAPI(t, w)
	if st, _ := send(t, "GET", hs.URL+"/api/v1/admin/hardening", "", ""); st != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", st)
	}
	if st, _ := send(t, "GET", hs.URL+"/api/v1/admin/hardening", "carol", ""); st != http.StatusForbidden {
		t.Fatalf("non-admin: %d", st)
	}
	if st, _ := send(t, "POST", hs.URL+"/api/v1/admin/hardening/gate/apply", "carol", ""); st != http.StatusForbidden {
		t.Fatalf("non-admin apply: %d", st)
	}
	st, body := send(t, "GET", hs.URL+"/api/v1/admin/hardening", "root", "")
	var list []map[string]any
	if st != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 {
		t.Fatalf("list: %d %s", st, body)
	}
	for _, k := range []string{"camera", "vendor", "checked_at", "settings"} {
		if _, ok := list[0][k]; !ok {
			t.Fatalf("no %q in %s", k, body)
		}
	}
	set := list[0]["settings"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "want", "have", "ok"} {
		if _, ok := set[k]; !ok {
			t.Fatalf("no %q in setting %s", k, body)
		}
	}
	if st, body := send(t, "POST", hs.URL+"/api/v1/admin/hardening/gate/apply", "root", ""); st != http.StatusOK || !strings.Contains(body, `"status":"set"`) {
		t.Fatalf("apply: %d %s", st, body)
	}
	if st, _ := send(t, "POST", hs.URL+"/api/v1/admin/hardening/gate/apply", "root", `{"reboot":true}`); st != http.StatusOK {
		t.Fatalf("apply with reboot: %d", st)
	}
	for _, bad := range []string{`{"reboot":"yes"}`, `{"rebot":true}`, `[`, strings.Repeat(" ", 2000)} {
		if st, body := send(t, "POST", hs.URL+"/api/v1/admin/hardening/gate/apply", "root", bad); st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
			t.Fatalf("body %.20q: %d %s", bad, st, body)
		}
	}
	if st, body := send(t, "POST", hs.URL+"/api/v1/admin/hardening/gone/apply", "root", ""); st != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown camera: %d %s", st, body)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.applies) != 2 || w.applies[0] != "gate root no-reboot" || w.applies[1] != "gate root reboot" || w.ctxErr != nil {
		t.Fatalf("applies %v (ctx %v)", w.applies, w.ctxErr)
	}
}

// With hardening off the list is empty and apply says so.
func TestHardeningOff(t *testing.T) {
	hs := newHardeningAPI(t, nil)
	if st, body := send(t, "GET", hs.URL+"/api/v1/admin/hardening", "root", ""); st != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Fatalf("list: %d %s", st, body)
	}
	if st, _ := send(t, "POST", hs.URL+"/api/v1/admin/hardening/gate/apply", "root", ""); st != http.StatusServiceUnavailable {
		t.Fatalf("apply: %d", st)
	}
}
