package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
)

// drBuildCordon builds the cordon command once per test into a temp dir.
func drBuildCordon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cordon")
	cmd := exec.Command("go", "build", "-o", bin, "cordon/cmd/cordon")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cordon: %v\n%s", err, out)
	}
	return bin
}

// drVerify runs `cordon audit verify FILE` and returns exit code and output.
func drVerify(t *testing.T, bin, file string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, "audit", "verify", file).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running cordon audit verify: %v", err)
	return -1, ""
}

// drAuditKeys is the key order of a line; source only on login_ok and
// login_failed, duration_s and bytes only on view_end (drWantKeys). The
// gateway signs its chain: every line ends with "sig", after "key" (the
// genesis key, first line) or "next_key" (a key change) where they occur.
var drAuditKeys = []string{"seq", "time", "node", "event", "actor", "camera", "remote", "protocol", "detail", "prev", "sig"}

func drWantKeys(event string) []string {
	var out []string
	for _, k := range drAuditKeys {
		if k == "detail" && (event == "login_ok" || event == "login_failed") {
			out = append(out, "source")
		}
		if k == "prev" && event == "view_end" {
			out = append(out, "duration_s", "bytes")
		}
		out = append(out, k)
	}
	return out
}

// A scripted session leaves exactly the CONTRACT's trail: the events in
// order, every line with the CONTRACT's fields, seq gap-free, prev the
// SHA-256 of the previous line, view_end with duration and bytes; `cordon
// audit verify` accepts it and names the line an attacker edited, and
// rejects a deleted line.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestAuditTrailScriptedSession(t *testing.T) {
	camA := drCam(t, "a-a", "127.0.0.61")
	camB := drCam(t, "a-b", "127.0.0.62")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "bob", Password: "bob-pw-1", Cameras: []string{"a-a"}},
	}, []config.Camera{drCamCfg(camA), drCamCfg(camB)})
	testStart := time.Now().UTC().Add(-time.Second)
	g := drStart(t, cfg, "")
	base, path := g.Base, cfg.Audit.Path
	bin := drBuildCordon(t) // while the cameras come online

	drWaitAudit(t, path, 0, drMatch{Event: "camera_online", Camera: "a-a"}, 15*time.Second)
	bob := e2eutil.Login(t, base, "bob", "bob-pw-1")
	if r := drLogin(t, "127.0.0.1", base, "bob", "not-bobs-pw"); r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %s", r)
	}
	// A failure is written by the audit aggregator's goroutine (it may be
	// summarised with others), so it need not precede what the client
	// does next: wait for it to keep the script's order.
	drWaitAudit(t, path, 0, drMatch{Event: "login_failed", Actor: "bob", Protocol: "http"}, 15*time.Second)
	v := drViewer(t, base, "a-a", bob)
	w := drWatch(t, v)
	w.waitFlowing(t, 25, 15*time.Second)
	if st := v.Delete(t); st != http.StatusOK {
		t.Fatalf("DELETE: %d", st)
	}
	if _, st, _ := e2eutil.Dial(t, base, "a-b", bob, e2eutil.ViewerOptions{}); st != http.StatusForbidden {
		t.Fatalf("POST /whep/a-b: %d, want 403", st)
	}
	if st, _, body := e2eutil.Do(t, http.MethodPost, base+"/api/v1/logout", bob, "", ""); st != http.StatusNoContent {
		t.Fatalf("logout: %d %s", st, body)
	}
	mark := drAuditLen(t, path)
	camA.Stop()
	drWaitAudit(t, path, mark, drMatch{Event: "camera_offline", Camera: "a-a"}, 15*time.Second)
	if err := camA.Start(); err != nil {
		t.Fatal(err)
	}
	drWaitAudit(t, path, mark, drMatch{Event: "camera_online", Camera: "a-a"}, 20*time.Second)
	g.Stop() // the file is complete and quiet from here on
	testEnd := time.Now().UTC().Add(time.Second)

	lines := drAudit(t, path)
	raw := mustRead(t, path)
	if !bytes.HasSuffix(raw, []byte("\n")) || bytes.Count(raw, []byte("\n")) != len(lines) {
		t.Fatalf("audit file is not whole JSON lines")
	}

	// Every line: the CONTRACT's fields, in the documented order, seq
	// gap-free from 1, time RFC 3339 UTC and monotonic, prev chained.
	var prevTime time.Time
	for i, l := range lines {
		keys := slices.DeleteFunc(drKeyOrder(t, l.Raw), func(k string) bool { return k == "key" || k == "next_key" })
		want := drWantKeys(l.s("event"))
		if i == 0 && l.s("key") == "" {
			t.Errorf("line 1 does not introduce the signing key: %s", l.Raw)
		}
		if strings.Join(keys, ",") != strings.Join(want, ",") {
			t.Errorf("line %d keys %v, want %v", l.N, keys, want)
		}
		if seq, _ := l.Fields["seq"].(float64); seq != float64(i+1) {
			t.Errorf("line %d seq %v, want %d", l.N, l.Fields["seq"], i+1)
		}
		ts, err := time.Parse(time.RFC3339Nano, l.s("time"))
		if err != nil || !strings.HasSuffix(l.s("time"), "Z") {
			t.Errorf("line %d time %q is not RFC 3339 UTC", l.N, l.s("time"))
		}
		if ts.Before(testStart) || ts.After(testEnd) || ts.Before(prevTime) {
			t.Errorf("line %d time %v outside the test or going backwards", l.N, ts)
		}
		prevTime = ts
		wantPrev := ""
		if i > 0 {
			sum := sha256.Sum256([]byte(lines[i-1].Raw))
			wantPrev = hex.EncodeToString(sum[:])
		}
		if l.s("prev") != wantPrev {
			t.Errorf("line %d prev %q, want %q", l.N, l.s("prev"), wantPrev)
		}
		for _, s := range []string{"bob-pw-1", "not-bobs-pw", bob, camA.Password, camB.Password} {
			if strings.Contains(l.Raw, s) {
				t.Errorf("line %d contains a secret: %s", l.N, l.Raw)
			}
		}
	}
	if len(lines) == 0 || lines[0].s("event") != "config_loaded" {
		t.Fatalf("first line is not config_loaded: %v", lines)
	}

	// The script's events, in order.
	script := []drMatch{
		{Event: "login_ok", Actor: "bob", Protocol: "http"},
		{Event: "login_failed", Actor: "bob", Protocol: "http"},
		{Event: "view_start", Actor: "bob", Camera: "a-a", Protocol: "webrtc"},
		{Event: "view_end", Actor: "bob", Camera: "a-a", Protocol: "webrtc"},
		{Event: "denied", Actor: "bob", Camera: "a-b", Protocol: "webrtc"},
		{Event: "logout", Actor: "bob", Protocol: "http"},
		{Event: "camera_offline", Camera: "a-a"},
		{Event: "camera_online", Camera: "a-a"},
	}
	var found []drLine
	j := 0
	for _, l := range lines {
		if j < len(script) && script[j].ok(l) {
			found = append(found, l)
			j++
		}
	}
	if j < len(script) {
		var got []string
		for _, l := range lines {
			got = append(got, l.s("event")+"/"+l.s("actor")+"/"+l.s("camera")+"/"+l.s("protocol"))
		}
		t.Fatalf("audit trail lacks %+v in order; it has %v", script[j], got)
	}
	// The same client, the same remote on every event (an address, as the
	// HTTP events record it), so an auditor can correlate them.
	for _, l := range found[:6] {
		if l.s("remote") != "127.0.0.1" {
			t.Errorf("%s line %d remote %q, want 127.0.0.1", l.s("event"), l.N, l.s("remote"))
		}
	}
	end := found[3]
	if d, _ := end.Fields["duration_s"].(float64); d <= 0 {
		t.Errorf("view_end duration_s %v, want > 0", end.Fields["duration_s"])
	}
	if b, _ := end.Fields["bytes"].(float64); b <= 0 {
		t.Errorf("view_end bytes %v, want > 0", end.Fields["bytes"])
	}

	// cordon audit verify: OK on the real file.
	if code, out := drVerify(t, bin, path); code != 0 {
		t.Fatalf("audit verify of the untouched log: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	// An edited actor: exit 1, naming that line.
	edited := filepath.Join(dir, "edited.log")
	k := found[0].N // bob's login_ok
	var b strings.Builder
	for _, l := range lines {
		if l.N == k {
			b.WriteString(strings.Replace(l.Raw, `"actor":"bob"`, `"actor":"mallory"`, 1))
		} else {
			b.WriteString(l.Raw)
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(edited, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := drVerify(t, bin, edited)
	if code != 1 || !strings.Contains(out, "line "+strconv.Itoa(k)+":") {
		t.Errorf("audit verify of a log whose line %d actor was edited: exit %d %q, want exit 1 naming line %d", k, code, out, k)
	}
	// A deleted middle line: exit 1.
	deleted := filepath.Join(dir, "deleted.log")
	b.Reset()
	mid := len(lines) / 2
	for i, l := range lines {
		if i != mid {
			b.WriteString(l.Raw + "\n")
		}
	}
	if err := os.WriteFile(deleted, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := drVerify(t, bin, deleted); code != 1 || !strings.Contains(out, "BROKEN") {
		t.Errorf("audit verify of a log missing line %d: exit %d %q, want exit 1", mid+1, code, out)
	}
}

// drKeyOrder returns the top-level keys of a JSON object in order.
func drKeyOrder(t *testing.T, raw string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// Fail closed: when the audit log cannot be written (here: the file is
// replaced by a directory while the gateway runs, so it can be neither
// written nor reopened — root ignores permission bits, not file types),
// no new viewing session starts unaudited: WHEP POST and RTSP DESCRIBE
// answer 503, login refuses to issue unaudited tokens, /healthz names the
// audit log. When the file is back, the log heals and the chain verifies.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestAuditFailClosed(t *testing.T) {
	cam := drCam(t, "f-a", "127.0.0.63")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "bob", Password: "bob-pw-1", Cameras: []string{"f-a"}},
		{Name: "nvr", Password: "nvr-secret-1", Cameras: []string{"f-a"}, APIKey: true},
	}, []config.Camera{drCamCfg(cam)})
	g := drStart(t, cfg, "")
	base, path := g.Base, cfg.Audit.Path
	bin := drBuildCordon(t)
	bob := e2eutil.Login(t, base, "bob", "bob-pw-1")
	// bob's RTSP password is verified (and cached) while the log works.
	if st, _ := drRTSP(t, g.RTSPAddr(), "127.0.0.1", "DESCRIBE", "f-a", "bob", "bob-pw-1"); st != 200 {
		t.Fatalf("RTSP DESCRIBE before the failure: %d", st)
	}
	if r := drDo(t, "127.0.0.1", http.MethodGet, base+"/healthz", nil, ""); r.Status != 200 {
		t.Fatalf("healthz before the failure: %s", r)
	}

	// Break the log: the path becomes a directory.
	if err := os.Rename(path, path+".saved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}

	// The very first session after the failure must not start unaudited.
	offer := drOffer(t)
	r := drDo(t, "127.0.0.1", http.MethodPost, base+"/whep/f-a", map[string]string{"Authorization": bearer(bob), "Content-Type": "application/sdp"}, offer)
	if r.Status != http.StatusServiceUnavailable {
		t.Errorf("first WHEP POST after the audit log broke: %d, want 503 (a session started that the audit log never recorded)", r.Status)
		if r.Status == http.StatusCreated {
			// The session is live (with no peer connecting it will time out);
			// end it so the rest runs on a clean state.
			drDo(t, "127.0.0.1", http.MethodDelete, base+r.Header.Get("Location"), map[string]string{"Authorization": bearer(bob)}, "")
		}
	}
	hz := drDo(t, "127.0.0.1", http.MethodGet, base+"/healthz", nil, "")
	if hz.Status == http.StatusOK || !strings.Contains(hz.Body, "audit log") {
		t.Errorf("healthz with a broken audit log: %s, want non-200 naming the audit log", hz)
	}
	r = drDo(t, "127.0.0.1", http.MethodPost, base+"/whep/f-a", map[string]string{"Authorization": bearer(bob), "Content-Type": "application/sdp"}, offer)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "audit") {
		t.Errorf("WHEP POST with a broken audit log: %s (Retry-After %q), want 503 with Retry-After and a reason naming the audit log", r, r.Header.Get("Retry-After"))
	} else {
		drJSONError(t, "WHEP 503", r)
	}
	if st, _ := drRTSP(t, g.RTSPAddr(), "127.0.0.1", "DESCRIBE", "f-a", "bob", "bob-pw-1"); st != 503 {
		t.Errorf("RTSP DESCRIBE (credentials verified before) with a broken audit log: %d, want 503", st)
	}
	if st, _ := drRTSP(t, g.RTSPAddr(), "127.0.0.1", "DESCRIBE", "f-a", "nvr", "nvr-secret-1"); st != 503 {
		t.Errorf("RTSP DESCRIBE (API key not seen before) with a broken audit log: %d, want 503 (not a 401 blaming the client's credentials)", st)
	}
	if lr := drLogin(t, "127.0.0.1", base, "bob", "bob-pw-1"); lr.Status != http.StatusServiceUnavailable {
		t.Errorf("login with a broken audit log: %s, want 503 (no unaudited tokens)", lr)
	}

	// Repair: the file is back; the next audited event heals the log.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".saved", path); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 10*time.Second, "login after repair", func() bool {
		return drLogin(t, "127.0.0.1", base, "bob", "bob-pw-1").Status == http.StatusOK
	})
	if r := drDo(t, "127.0.0.1", http.MethodGet, base+"/healthz", nil, ""); r.Status != 200 {
		t.Errorf("healthz after repair: %s, want 200", r)
	}
	v, st, body := e2eutil.Dial(t, base, "f-a", bob, e2eutil.ViewerOptions{})
	if v == nil {
		t.Errorf("WHEP POST after repair: %d %s, want 201", st, body)
	} else {
		v.Delete(t)
	}
	g.Stop()
	if code, out := drVerify(t, bin, path); code != 0 {
		t.Errorf("audit verify after the failure and repair: exit %d %s", code, out)
	}
}
