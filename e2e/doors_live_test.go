package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
)

// liveWithin is CONTRACT "Rights": a session its principal may no longer
// hold ends within 5 seconds.
const liveWithin = 5 * time.Second

// dwAuditTime is the time of an audit line.
func dwAuditTime(t *testing.T, l drLine) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, l.s("time"))
	if err != nil {
		t.Fatalf("audit line %d time %q", l.N, l.s("time"))
	}
	return ts
}

// One gateway, reloaded from its file: the rights a caller sees, the same
// answer for a camera not permitted and one that does not exist, and the
// live re-check — a password change ends the WHEP and RTSP sessions and
// the RTSP connection opened with the old one, a removed role ends a
// session, a logout ends the WHEP session of that token; each within 5 s,
// audited as view_end with the reason.
// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestDoorsLiveRecheck(t *testing.T) {
	camA := drCam(t, "w-a", "127.0.0.111")
	camB := drCam(t, "w-b", "127.0.0.112")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "bob", Password: "bob-pw-1", Cameras: []string{"w-a"}},
		{Name: "carol", Password: "carol-pw-1"},
		{Name: "root", Password: "root-pw-1", Cameras: []string{"*"}, Admin: true},
		{Name: "nvr", Password: "nvr-key-1", Cameras: []string{"w-b"}, APIKey: true},
	}, []config.Camera{drCamCfg(camA), drCamCfg(camB)})
	cfg.Auth.Roles = []config.Role{
		{Name: "watch", Cameras: []string{"w-*"}, Rights: []string{"view", "playback"}},
		{Name: "steer", Cameras: []string{"w-b"}, Rights: []string{"ptz"}, PTZPriority: 200},
	}
	cfg.Auth.Users[1].Roles = []string{"watch", "steer"}
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	base, auditPath, rtsp := g.Base, cfg.Audit.Path, g.RTSPAddr()
	drWaitAudit(t, auditPath, 0, drMatch{Event: "camera_online", Camera: "w-a"}, 15*time.Second)
	drWaitAudit(t, auditPath, 0, drMatch{Event: "camera_online", Camera: "w-b"}, 15*time.Second)

	t.Run("cameras-carry-rights", func(t *testing.T) {
		for _, c := range []struct {
			tok  string
			want map[string][]string
		}{
			{e2eutil.Login(t, base, "bob", "bob-pw-1"), map[string][]string{"w-a": {"view"}}},
			{e2eutil.Login(t, base, "carol", "carol-pw-1"), map[string][]string{"w-a": {"view", "playback"}, "w-b": {"view", "ptz", "playback"}}},
			{"key:nvr:nvr-key-1", map[string][]string{"w-b": {"view"}}},
		} {
			st, _, body := e2eutil.Do(t, http.MethodGet, base+"/api/v1/cameras", c.tok, "", "")
			var cams []struct {
				ID     string   `json:"id"`
				Rights []string `json:"rights"`
			}
			if st != 200 || json.Unmarshal([]byte(body), &cams) != nil {
				t.Fatalf("cameras: %d %s", st, body)
			}
			got := map[string][]string{}
			for _, cam := range cams {
				got[cam.ID] = cam.Rights
			}
			if len(got) != len(c.want) {
				t.Errorf("listed %v, want %v", got, c.want)
			}
			for id, r := range c.want {
				if !slices.Equal(got[id], r) {
					t.Errorf("rights on %s: %v, want %v (%s)", id, got[id], r, body)
				}
			}
		}
	})

	t.Run("same-answer-not-permitted-and-unknown", func(t *testing.T) {
		bob := e2eutil.Login(t, base, "bob", "bob-pw-1")
		offer := drOffer(t)
		hdr := map[string]string{"Authorization": bearer(bob), "Content-Type": "application/sdp"}
		forbidden := drDo(t, "127.0.0.114", http.MethodPost, base+"/whep/w-b", hdr, offer)
		unknown := drDo(t, "127.0.0.114", http.MethodPost, base+"/whep/no-such-cam", hdr, offer)
		if forbidden.Status != http.StatusForbidden || unknown.Status != forbidden.Status || unknown.Body != forbidden.Body {
			t.Errorf("WHEP: not permitted %s, unknown %s: want the same 403", forbidden, unknown)
		}
		c := dwRTSPDial(t, rtsp, "127.0.0.114")
		st1, h1 := c.do("DESCRIBE", "w-b", dwBasic("bob", "bob-pw-1"))
		st2, h2 := c.do("DESCRIBE", "no-such-cam", dwBasic("bob", "bob-pw-1"))
		h1.Del("CSeq")
		h2.Del("CSeq")
		if st1 != 403 || st2 != st1 || !slicesEqualHeader(h1, h2) {
			t.Errorf("RTSP: not permitted %d %v, unknown %d %v: want the same answer", st1, h1, st2, h2)
		}
		// a principal whose globs permit the id learns that it does not exist
		root := e2eutil.Login(t, base, "root", "root-pw-1")
		if r := drDo(t, "127.0.0.114", http.MethodPost, base+"/whep/no-such-cam", map[string]string{"Authorization": bearer(root), "Content-Type": "application/sdp"}, offer); r.Status != http.StatusNotFound {
			t.Errorf("admin with * on an unknown camera: %s, want 404", r)
		}
	})

	current := *cfg
	rewrite := func(edit func(c *config.Config)) (time.Time, int) {
		t.Helper()
		next := current
		next.Auth.Users = slices.Clone(current.Auth.Users)
		next.Auth.Roles = slices.Clone(current.Auth.Roles)
		edit(&next)
		mark := drAuditLen(t, auditPath)
		wrote := time.Now()
		drWriteConfig(t, path, &next)
		current = next
		return wrote, mark
	}
	// ended waits for a view_end of who on camera over protocol after mark
	// whose detail carries reason, and returns its time and the reload's.
	ended := func(t *testing.T, mark int, who, camera, protocol, reason string) (reload, end time.Time) {
		t.Helper()
		cl := drWaitAudit(t, auditPath, mark, drMatch{Event: "config_loaded", DetailPrefix: path}, liveWithin+5*time.Second)
		ve := drWaitAudit(t, auditPath, mark, drMatch{Event: "view_end", Actor: who, Camera: camera, Protocol: protocol}, liveWithin+5*time.Second)
		if !strings.Contains(ve.s("detail"), reason) {
			t.Errorf("view_end of %s over %s: detail %q, want the reason %q", who, protocol, ve.s("detail"), reason)
		}
		return dwAuditTime(t, cl), dwAuditTime(t, ve)
	}

	t.Run("password-change-ends-whep-rtsp-and-the-connection", func(t *testing.T) {
		bob := e2eutil.Login(t, base, "bob", "bob-pw-1")
		v := drViewer(t, base, "w-a", bob)
		w := drWatch(t, v)
		w.waitFlowing(t, 10, 15*time.Second)
		p := drRTSPPlay(t, rtsp, "w-a", "bob", "bob-pw-1")
		p.waitPackets(t, 20, 15*time.Second)
		conn := dwRTSPDial(t, rtsp, "127.0.0.113")
		if st, _ := conn.do("DESCRIBE", "w-a", dwBasic("bob", "bob-pw-1")); st != 200 {
			t.Fatalf("DESCRIBE on the connection kept open: %d", st)
		}

		wrote, mark := rewrite(func(c *config.Config) { c.Auth.Users[0].PasswordHash = e2eutil.Hash(t, "bob-pw-2") })
		var rtspEnd time.Time
		select {
		case <-p.ended:
			rtspEnd = *p.endedAt.Load()
		case <-time.After(liveWithin + 5*time.Second):
			t.Fatalf("the RTSP session still runs %v after bob's password changed", liveWithin+5*time.Second)
		}
		last := w.stoppedAt(t, 700*time.Millisecond, liveWithin+5*time.Second)
		reload, whepEnd := ended(t, mark, "bob", "w-a", "webrtc", "credentials changed")
		_, rtspAudit := ended(t, mark, "bob", "w-a", "rtsp", "credentials changed")
		t.Logf("password change: file written -> view_end WHEP %v, RTSP %v (the file is polled every second); reload (config_loaded) -> view_end WHEP %v, RTSP %v; the RTSP client saw its end %v after the write",
			whepEnd.Sub(wrote).Round(time.Millisecond), rtspAudit.Sub(wrote).Round(time.Millisecond),
			whepEnd.Sub(reload).Round(time.Millisecond), rtspAudit.Sub(reload).Round(time.Millisecond), rtspEnd.Sub(wrote).Round(time.Millisecond))
		for what, d := range map[string]time.Duration{"WHEP media": last.Sub(wrote), "RTSP session": rtspEnd.Sub(wrote)} {
			if d > liveWithin {
				t.Errorf("%s ended %v after the file changed, want within %v", what, d, liveWithin)
			}
		}
		// the connection that proved the old password: closed, or its next
		// request refused
		if st, _ := conn.do("DESCRIBE", "w-a", dwBasic("bob", "bob-pw-1")); st != 0 && st != 401 {
			t.Errorf("the old connection's next request with the old password: %d, want refused", st)
		}
		if st, _, _ := e2eutil.Do(t, http.MethodGet, base+"/api/v1/cameras", bob, "", ""); st != http.StatusUnauthorized {
			t.Errorf("bob's token after the password change: %d, want 401", st)
		}
		e2eutil.Login(t, base, "bob", "bob-pw-2")
	})

	t.Run("role-removed-ends-session", func(t *testing.T) {
		carol := e2eutil.Login(t, base, "carol", "carol-pw-1")
		v := drViewer(t, base, "w-b", carol)
		w := drWatch(t, v)
		w.waitFlowing(t, 10, 15*time.Second)
		p := drRTSPPlay(t, rtsp, "w-b", "carol", "carol-pw-1")
		p.waitPackets(t, 20, 15*time.Second)
		// carol keeps "steer" (ptz on w-b) but loses "watch", her only view
		wrote, mark := rewrite(func(c *config.Config) { c.Auth.Users[1].Roles = []string{"steer"} })
		select {
		case <-p.ended:
		case <-time.After(liveWithin + 5*time.Second):
			t.Fatal("carol's RTSP session still runs after her role was removed")
		}
		last := w.stoppedAt(t, 700*time.Millisecond, liveWithin+5*time.Second)
		reload, end := ended(t, mark, "carol", "w-b", "webrtc", "right withdrawn")
		ended(t, mark, "carol", "w-b", "rtsp", "right withdrawn")
		t.Logf("role removed: file written -> view_end %v; reload -> view_end %v", end.Sub(wrote).Round(time.Millisecond), end.Sub(reload).Round(time.Millisecond))
		if d := last.Sub(wrote); d > liveWithin {
			t.Errorf("WHEP media kept flowing %v after the role was removed", d)
		}
		if _, st, _ := e2eutil.Dial(t, base, "w-b", carol, e2eutil.ViewerOptions{}); st != http.StatusForbidden {
			t.Errorf("carol POST after losing the role: %d, want 403", st)
		}
	})

	t.Run("logout-ends-whep", func(t *testing.T) {
		mark := drAuditLen(t, auditPath)
		tok := e2eutil.Login(t, base, "bob", "bob-pw-2")
		other := e2eutil.Login(t, base, "bob", "bob-pw-2")
		v := drViewer(t, base, "w-a", tok)
		v2 := drViewer(t, base, "w-a", other)
		w, w2 := drWatch(t, v), drWatch(t, v2)
		w.waitFlowing(t, 10, 15*time.Second)
		out := time.Now()
		if st, _, body := e2eutil.Do(t, http.MethodPost, base+"/api/v1/logout", tok, "", ""); st != http.StatusNoContent {
			t.Fatalf("logout: %d %s", st, body)
		}
		last := w.stoppedAt(t, 700*time.Millisecond, liveWithin+5*time.Second)
		ve := drWaitAudit(t, auditPath, mark, drMatch{Event: "view_end", Actor: "bob", Camera: "w-a", Protocol: "webrtc"}, liveWithin+5*time.Second)
		if !strings.Contains(ve.s("detail"), "logout") {
			t.Errorf("view_end detail %q, want the logout named", ve.s("detail"))
		}
		t.Logf("logout -> view_end %v", dwAuditTime(t, ve).Sub(out).Round(time.Millisecond))
		if d := last.Sub(out); d > liveWithin {
			t.Errorf("WHEP media flowed %v after logout", d)
		}
		// the same principal's other token keeps its session
		w2.waitFlowing(t, 10, 5*time.Second)
	})
}

// slicesEqualHeader compares two RTSP answers' headers.
func slicesEqualHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
