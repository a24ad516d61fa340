package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cordon/e2e/e2eutil"
)

// PTZ through the real gateway against democam's ONVIF dome: the ptz right
// (403 without it), velocity validation (400), the lock (409 naming holder
// and until for the lower priority, takeover for the higher, Stop to the
// camera when control moves), the holder's logout ending its control
// (Stop), an administrator's release, the rate limit, and the audit lines
// in order.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestControlRoomPTZPriorities(t *testing.T) {
	t.Parallel()
	dome := crDome(t, "127.0.0.140")
	cfg := crConfig(t, []crAccount{
		{name: "olivia", password: "olivia-pw-1", roles: []string{"operator"}},
		{name: "simon", password: "simon-pw-1", roles: []string{"supervisor"}},
		{name: "victor", password: "victor-pw-1", cameras: []string{"*"}}, // view only
		{name: "ada", password: "ada-pw-1", admin: true},
	}, nil)
	cfg.Cameras = append(cfg.Cameras, crDomeCfg(dome, "dome"))
	g := e2eutil.Start(t, cfg)
	op := e2eutil.Login(t, g.Base, "olivia", "olivia-pw-1")
	sup := e2eutil.Login(t, g.Base, "simon", "simon-pw-1")
	viewer := e2eutil.Login(t, g.Base, "victor", "victor-pw-1")
	admin := e2eutil.Login(t, g.Base, "ada", "ada-pw-1")
	move := func(pan float64, ms int) string {
		return fmt.Sprintf(`{"move":{"pan":%g,"tilt":0,"zoom":0},"timeout_ms":%d}`, pan, ms)
	}

	// rights first: no ptz right, 403, whatever the body
	for _, body := range []string{move(1, 1000), `{"move":{"pan":7}}`} {
		if r := crPTZ(t, g.Base, "dome", viewer, body); r.Status != http.StatusForbidden {
			t.Fatalf("viewer without ptz: %d %s", r.Status, r.Body)
		}
	}
	if st, _ := crGetPTZ(t, g.Base, "dome", viewer); st != http.StatusForbidden {
		t.Fatalf("viewer GET ptz: %d", st)
	}
	// validation
	for _, body := range []string{`{"move":{"pan":1.5}}`, `{"move":{"pan":0,"tilt":-2}}`, `{"move":{"zoom":"x"}}`,
		`{"stop":true,"home":true}`, `{"preset":"../../etc"}`, `{"move":{"pan":0.1},"speed":3}`, `{}`} {
		r := crPTZ(t, g.Base, "dome", op, body)
		if r.Status != http.StatusBadRequest || r.json(t)["error"] == "" {
			t.Fatalf("invalid %s: %d %s", body, r.Status, r.Body)
		}
	}
	if calls := crPTZCalls(dome); len(calls) != 0 {
		t.Fatalf("refused commands reached the camera: %v", calls)
	}

	// GET: capabilities, presets, position, nobody holds control
	st, s := crGetPTZ(t, g.Base, "dome", op)
	if st != http.StatusOK || s.Capabilities == nil || !s.Capabilities.PanTilt || !s.Capabilities.Presets || len(s.Presets) == 0 ||
		s.Status == nil || s.Status.Position == nil || s.Holder != "" {
		t.Fatalf("GET ptz: %d %+v", st, s)
	}

	// the operator moves: control, and the dome pans
	if r := crPTZ(t, g.Base, "dome", op, move(0.5, 4000)); r.Status != http.StatusNoContent {
		t.Fatalf("operator move: %d %s", r.Status, r.Body)
	}
	e2eutil.WaitFor(t, 5*time.Second, "the dome to pan right", func() bool { p, _, _, _ := dome.Position(); return p > 0.05 })
	// the supervisor (higher priority) takes over at once: Stop first
	if r := crPTZ(t, g.Base, "dome", sup, move(-0.5, 5000)); r.Status != http.StatusNoContent {
		t.Fatalf("supervisor takeover: %d %s", r.Status, r.Body)
	}
	// (a Stop of the first move's own timeout may come first on a slow machine)
	if calls := crPTZCalls(dome); len(calls) < 3 || calls[0] != "ContinuousMove" || calls[len(calls)-1] != "ContinuousMove" ||
		crCount(calls, "Stop") != len(calls)-2 {
		t.Fatalf("camera calls %v, want move, Stop, move", calls)
	}
	// the operator (lower) is refused: 409 naming the holder and until when
	r := crPTZ(t, g.Base, "dome", op, move(1, 1000))
	body := r.json(t)
	until, err := time.Parse(time.RFC3339Nano, fmt.Sprint(body["until"]))
	if r.Status != http.StatusConflict || body["holder"] != "simon" || err != nil ||
		until.Before(time.Now().Add(5*time.Second)) || until.After(time.Now().Add(11*time.Second)) ||
		!strings.Contains(fmt.Sprint(body["error"]), "simon") {
		t.Fatalf("lower priority: %d %s", r.Status, r.Body)
	}
	if _, s := crGetPTZ(t, g.Base, "dome", op); s.Holder != "simon" || s.Until == nil {
		t.Fatalf("GET while held: %+v", s)
	}

	// the holder logs out: its control ends and the camera gets Stop, long
	// before the move's own 5 s timeout
	stops := crCount(crPTZCalls(dome), "Stop")
	loggedOut := time.Now()
	if st, _, b := e2eutil.Do(t, http.MethodPost, g.Base+"/api/v1/logout", sup, "", ""); st != http.StatusNoContent {
		t.Fatalf("logout: %d %s", st, b)
	}
	e2eutil.WaitFor(t, 5*time.Second, "Stop after the holder's logout", func() bool { return crCount(crPTZCalls(dome), "Stop") > stops })
	if d := time.Since(loggedOut); d > 4*time.Second {
		t.Fatalf("Stop %v after the logout: the move timed out instead", d)
	}
	if _, s := crGetPTZ(t, g.Base, "dome", op); s.Holder != "" {
		t.Fatalf("holder after logout: %q", s.Holder)
	}

	// the operator again, then an administrator releases it
	if r := crPTZ(t, g.Base, "dome", op, `{"stop":true}`); r.Status != http.StatusNoContent {
		t.Fatalf("operator after the logout: %d %s", r.Status, r.Body)
	}
	if st, _, b := e2eutil.Do(t, http.MethodDelete, g.Base+"/api/v1/cameras/dome/ptz", op, "", ""); st != http.StatusForbidden {
		t.Fatalf("release by a non-admin: %d %s", st, b)
	}
	stops = crCount(crPTZCalls(dome), "Stop")
	if st, _, b := e2eutil.Do(t, http.MethodDelete, g.Base+"/api/v1/cameras/dome/ptz", admin, "", ""); st != http.StatusNoContent {
		t.Fatalf("admin release: %d %s", st, b)
	}
	if n := crCount(crPTZCalls(dome), "Stop"); n != stops+1 {
		t.Fatalf("Stops %d after the release, want %d", n, stops+1)
	}
	if st, _, _ := e2eutil.Do(t, http.MethodDelete, g.Base+"/api/v1/cameras/dome/ptz", admin, "", ""); st != http.StatusNotFound {
		t.Fatalf("release with nobody holding: %d", st)
	}

	// the rate limit per principal (10/s, burst 20): 40 at once
	var wg sync.WaitGroup
	var limited atomic.Int32
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := crPTZ(t, g.Base, "dome", op, `{"stop":true}`); r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") != "" {
				limited.Add(1)
			}
		}()
	}
	wg.Wait()
	if limited.Load() == 0 {
		t.Fatal("40 commands at once were never rate limited")
	}

	// the audit trail, in order
	var got []string
	for _, l := range crAudit(t, g.Config.Audit.Path, "ptz_start", "ptz_end", "ptz_takeover") {
		if l.Camera != "dome" {
			t.Errorf("PTZ audit line for camera %q", l.Camera)
		}
		got = append(got, l.Event+":"+l.Actor)
	}
	want := []string{"ptz_start:olivia", "ptz_end:olivia", "ptz_takeover:simon", "ptz_start:simon", "ptz_end:simon",
		"ptz_start:olivia", "ptz_end:olivia", "ptz_start:olivia"}
	if !slices.Equal(got[:min(len(got), len(want))], want) {
		t.Fatalf("PTZ audit lines\n got %v\nwant %v (then the rate-limit round's)", got, want)
	}
	lines := crAudit(t, g.Config.Audit.Path, "ptz_end", "ptz_takeover", "session_killed")
	var details []string
	for _, l := range lines {
		details = append(details, l.Event+":"+l.Actor+":"+l.Detail)
	}
	all := strings.Join(details, "\n")
	for _, w := range []string{
		"ptz_end:olivia:commands=1", "taken over by simon",
		"ptz_takeover:simon:from olivia (priority 100) to simon (priority 500)",
		"ptz_end:simon:commands=1", "token revoked",
		"released by ada", "session_killed:ada:released the PTZ control of olivia",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("audit lacks %q:\n%s", w, all)
		}
	}
}
