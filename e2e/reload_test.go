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

// reloadWithin is how soon after the config file changes the change must
// be in force (CONTRACT/issue: live sessions end within 2 s).
const reloadWithin = 2 * time.Second

func drCameraIDs(t *testing.T, base, tok string) []string {
	t.Helper()
	st, _, body := e2eutil.Do(t, http.MethodGet, base+"/api/v1/cameras", tok, "", "")
	var cams []struct {
		ID string `json:"id"`
	}
	if st != 200 || json.Unmarshal([]byte(body), &cams) != nil {
		t.Fatalf("cameras: %d %s", st, body)
	}
	var ids []string
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// Rewriting the config file narrows a user's rights, then removes the
// user: within 2 s their live WHEP and RTSP sessions on the cameras they
// lost end (media stops, the RTSP client sees the connection end), their
// other sessions continue, new requests are refused, and config_loaded is
// audited.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestReloadNarrowsThenRemovesUser(t *testing.T) {
	camA := drCam(t, "r-a", "127.0.0.64")
	camB := drCam(t, "r-b", "127.0.0.65")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "xavier", Password: "xavier-pw-1", Cameras: []string{"r-*"}},
		{Name: "root", Password: "root-pw-1", Cameras: []string{"*"}, Admin: true},
	}, []config.Camera{drCamCfg(camA), drCamCfg(camB)})
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	base, auditPath := g.Base, cfg.Audit.Path

	x := e2eutil.Login(t, base, "xavier", "xavier-pw-1")
	root := e2eutil.Login(t, base, "root", "root-pw-1")
	va := drViewer(t, base, "r-a", x)
	vb := drViewer(t, base, "r-b", x)
	wa, wb := drWatch(t, va), drWatch(t, vb)
	wa.waitFlowing(t, 10, 15*time.Second)
	wb.waitFlowing(t, 10, 15*time.Second)
	pa := drRTSPPlay(t, g.RTSPAddr(), "r-a", "xavier", "xavier-pw-1")
	pb := drRTSPPlay(t, g.RTSPAddr(), "r-b", "xavier", "xavier-pw-1")
	pa.waitPackets(t, 20, 15*time.Second)
	pb.waitPackets(t, 20, 15*time.Second)
	if n := drSessionCount(t, base, root); n != 4 {
		t.Fatalf("%d live sessions, want 4", n)
	}

	// 1. Narrow xavier to r-b.
	mark := drAuditLen(t, auditPath)
	narrowed := *cfg
	narrowed.Auth.Users = slices.Clone(cfg.Auth.Users)
	narrowed.Auth.Users[0].Cameras = []string{"r-b"}
	wrote := time.Now()
	drWriteConfig(t, path, &narrowed)

	select {
	case <-pa.ended:
		if d := pa.endedAt.Load().Sub(wrote); d > reloadWithin {
			t.Errorf("RTSP session on r-a ended %v after the file changed, want within %v", d, reloadWithin)
		}
	case <-time.After(reloadWithin + 3*time.Second):
		t.Fatalf("RTSP session on r-a still running %v after xavier lost r-a", reloadWithin+3*time.Second)
	}
	last := wa.stoppedAt(t, 700*time.Millisecond, reloadWithin+3*time.Second)
	if d := last.Sub(wrote); d > reloadWithin {
		t.Errorf("WHEP media on r-a kept flowing %v after the file changed, want at most %v", d, reloadWithin)
	}
	drWaitAudit(t, auditPath, mark, drMatch{Event: "config_loaded", DetailPrefix: path}, 5*time.Second)
	drWaitAudit(t, auditPath, mark, drMatch{Event: "view_end", Actor: "xavier", Camera: "r-a", Protocol: "webrtc"}, 5*time.Second)
	drWaitAudit(t, auditPath, mark, drMatch{Event: "view_end", Actor: "xavier", Camera: "r-a", Protocol: "rtsp"}, 5*time.Second)

	// r-b sessions are untouched.
	wb.waitFlowing(t, 10, 5*time.Second)
	before := pb.pkts.Load()
	pb.waitPackets(t, before+10, 5*time.Second)
	select {
	case <-pb.ended:
		t.Fatalf("RTSP session on r-b ended: %v", pb.err)
	default:
	}
	// New requests for r-a are refused; r-b still allowed.
	if _, st, _ := e2eutil.Dial(t, base, "r-a", x, e2eutil.ViewerOptions{}); st != http.StatusForbidden {
		t.Errorf("xavier POST /whep/r-a after narrowing: %d, want 403", st)
	}
	if st, _ := drRTSP(t, g.RTSPAddr(), "127.0.0.1", "DESCRIBE", "r-a", "xavier", "xavier-pw-1"); st != 403 && st != 404 {
		t.Errorf("xavier RTSP DESCRIBE r-a after narrowing: %d, want 403 (or 404)", st)
	}
	if ids := drCameraIDs(t, base, x); !slices.Equal(ids, []string{"r-b"}) {
		t.Errorf("xavier's cameras after narrowing: %v, want [r-b]", ids)
	}

	// 2. Remove xavier altogether.
	mark = drAuditLen(t, auditPath)
	removed := narrowed
	removed.Auth.Users = slices.Clone(cfg.Auth.Users[1:])
	wrote = time.Now()
	drWriteConfig(t, path, &removed)
	select {
	case <-pb.ended:
		if d := pb.endedAt.Load().Sub(wrote); d > reloadWithin {
			t.Errorf("RTSP session on r-b ended %v after xavier was removed, want within %v", d, reloadWithin)
		}
	case <-time.After(reloadWithin + 3*time.Second):
		t.Fatalf("RTSP session on r-b still running after xavier was removed")
	}
	last = wb.stoppedAt(t, 700*time.Millisecond, reloadWithin+3*time.Second)
	if d := last.Sub(wrote); d > reloadWithin {
		t.Errorf("WHEP media on r-b kept flowing %v after xavier was removed, want at most %v", d, reloadWithin)
	}
	drWaitAudit(t, auditPath, mark, drMatch{Event: "config_loaded", DetailPrefix: path}, 5*time.Second)
	st, hdr, body := e2eutil.Do(t, http.MethodGet, base+"/api/v1/cameras", x, "", "")
	if st != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("removed user's token on /api/v1/cameras: %d %s, want 401 with a Bearer challenge", st, body)
	}
	if _, st, _ := e2eutil.Dial(t, base, "r-b", x, e2eutil.ViewerOptions{}); st != http.StatusUnauthorized {
		t.Errorf("removed user's WHEP POST: %d, want 401", st)
	}
	if st, _ := drRTSP(t, g.RTSPAddr(), "127.0.0.1", "DESCRIBE", "r-b", "xavier", "xavier-pw-1"); st != 401 {
		t.Errorf("removed user's RTSP DESCRIBE: %d, want 401", st)
	}
	if r := drLogin(t, "127.0.0.1", base, "xavier", "xavier-pw-1"); r.Status != http.StatusUnauthorized {
		t.Errorf("removed user's login: %s, want 401", r)
	}
	if n := drSessionCount(t, base, root); n != 0 {
		t.Errorf("%d live sessions after xavier was removed, want 0", n)
	}
}

// An invalid file, delivered through Reload (the SIGHUP path) and through
// the file watcher, changes nothing: the running config stays, and the
// rejection is audited (without echoing secrets).
func TestReloadInvalidFileChangesNothing(t *testing.T) {
	camA := drCam(t, "i-a", "127.0.0.66")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "xavier", Password: "xavier-pw-1", Cameras: []string{"i-a"}},
	}, []config.Camera{drCamCfg(camA)})
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	base, auditPath := g.Base, cfg.Audit.Path
	x := e2eutil.Login(t, base, "xavier", "xavier-pw-1")
	v := drViewer(t, base, "i-a", x)
	w := drWatch(t, v)
	w.waitFlowing(t, 10, 15*time.Second)

	for _, bad := range []struct{ name, mutate string }{
		{"unknown key", "bogus_key: 1\n"},
		{"bad glob", ""},
	} {
		t.Run(bad.name, func(t *testing.T) {
			mark := drAuditLen(t, auditPath)
			if bad.mutate != "" {
				// A valid config plus an unknown top-level key, written at
				// once: the watcher must never see the valid half alone.
				broken := *cfg
				broken.Auth.Users = slices.Clone(cfg.Auth.Users)
				broken.Auth.Users[0].Cameras = nil // would remove all rights if applied
				drWriteFile(t, path, append(drConfigBytes(t, &broken), bad.mutate...))
			} else {
				broken := *cfg
				broken.Auth.Users = slices.Clone(cfg.Auth.Users)
				broken.Auth.Users[0].Cameras = []string{"[i-"} // malformed glob
				drWriteConfig(t, path, &broken)
			}
			if err := g.Reload(); err == nil {
				t.Fatalf("Reload of an invalid file returned nil")
			}
			l := drWaitAudit(t, auditPath, mark, drMatch{Event: "config_loaded", DetailPrefix: "rejected"}, 5*time.Second)
			for _, s := range []string{camA.Password, "$argon2id"} {
				if strings.Contains(l.Raw, s) {
					t.Errorf("rejection audit line echoes a secret: %s", l.Raw)
				}
			}
			// The file watcher (1 s) sees the file too and rejects it again.
			e2eutil.WaitFor(t, 10*time.Second, "the watcher's rejection", func() bool {
				n := 0
				for _, l := range drAudit(t, auditPath) {
					if l.N > mark && l.s("event") == "config_loaded" && strings.HasPrefix(l.s("detail"), "rejected") {
						n++
					}
				}
				return n >= 2
			})
			// Nothing changed: the session continues, rights stand.
			w.waitFlowing(t, 10, 5*time.Second)
			if ids := drCameraIDs(t, base, x); !slices.Equal(ids, []string{"i-a"}) {
				t.Errorf("cameras after a rejected reload: %v, want [i-a]", ids)
			}
			if v2, st, body := e2eutil.Dial(t, base, "i-a", x, e2eutil.ViewerOptions{}); v2 == nil {
				t.Errorf("POST after a rejected reload: %d %s, want 201", st, body)
			} else {
				v2.Delete(t)
			}
			for _, l := range drAudit(t, auditPath)[mark:] {
				if l.s("event") == "config_loaded" && !strings.HasPrefix(l.s("detail"), "rejected") {
					t.Errorf("an invalid file was applied: %s", l.Raw)
				}
			}
		})
	}
}

// A camera added by reload appears in /api/v1/cameras and can be viewed; a
// camera removed disappears and its viewers end.
func TestReloadCamerasAddedAndRemoved(t *testing.T) {
	camA := drCam(t, "c-a", "127.0.0.67")
	camB := drCam(t, "c-b", "127.0.0.68")
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "root", Password: "root-pw-1", Cameras: []string{"*"}, Admin: true},
	}, []config.Camera{drCamCfg(camA)})
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	base, auditPath := g.Base, cfg.Audit.Path
	root := e2eutil.Login(t, base, "root", "root-pw-1")
	if ids := drCameraIDs(t, base, root); !slices.Equal(ids, []string{"c-a"}) {
		t.Fatalf("cameras at start: %v", ids)
	}
	va := drViewer(t, base, "c-a", root)
	wa := drWatch(t, va)
	wa.waitFlowing(t, 10, 15*time.Second)
	pa := drRTSPPlay(t, g.RTSPAddr(), "c-a", "root", "root-pw-1")
	pa.waitPackets(t, 20, 15*time.Second)

	// Replace c-a by c-b.
	mark := drAuditLen(t, auditPath)
	next := *cfg
	next.Cameras = []config.Camera{drCamCfg(camB)}
	wrote := time.Now()
	drWriteConfig(t, path, &next)
	e2eutil.WaitFor(t, 5*time.Second, "c-b listed and c-a gone", func() bool {
		return slices.Equal(drCameraIDs(t, base, root), []string{"c-b"})
	})
	last := wa.stoppedAt(t, 700*time.Millisecond, reloadWithin+3*time.Second)
	if d := last.Sub(wrote); d > reloadWithin {
		t.Errorf("WHEP media of the removed camera kept flowing %v after the file changed", d)
	}
	select {
	case <-pa.ended:
		if d := pa.endedAt.Load().Sub(wrote); d > reloadWithin {
			t.Errorf("RTSP session of the removed camera ended %v after the file changed, want within %v", d, reloadWithin)
		}
	case <-time.After(reloadWithin + 3*time.Second):
		t.Errorf("RTSP session of the removed camera still running")
	}
	drWaitAudit(t, auditPath, mark, drMatch{Event: "config_loaded", DetailPrefix: path}, 5*time.Second)
	drWaitAudit(t, auditPath, mark, drMatch{Event: "view_end", Camera: "c-a", Protocol: "webrtc"}, 5*time.Second)
	if _, st, _ := e2eutil.Dial(t, base, "c-a", root, e2eutil.ViewerOptions{}); st != http.StatusNotFound {
		t.Errorf("POST to the removed camera: %d, want 404", st)
	}
	vb := drViewer(t, base, "c-b", root)
	drWatch(t, vb).waitFlowing(t, 10, 15*time.Second)
	drWaitAudit(t, auditPath, mark, drMatch{Event: "camera_online", Camera: "c-b"}, 10*time.Second)
}
