package e2e

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
)

// ONVIF passwords of the PTZ test's principals.
const (
	ovOliviaONVIF = "olivia-onvif-Secret-0123456789"
	ovSimonONVIF  = "simon-onvif-Secret-0123456789"
	ovVictorONVIF = "victor-onvif-Secret-0123456789"
)

// A VMS steers the democam dome through cordon's ONVIF face with the npm
// onvif client, and the face goes through cordon's one PTZ path: the same
// lock as the HTTP PTZ API (a supervisor's HTTP command takes control from
// the VMS operator and the camera gets Stop first; the operator's next
// ONVIF move is refused naming the holder), the same audit lines
// (protocol onvif), the same rights (a view-only principal's profiles
// carry no PTZ and its move is refused before the lock), and the same
// Guard (withdrawing the ONVIF holder's right ends its control with a
// Stop). The dome has a sub_url, so each principal sees a main and a sub
// profile, and the sub profile's URI plays at the sub stream's size.
func TestONVIFPTZThroughCordonsPTZPath(t *testing.T) {
	t.Parallel()
	dome := crDome(t, "127.0.0.175")
	cfg := crConfig(t, []crAccount{
		{name: "olivia", password: "olivia-pw-1", roles: []string{"operator"}},
		{name: "simon", password: "simon-pw-1", roles: []string{"supervisor"}},
		{name: "victor", password: "victor-pw-1", cameras: []string{"*"}}, // view only
	}, nil)
	cfg.Cameras = append(cfg.Cameras, crDomeCfg(dome, "dome"))
	cfg.ONVIF.Listen = "127.0.0.1:0"
	for i, secret := range []string{ovOliviaONVIF, ovSimonONVIF, ovVictorONVIF} {
		cfg.Auth.Users[i].ONVIFPasswordFile = ovSecretFile(t, cfg.Auth.Users[i].Name+".onvif", secret)
	}
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	e2eutil.WaitFor(t, 30*time.Second, "dome online", func() bool { return g.Cameras().Get("dome").State().Online })
	e2eutil.WaitFor(t, 30*time.Second, "the dome's sub stream to have its parameter sets", func() bool {
		return streamKnown(g, "dome", "sub") && streamKnown(g, "dome", "")
	})
	addr := g.ONVIFAddr()
	simon := e2eutil.Login(t, g.Base, "simon", "simon-pw-1")

	// main and sub profiles, both with PTZ for the operator; their URIs
	// play at their own sizes through the RTSP re-serve
	res := ovNode(t, addr, "olivia", ovOliviaONVIF, onvifnode.Step{"op": "connect"},
		onvifnode.Step{"op": "streamUri", "profileToken": "dome"}, onvifnode.Step{"op": "streamUri", "profileToken": "dome.sub"})
	conn := onvifnode.Value[onvifnode.Connect](t, res[0])
	if len(conn.Profiles) != 2 || conn.Profiles[0].Token != "dome" || conn.Profiles[1].Token != "dome.sub" ||
		!conn.Profiles[0].PTZ || !conn.Profiles[1].PTZ || conn.Profiles[1].Width != 160 || conn.Profiles[1].Height != 90 ||
		conn.Profiles[0].Width <= 160 || conn.Profiles[1].Name != "Dome dome (sub)" {
		t.Fatalf("olivia's profiles: %+v", conn)
	}
	_, rtspPort, _ := strings.Cut(g.RTSPAddr(), ":")
	for i, suffix := range []string{"", "/sub"} {
		uri := onvifnode.Value[string](t, res[1+i])
		if uri != "rtsp://127.0.0.1:"+rtspPort+"/dome"+suffix {
			t.Fatalf("stream URI %q", uri)
		}
		p := conn.Profiles[i]
		if got, want := testtool.ProbeVideo(t, ovWithCredentials(t, uri, "olivia", ovOliviaONVIF)), "h264,"+strconv.Itoa(p.Width)+","+strconv.Itoa(p.Height); got != want {
			t.Fatalf("ffprobe %s: %q, the profile says %q", uri, got, want)
		}
	}
	// an ONVIF move (on the sub profile: the same camera) takes the one
	// lock: the HTTP API names olivia the holder
	res = ovNode(t, addr, "olivia", ovOliviaONVIF, onvifnode.Step{"op": "connect"},
		onvifnode.Step{"op": "continuousMove", "profileToken": "dome.sub", "x": 0.5, "y": 0, "zoom": 0, "timeout": 5000})
	onvifnode.Value[any](t, res[1])
	e2eutil.WaitFor(t, 5*time.Second, "the dome to pan right", func() bool { p, _, _, _ := dome.Position(); return p > 0.05 })
	if st, s := crGetPTZ(t, g.Base, "dome", simon); st != http.StatusOK || s.Holder != "olivia" || s.Until == nil {
		t.Fatalf("HTTP PTZ status after olivia's ONVIF move: %d %+v", st, s)
	}

	// the supervisor takes over over HTTP: Stop to the camera first, then
	// olivia's next ONVIF move is refused naming simon
	stops := crCount(crPTZCalls(dome), "Stop")
	if r := crPTZ(t, g.Base, "dome", simon, `{"move":{"pan":-0.5,"tilt":0,"zoom":0},"timeout_ms":5000}`); r.Status != http.StatusNoContent {
		t.Fatalf("supervisor takeover over HTTP: %d %s", r.Status, r.Body)
	}
	if calls := crPTZCalls(dome); crCount(calls, "Stop") <= stops || calls[len(calls)-1] != "ContinuousMove" {
		t.Fatalf("camera calls %v: want Stop before simon's move", calls)
	}
	res = ovNode(t, addr, "olivia", ovOliviaONVIF, onvifnode.Step{"op": "connect"},
		onvifnode.Step{"op": "continuousMove", "profileToken": "dome", "x": 1, "y": 0, "zoom": 0, "timeout": 1000})
	if res[1].OK || !strings.Contains(res[1].Error, "simon") {
		t.Fatalf("olivia's ONVIF move while simon holds control: %+v", res[1])
	}
	// simon, holding control from the HTTP API, stops over ONVIF: one
	// holder whatever the door
	res = ovNode(t, addr, "simon", ovSimonONVIF, onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "stop", "profileToken": "dome"})
	onvifnode.Value[any](t, res[1])

	// a view-only principal: profiles without PTZ, a move refused by the
	// one authorizer before the lock (denied audited, protocol onvif),
	// nothing reaches the camera
	calls := len(crPTZCalls(dome))
	res = ovNode(t, addr, "victor", ovVictorONVIF, onvifnode.Step{"op": "connect"},
		onvifnode.Step{"op": "continuousMove", "profileToken": "dome", "x": 1, "y": 0, "zoom": 0, "timeout": 1000})
	conn = onvifnode.Value[onvifnode.Connect](t, res[0])
	if len(conn.Profiles) != 2 || conn.Profiles[0].PTZ || conn.Profiles[1].PTZ {
		t.Fatalf("victor's profiles: %+v", conn)
	}
	if res[1].OK {
		t.Fatal("victor steered the dome over ONVIF")
	}
	if n := len(crPTZCalls(dome)); n != calls {
		t.Fatalf("victor's refused move reached the camera (%d calls, was %d)", n, calls)
	}
	e2eutil.WaitFor(t, 5*time.Second, "victor's refused move audited as the HTTP door's would be", func() bool {
		return len(ovAuditLines(t, g.Config.Audit.Path, func(e ovAudit) bool {
			return e.Event == "denied" && e.Actor == "victor" && e.Camera == "dome" && e.Protocol == "onvif"
		})) == 1
	})

	// the audit: olivia's control over ONVIF, simon's takeover over HTTP
	// naming olivia, one chain for both doors
	lines := ovAuditLines(t, g.Config.Audit.Path, func(e ovAudit) bool { return strings.HasPrefix(e.Event, "ptz_") })
	if len(lines) < 3 || lines[0].Event != "ptz_start" || lines[0].Actor != "olivia" || lines[0].Protocol != "onvif" ||
		lines[1].Event != "ptz_end" || lines[1].Actor != "olivia" ||
		lines[2].Event != "ptz_takeover" || lines[2].Actor != "simon" || lines[2].Protocol != "http" || !strings.Contains(lines[2].Detail, "olivia") {
		t.Fatalf("PTZ audit lines %+v", lines)
	}

	// the Guard ends an ONVIF holder whose right is withdrawn: a reload
	// takes the supervisor's ptz right (ending simon's control), olivia
	// moves over ONVIF, then the operator role loses ptz
	olivia := e2eutil.Login(t, g.Base, "olivia", "olivia-pw-1")
	cfg.Auth.Roles[1].Rights, cfg.Auth.Roles[1].PTZPriority = []string{"view"}, 0
	drWriteConfig(t, path, cfg)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 5*time.Second, "simon's control to end with his right", func() bool {
		_, s := crGetPTZ(t, g.Base, "dome", olivia)
		return s.Holder == ""
	})
	res = ovNode(t, addr, "olivia", ovOliviaONVIF, onvifnode.Step{"op": "connect"},
		onvifnode.Step{"op": "continuousMove", "profileToken": "dome", "x": 0.3, "y": 0, "zoom": 0, "timeout": 5000})
	onvifnode.Value[any](t, res[1])
	stops = crCount(crPTZCalls(dome), "Stop")
	withdrawn := time.Now()
	cfg.Auth.Roles[0].Rights, cfg.Auth.Roles[0].PTZPriority = []string{"view"}, 0
	drWriteConfig(t, path, cfg)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 5*time.Second, "Stop after olivia's ptz right was withdrawn", func() bool {
		return crCount(crPTZCalls(dome), "Stop") > stops
	})
	if d := time.Since(withdrawn); d > 4*time.Second {
		t.Fatalf("Stop %v after the right was withdrawn: the move timed out instead", d)
	}
	ends := ovAuditLines(t, g.Config.Audit.Path, func(e ovAudit) bool { return e.Event == "ptz_end" && e.Actor == "olivia" })
	if len(ends) != 2 {
		t.Fatalf("olivia's ptz_end lines %+v", ends)
	}
}

// streamKnown reports whether a camera's stream has a video track with
// parameter sets (the face sizes profiles from them).
func streamKnown(g *drGateway, cameraID, stream string) bool {
	u := g.Cameras().Get(cameraID)
	if u == nil {
		return false
	}
	s := u.Stream(stream)
	if s == nil {
		return false
	}
	for _, tr := range s.Info().Tracks {
		if len(tr.ParamSets) > 0 {
			return true
		}
	}
	return false
}
