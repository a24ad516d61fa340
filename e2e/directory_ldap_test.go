package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool/slapd"
	"cordon/internal/testtool/testca"
)

// LDAP sign-in through the real gateway against a real slapd over LDAPS:
// a directory user in a mapped group signs in with POST /api/v1/login and
// plays a camera over WHEP; one in no mapped group signs in with no
// rights; a local user of the gateway is never looked up in the directory;
// names with filter metacharacters and empty passwords are refused and
// wrong passwords count towards the lockout, all audited with source ldap.
func TestDirectoryLDAPSignIn(t *testing.T) {
	srv := dwSlapd(t)
	cam := coreCam(t, "dir-cam1", "127.0.0.41", false)
	g := dwStart(t, dwSetup{LDAP: srv, Cams: []config.Camera{camCfg(cam, false)},
		Local: []e2eutil.Account{{Name: "lena", Password: "lena-local-pw-1", Cameras: []string{"*"}}}})

	t.Run("mapped group plays a camera", func(t *testing.T) {
		tok, exp := dwToken(t, "127.0.0.42", g.Base, "alice", slapd.Users["alice"])
		if after := time.Now(); exp.After(after.Add(time.Hour)) || !exp.After(after) {
			t.Fatalf("token expires at %v; token_ttl is 1h, answered at %v", exp, after)
		}
		me := dwWhoAmI(t, g.Base, tok)
		if me.Name != "alice" || me.Source != "ldap" || len(me.Roles) != 1 || me.Roles[0] != "operator" || me.Admin {
			t.Fatalf("me: %+v", me)
		}
		if _, ok := coreCameras(t, g.Base, tok)["dir-cam1"]; !ok {
			t.Fatal("alice does not see the camera her group's role grants")
		}
		v, status, body := e2eutil.Dial(t, g.Base, "dir-cam1", tok, e2eutil.ViewerOptions{})
		if v == nil {
			t.Fatalf("WHEP as alice: %d %s", status, body)
		}
		v.NextAU(t, 20*time.Second)
		if !dwAuditHas(t, g.Config.Audit.Path, map[string]string{"event": "login_ok", "actor": "alice", "source": "ldap"}) {
			t.Fatal("no login_ok with source ldap for alice")
		}
	})

	t.Run("no mapped group signs in with no rights", func(t *testing.T) {
		tok, _ := dwToken(t, "127.0.0.43", g.Base, "bob", slapd.Users["bob"])
		if me := dwWhoAmI(t, g.Base, tok); me.Source != "ldap" || len(me.Roles) != 0 {
			t.Fatalf("bob: %+v", me)
		}
		if cams := coreCameras(t, g.Base, tok); len(cams) != 0 {
			t.Fatalf("bob sees %v", cams)
		}
		if v, status, body := e2eutil.Dial(t, g.Base, "dir-cam1", tok, e2eutil.ViewerOptions{}); v != nil || status != http.StatusForbidden {
			t.Fatalf("WHEP as bob: %d %s, want 403", status, body)
		}
	})

	t.Run("a filter metacharacter name signs in as itself", func(t *testing.T) {
		// the directory has a user whose uid holds ( ) and *: escaped, it
		// finds exactly that entry
		tok, _ := dwToken(t, "127.0.0.44", g.Base, slapd.OddName, slapd.Users[slapd.OddName])
		if me := dwWhoAmI(t, g.Base, tok); me.Name != slapd.OddName {
			t.Fatalf("me: %+v", me)
		}
	})

	t.Run("injection, empty password and wrong passwords refused and counted", func(t *testing.T) {
		const src = "127.0.0.45"
		// slapd is shared by the package (and -count=2 runs it all again):
		// read only what this subtest made it do
		logBefore := len(srv.Log())
		for _, c := range []struct{ name, pw string }{
			{"*)(uid=*", slapd.Users["alice"]}, // would match every user unescaped
			{"*", slapd.Users["alice"]},
			{"alice)(|(uid=*", slapd.Users["alice"]},
			{"alice", ""}, // never an anonymous bind
			{"alice", "wrong-password"},
		} {
			r := drLogin(t, src, g.Base, c.name, c.pw)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("login %q/%q: %s, want 401", c.name, c.pw, r)
			}
		}
		// the fifth failure from this address locked it: even the right
		// password is refused now, with Retry-After
		r := drLogin(t, src, g.Base, "alice", slapd.Users["alice"])
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("after 5 failures: %s %v, want 429 with Retry-After", r, r.Header)
		}
		// another address is not locked out
		dwToken(t, "127.0.0.46", g.Base, "alice", slapd.Users["alice"])
		// aggregated per address, written by the aggregator's goroutine
		e2eutil.WaitFor(t, 10*time.Second, "login_failed with source ldap from the failing address", func() bool {
			return dwAuditHas(t, g.Config.Audit.Path, map[string]string{"event": "login_failed", "remote": src, "source": "ldap"})
		})
		// slapd saw the name escaped (RFC 4515), never a wildcard
		// (a subtree search: a re-check reads an entry by its DN with a
		// base-scope "(uid=*)", which is no wildcard over users)
		since := srv.Log()[logBefore:]
		wild := false
		for _, l := range strings.Split(since, "\n") {
			wild = wild || (strings.Contains(l, "scope=2") && strings.Contains(l, `filter="(uid=*)`))
		}
		if !strings.Contains(strings.ToLower(since), `filter="(uid=\2a\29\28uid=\2a)"`) || wild {
			t.Fatalf("slapd's searches for the injected names:\n%s", dwGrep(since, "SRCH"))
		}
	})

	t.Run("a local name never reaches the directory", func(t *testing.T) {
		logBefore := len(srv.Log())
		tok, _ := dwToken(t, "127.0.0.47", g.Base, "lena", "lena-local-pw-1")
		if me := dwWhoAmI(t, g.Base, tok); me.Source != "local" {
			t.Fatalf("lena: %+v", me)
		}
		if r := drLogin(t, "127.0.0.47", g.Base, "lena", "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("lena wrong password: %s", r)
		}
		if strings.Contains(srv.Log()[logBefore:], "uid=lena") {
			t.Fatal("a local user's name was sent to the directory")
		}
	})
}

// RTSP Basic (on loopback, where Basic is offered) accepts directory
// credentials through the one password check: a directory user in a
// mapped group plays, one in no mapped group is refused the camera, a
// wrong password is a 401.
func TestDirectoryLDAPRTSP(t *testing.T) {
	srv := dwSlapd(t)
	cam := coreCam(t, "dir-cam2", "127.0.0.48", false)
	g := dwStart(t, dwSetup{LDAP: srv, Cams: []config.Camera{camCfg(cam, false)}})
	r, err := dialRTSP(g.RTSPAddr(), "dir-cam2", "alice", slapd.Users["alice"], false)
	if err != nil {
		t.Fatalf("RTSP as alice: %v", err)
	}
	defer r.Close()
	e2eutil.WaitFor(t, 20*time.Second, "RTSP access units for alice", func() bool { return r.aus.Load() > 2 })
	if _, err := dialRTSP(g.RTSPAddr(), "dir-cam2", "bob", slapd.Users["bob"], false); err == nil {
		t.Fatal("bob (no mapped group) played the camera over RTSP")
	}
	if _, err := dialRTSP(g.RTSPAddr(), "dir-cam2", "alice", "wrong-password", false); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password over RTSP: %v, want 401", err)
	}
	if !dwAuditHas(t, g.Config.Audit.Path, map[string]string{"event": "login_ok", "actor": "alice", "protocol": "rtsp", "source": "ldap"}) {
		t.Fatal("no login_ok for alice over RTSP with source ldap")
	}

	// RTSPS (the contract's "RTSP Basic over TLS"): the same directory check
	t.Run("rtsps", func(t *testing.T) {
		ca, err := testca.New(t.TempDir(), "cordon e2e gateway CA")
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.Issue("cordon e2e gateway", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		gs := dwStart(t, dwSetup{LDAP: srv, Cams: []config.Camera{camCfg(cam, false)}, TLS: leaf})
		if !gs.TLS() {
			t.Fatal("the gateway does not serve TLS")
		}
		if n, err := dwDescribeRTSPS(gs.RTSPAddr(), "dir-cam2", "alice", slapd.Users["alice"], ca); err != nil || n == 0 {
			t.Fatalf("RTSPS DESCRIBE as alice: %d tracks, %v", n, err)
		}
		if _, err := dwDescribeRTSPS(gs.RTSPAddr(), "dir-cam2", "alice", "wrong-password", ca); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("wrong password over RTSPS: %v, want 401", err)
		}
		if _, err := dwDescribeRTSPS(gs.RTSPAddr(), "dir-cam2", "bob", slapd.Users["bob"], ca); err == nil {
			t.Fatal("bob (no mapped group) described the camera over RTSPS")
		}
	})
}

// The periodic re-check: a directory user removed from their group loses
// the live WHEP and RTSP sessions the group's role allowed within 5 s of
// the re-check noticing; a user removed from the directory loses their
// live sessions and their session token. Both go through the doors' one
// Guard (view_end carries its reason).
func TestDirectoryLDAPRecheckEndsSessions(t *testing.T) {
	srv := dwSlapd(t)
	cam := coreCam(t, "dir-cam3", "127.0.0.49", false)
	g := dwStart(t, dwSetup{LDAP: srv, Cams: []config.Camera{camCfg(cam, false)}})
	dwAddUser(t, srv, "rita", "rita-pw-1", slapd.OperatorsDN)
	dwAddUser(t, srv, "dora", "dora-pw-1", slapd.OperatorsDN)

	ritaTok, _ := dwToken(t, "127.0.0.50", g.Base, "rita", "rita-pw-1")
	v, status, body := e2eutil.Dial(t, g.Base, "dir-cam3", ritaTok, e2eutil.ViewerOptions{})
	if v == nil {
		t.Fatalf("WHEP as rita: %d %s", status, body)
	}
	w := drWatch(t, v)
	w.waitFlowing(t, 3, 20*time.Second)
	rtsp, err := dialRTSP(g.RTSPAddr(), "dir-cam3", "rita", "rita-pw-1", false)
	if err != nil {
		t.Fatalf("RTSP as rita: %v", err)
	}
	defer rtsp.Close()
	e2eutil.WaitFor(t, 20*time.Second, "RTSP media for rita", func() bool { return rtsp.aus.Load() > 2 })
	doraTok, _ := dwToken(t, "127.0.0.50", g.Base, "dora", "dora-pw-1")
	dv, status, body := e2eutil.Dial(t, g.Base, "dir-cam3", doraTok, e2eutil.ViewerOptions{})
	if dv == nil {
		t.Fatalf("WHEP as dora: %d %s", status, body)
	}
	dw := drWatch(t, dv)
	dw.waitFlowing(t, 3, 20*time.Second)
	doraRTSP, err := dialRTSP(g.RTSPAddr(), "dir-cam3", "dora", "dora-pw-1", false)
	if err != nil {
		t.Fatalf("RTSP as dora: %v", err)
	}
	defer doraRTSP.Close()
	e2eutil.WaitFor(t, 20*time.Second, "RTSP media for dora", func() bool { return doraRTSP.aus.Load() > 2 })

	// nothing changed in the directory: the pass changes nothing
	if res := g.RecheckDirectory(context.Background()); res.Checked < 2 || res.Changed != 0 || res.Gone != 0 {
		t.Fatalf("first pass: %+v", res)
	}
	if err := srv.Modify(slapd.RemoveMember(slapd.OperatorsDN, "rita"), false); err != nil {
		t.Fatal(err)
	}
	if err := srv.Modify("dn: "+slapd.UserDN("dora")+"\nchangetype: delete\n\n", false); err != nil {
		t.Fatal(err)
	}
	noticed := time.Now()
	if res := g.RecheckDirectory(context.Background()); res.Changed != 1 || res.Gone != 1 {
		t.Fatalf("second pass: %+v, want rita changed and dora gone", res)
	}
	e2eutil.WaitFor(t, 5*time.Second-time.Since(noticed), "rita's sessions to leave the registry", func() bool {
		return dwSessionsOf(g, "rita") == 0
	})
	w.endedWithin(t, noticed, 5*time.Second)
	e2eutil.WaitFor(t, 5*time.Second-time.Since(noticed), "rita's RTSP session to end", func() bool {
		select {
		case err := <-rtsp.done:
			rtsp.done <- err
			return true
		default:
			return false
		}
	})
	// dora, removed from the directory, loses her live sessions too
	e2eutil.WaitFor(t, 5*time.Second-time.Since(noticed), "dora's sessions to leave the registry", func() bool {
		return dwSessionsOf(g, "dora") == 0
	})
	dw.endedWithin(t, noticed, 5*time.Second)
	e2eutil.WaitFor(t, 5*time.Second-time.Since(noticed), "dora's RTSP connection to end", func() bool {
		select {
		case err := <-doraRTSP.done:
			doraRTSP.done <- err
			return true
		default:
			return false
		}
	})
	// each session's view_end says why (the Guard's reasons)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(g.Config.Audit.Path)
			t.Logf("audit view_end lines:\n%s", dwGrep(string(b), `"view_end"`))
		}
	})
	for _, c := range []struct{ who, protocol, reason string }{
		{"rita", "webrtc", "ended: right withdrawn"}, {"rita", "rtsp", "ended: right withdrawn"},
		{"dora", "webrtc", "ended: account removed, expired or its credentials changed"},
		{"dora", "rtsp", "ended: account removed, expired or its credentials changed"},
	} {
		e2eutil.WaitFor(t, 5*time.Second, c.who+"'s "+c.protocol+" view_end", func() bool {
			b, err := os.ReadFile(g.Config.Audit.Path)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.SplitAfter(string(b), "\n") {
				var m map[string]any
				if !strings.HasSuffix(l, "\n") || json.Unmarshal([]byte(l), &m) != nil {
					continue
				}
				detail, _ := m["detail"].(string)
				if m["event"] == "view_end" && m["actor"] == c.who && m["camera"] == "dir-cam3" && m["protocol"] == c.protocol &&
					strings.HasSuffix(detail, "; "+c.reason) {
					return true
				}
			}
			return false
		})
	}
	if me := dwWhoAmI(t, g.Base, ritaTok); len(me.Roles) != 0 {
		t.Fatalf("rita's roles after the re-check: %v", me.Roles)
	}
	if r := dwDo(t, "127.0.0.50", http.MethodGet, g.Base+"/api/v1/cameras", doraTok, ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("dora's token after she was removed from the directory: %s, want 401", r)
	}
}

// A directory that does not answer (slapd stopped with SIGSTOP: it
// accepts connections and never replies, the worst case) or cannot be
// reached: local users still sign in, directory users get 503 within the
// timeout with a plain sentence, /healthz (still 200) and
// cordon_directory_up say so; when it answers again, everything recovers.
func TestDirectoryLDAPDown(t *testing.T) {
	srv := dwSlapd(t)
	g := dwStart(t, dwSetup{LDAP: srv, LDAPURL: srv.LDAPURL, Timeout: "1s", // StartTLS this time
		Local: []e2eutil.Account{{Name: "lena", Password: "lena-local-pw-1"}}})
	dwToken(t, "127.0.0.51", g.Base, "alice", slapd.Users["alice"]) // the pool holds a live connection now
	if st, h := dwHealth(t, g.Base); st != http.StatusOK || h["status"] != "ok" {
		t.Fatalf("healthz before: %d %v", st, h)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Resume() })

	start := time.Now()
	r := drLogin(t, "127.0.0.51", g.Base, "alice", slapd.Users["alice"])
	took := time.Since(start)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "local accounts still can") {
		t.Fatalf("directory user while the directory hangs: %s %v", r, r.Header)
	}
	// one timeout (1 s) bounds the whole sign-in; the rest is slack for a
	// loaded machine
	if took > 3*time.Second {
		t.Fatalf("the 503 took %v with a 1s directory timeout", took)
	}
	t.Logf("503 for a directory user %v after the request, with a hung slapd and a 1s timeout", took.Round(time.Millisecond))
	dwToken(t, "127.0.0.51", g.Base, "lena", "lena-local-pw-1")
	st, h := dwHealth(t, g.Base)
	deg, _ := h["degraded"].(map[string]any)
	if reason, _ := deg["ldap"].(string); st != http.StatusOK || h["status"] != "degraded" || !strings.Contains(reason, "no answer within 1s") {
		t.Fatalf("healthz while the directory hangs: %d %v", st, h)
	}
	if v, ok := coreMetric(t, g.MetricsAddr(), "cordon_directory_up", `source="ldap"`); !ok || v != 0 {
		t.Fatalf("cordon_directory_up{source=ldap} = %v (found %v), want 0", v, ok)
	}
	// a directory outage is not a guess: the failures were not counted
	for range 6 {
		if r := drLogin(t, "127.0.0.51", g.Base, "alice", slapd.Users["alice"]); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("repeated sign-in while down: %s", r)
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 10*time.Second, "alice to sign in once slapd answers again", func() bool {
		return drLogin(t, "127.0.0.51", g.Base, "alice", slapd.Users["alice"]).Status == http.StatusOK
	})
	if st, h := dwHealth(t, g.Base); st != http.StatusOK || h["status"] != "ok" {
		t.Fatalf("healthz after: %d %v", st, h)
	}
	if v, _ := coreMetric(t, g.MetricsAddr(), "cordon_directory_up", `source="ldap"`); v != 1 {
		t.Fatalf("cordon_directory_up after recovery = %v", v)
	}

	t.Run("unreachable", func(t *testing.T) {
		closed := "ldaps://127.0.0.1:" + itoa(dwFreePort(t))
		g2 := dwStart(t, dwSetup{LDAP: srv, LDAPURL: closed, Timeout: "1s"})
		r := drLogin(t, "127.0.0.52", g2.Base, "alice", slapd.Users["alice"])
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("directory down: %s", r)
		}
		_, h := dwHealth(t, g2.Base)
		b, _ := json.Marshal(h)
		if h["status"] != "degraded" || !strings.Contains(string(b), "cannot connect to 127.0.0.1") {
			t.Fatalf("healthz: %s", b)
		}
	})
}

// The re-check ends PTZ control through the same auth changes and Guard
// path as live sessions: a directory user whose group gave the ptz right
// steers democam's dome; removed from the group, their control ends
// within 5 s of the re-check (ptz_end naming them, Stop sent to the
// camera), and their next command is refused.
func TestDirectoryLDAPRecheckEndsPTZ(t *testing.T) {
	srv := dwSlapd(t)
	dome := crDome(t, "127.0.0.57")
	g := dwStart(t, dwSetup{LDAP: srv, Cams: []config.Camera{crDomeCfg(dome, "dir-dome")},
		Roles: []config.Role{{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view", "ptz"}, PTZPriority: 100}}})
	dwAddUser(t, srv, "petra", "petra-pw-1", slapd.OperatorsDN)
	tok, _ := dwToken(t, "127.0.0.58", g.Base, "petra", "petra-pw-1")
	const move = `{"move":{"pan":0.3,"tilt":0,"zoom":0},"timeout_ms":20000}`
	if r := crPTZ(t, g.Base, "dir-dome", tok, move); r.Status != http.StatusNoContent {
		t.Fatalf("petra's PTZ move: %d %s", r.Status, r.Body)
	}
	if st, s := crGetPTZ(t, g.Base, "dir-dome", tok); st != http.StatusOK || s.Holder != "petra" {
		t.Fatalf("PTZ status for petra: %d holder %q", st, s.Holder)
	}
	stopsBefore := crCount(crPTZCalls(dome), "Stop")

	if err := srv.Modify(slapd.RemoveMember(slapd.OperatorsDN, "petra"), false); err != nil {
		t.Fatal(err)
	}
	noticed := time.Now()
	if res := g.RecheckDirectory(context.Background()); res.Changed != 1 {
		t.Fatalf("re-check: %+v, want petra changed", res)
	}
	// ptz_end is written before the Stop goes to the camera: wait for both
	e2eutil.WaitFor(t, 5*time.Second-time.Since(noticed), "petra's PTZ control to end with a Stop", func() bool {
		calls := crPTZCalls(dome)
		if crCount(calls, "Stop") <= stopsBefore || calls[len(calls)-1] != "Stop" {
			return false
		}
		for _, l := range crAudit(t, g.Config.Audit.Path, "ptz_end") {
			if l.Actor == "petra" && l.Camera == "dir-dome" {
				return true
			}
		}
		return false
	})
	t.Logf("PTZ control ended (ptz_end and Stop) %v after the re-check noticed", time.Since(noticed).Round(time.Millisecond))
	if r := crPTZ(t, g.Base, "dir-dome", tok, move); r.Status != http.StatusForbidden {
		t.Fatalf("petra's PTZ move after losing the group: %d %s, want 403", r.Status, r.Body)
	}
}
