package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"cordon/e2e/e2eutil"
	"cordon/gateway"
	"cordon/ptz"
)

// A camera with a sub stream through the gateway: the camera list says so;
// WHEP ?stream=sub and rtsp://.../{camera}/sub serve the 160x90 sub
// stream, the plain URLs the 320x180 main one; sessions say which stream
// they watch; an on-demand camera pulls only the stream that is watched.
func TestControlRoomSubStream(t *testing.T) {
	t.Parallel()
	dome := crDome(t, "127.0.0.144")
	cfg := crConfig(t, []crAccount{{name: "ada", password: "ada-pw-1", cameras: []string{"*"}, admin: true}}, nil)
	cam := crDomeCfg(dome, "dome")
	cam.OnDemand = true
	cfg.Cameras = append(cfg.Cameras, cam)
	g := e2eutil.Start(t, cfg, e2eutil.Linger(200*time.Millisecond))
	tok := e2eutil.Login(t, g.Base, "ada", "ada-pw-1")

	_, _, body := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/cameras", tok, "", "")
	var list []struct {
		ID        string   `json:"id"`
		SubStream bool     `json:"sub_stream"`
		PTZ       bool     `json:"ptz"`
		Rights    []string `json:"rights"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 1 || !list[0].SubStream || !list[0].PTZ ||
		strings.Join(list[0].Rights, ",") != "view" {
		t.Fatalf("camera list %s", body)
	}

	// WHEP: the sub stream for the grid; only it is pulled
	v, st, b := crDialStream(t, g.Base, "dome", tok, "sub")
	if v == nil {
		t.Fatalf("WHEP ?stream=sub: %d %s", st, b)
	}
	au := v.NextAU(t, 15*time.Second)
	if w, h := crSPSSize(t, au); w != 160 || h != 90 {
		t.Fatalf("WHEP ?stream=sub: %dx%d, want 160x90", w, h)
	}
	u := g.Cameras().Get("dome")
	if st := u.State(); st.Online || !st.Streams["sub"].Online {
		t.Fatalf("on demand: main online %v, sub online %v; want only the watched sub stream pulled", st.Online, st.Streams["sub"].Online)
	}
	_, _, sess := e2eutil.Do(t, http.MethodGet, g.Base+"/api/v1/admin/sessions", tok, "", "")
	if !strings.Contains(sess, `"stream":"sub"`) {
		t.Fatalf("admin sessions %s lack the sub stream", sess)
	}
	// WHEP main
	m, st, b := crDialStream(t, g.Base, "dome", tok, "")
	if m == nil {
		t.Fatalf("WHEP main: %d %s", st, b)
	}
	if w, h := crSPSSize(t, m.NextAU(t, 15*time.Second)); w != 320 || h != 180 {
		t.Fatalf("WHEP main: %dx%d, want 320x180", w, h)
	}

	// RTSP: /dome and /dome/sub
	base := "rtsp://ada:ada-pw-1@" + g.RTSPAddr() + "/dome"
	for path, want := range map[string]string{"": "h264,320,180", "/sub": "h264,160,90"} {
		streams, stderr, err := ffprobeStreams(t, base+path, "tcp")
		if err != nil || len(streams) != 1 {
			t.Fatalf("ffprobe %s: %v %s", path, err, stderr)
		}
		s := streams[0]
		if got := s["codec_name"].(string) + "," + jsonInt(s["width"]) + "," + jsonInt(s["height"]); got != want {
			t.Errorf("rtsp /dome%s: %s, want %s", path, got, want)
		}
	}
}

func jsonInt(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// crDialStream opens a WHEP session on a camera's stream ("" = main).
func crDialStream(t *testing.T, base, camera, token, stream string) (*e2eutil.Viewer, int, string) {
	t.Helper()
	if stream == "" {
		return e2eutil.Dial(t, base, camera, token, e2eutil.ViewerOptions{})
	}
	return e2eutil.Dial(t, base, camera+"?stream="+stream, token, e2eutil.ViewerOptions{})
}

// crSPSSize reads the picture size from the SPS of a keyframe access unit.
func crSPSSize(t *testing.T, au e2eutil.AU) (int, int) {
	t.Helper()
	for _, n := range au.NALUs {
		if len(n) > 0 && n[0]&0x1f == 7 {
			var sps h264.SPS
			if err := sps.Unmarshal(n); err != nil {
				t.Fatalf("SPS: %v", err)
			}
			return sps.Width(), sps.Height()
		}
	}
	t.Fatalf("access unit without SPS: types %v", e2eutil.H264Types(au.NALUs))
	return 0, 0
}

// PTZ follows the config: onvif added by a reload makes the camera
// steerable; withdrawing the holder's ptz right ends its control (Stop).
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestControlRoomPTZReload(t *testing.T) {
	t.Parallel()
	dome := crDome(t, "127.0.0.145")
	cfg := crConfig(t, []crAccount{{name: "olivia", password: "olivia-pw-1", roles: []string{"operator"}}}, nil)
	cam := crDomeCfg(dome, "dome")
	cam.ONVIF = ""
	cfg.Cameras = append(cfg.Cameras, cam)
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	drWriteConfig(t, path, cfg) // the doors tests' config writer (helpers_doors_test.go)
	g := e2eutil.Start(t, cfg, e2eutil.ConfigFile(path))
	tok := e2eutil.Login(t, g.Base, "olivia", "olivia-pw-1")
	if st, _ := crGetPTZ(t, g.Base, "dome", tok); st != http.StatusNotFound {
		t.Fatalf("PTZ without onvif: %d", st)
	}
	cfg.Cameras[0].ONVIF = dome.ONVIFURL()
	drWriteConfig(t, path, cfg)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := crPTZ(t, g.Base, "dome", tok, `{"move":{"pan":0.3},"timeout_ms":5000}`); r.Status != http.StatusNoContent {
		t.Fatalf("PTZ after the reload: %d %s", r.Status, r.Body)
	}
	stops := crCount(crPTZCalls(dome), "Stop")
	cfg.Auth.Roles[0].Rights = []string{"view"}
	cfg.Auth.Roles[0].PTZPriority = 0
	drWriteConfig(t, path, cfg)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 5*time.Second, "Stop after the ptz right was withdrawn", func() bool { return crCount(crPTZCalls(dome), "Stop") > stops })
	ends := crAudit(t, g.Config.Audit.Path, "ptz_end")
	if len(ends) != 1 || ends[0].Actor != "olivia" || !strings.Contains(ends[0].Detail, "right withdrawn") {
		t.Fatalf("ptz_end lines %+v", ends)
	}
	if r := crPTZ(t, g.Base, "dome", tok, `{"stop":true}`); r.Status != http.StatusForbidden {
		t.Fatalf("PTZ without the right: %d %s", r.Status, r.Body)
	}

	// a door without tokens (the ONVIF face) steers through the unit's
	// attachment: the Guard still ends a holder whose right is withdrawn
	cfg.Auth.Roles[0].Rights, cfg.Auth.Roles[0].PTZPriority = []string{"view", "ptz"}, 100
	reload := func() {
		t.Helper()
		drWriteConfig(t, path, cfg)
		if err := g.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload()
	att, ok := g.Cameras().Get("dome").Attachment(gateway.PTZAttachment).(interface {
		Do(context.Context, ptz.Controller, ptz.Command) error
	})
	if !ok {
		t.Fatal("the dome's PTZ attachment has no Do")
	}
	onvifCmd := func() error {
		return att.Do(context.Background(), ptz.Controller{Name: "olivia", Priority: 100, Protocol: "onvif"},
			ptz.Command{Move: &ptz.Velocity{Pan: -0.3}, TimeoutMS: 5000})
	}
	if err := onvifCmd(); err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Roles[0].Rights, cfg.Auth.Roles[0].PTZPriority = []string{"view"}, 0
	reload()
	e2eutil.WaitFor(t, 5*time.Second, "the ONVIF holder's control ended", func() bool {
		return len(crAudit(t, g.Config.Audit.Path, "ptz_end")) == 2
	})
	// onvif removed: the attachment goes (control ends), the API says 404
	cfg.Auth.Roles[0].Rights, cfg.Auth.Roles[0].PTZPriority = []string{"view", "ptz"}, 100
	reload()
	if err := onvifCmd(); err != nil {
		t.Fatal(err)
	}
	cfg.Cameras[0].ONVIF = ""
	reload()
	if g.Cameras().Get("dome").Attachment(gateway.PTZAttachment) != nil {
		t.Fatal("PTZ attachment kept without onvif")
	}
	if st, _ := crGetPTZ(t, g.Base, "dome", tok); st != http.StatusNotFound {
		t.Fatalf("PTZ after onvif was removed: %d", st)
	}
	ends = crAudit(t, g.Config.Audit.Path, "ptz_end")
	if len(ends) != 3 || !strings.Contains(ends[2].Detail, "closed") {
		t.Fatalf("ptz_end lines %+v", ends)
	}
	_ = os.Remove(path)
}
