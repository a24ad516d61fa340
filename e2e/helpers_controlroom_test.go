package e2e

// Helpers of the control-room tests (controlroom_*_test.go): PTZ through
// the gateway against democam's ONVIF dome, sub streams, B-frame cameras
// and the viewer's single view. Names carry a "cr" prefix. Camera hosts of
// these tests: 127.0.0.140-159.

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
)

const (
	crDomeUser = "onvif-admin"
	crDomePass = "dome-secret-7319"
)

// crDome starts democam's ONVIF PTZ dome (with a sub stream) on host.
func crDome(t testing.TB, host string) *democam.PTZCamera {
	t.Helper()
	d := &democam.PTZCamera{ID: "dome", Listen: host + ":0", Path: "ptz", SubPath: "ptz/sub",
		Username: crDomeUser, Password: crDomePass}
	if err := d.Initialize(); err != nil {
		t.Fatalf("democam dome on %s: %v", host, err)
	}
	t.Cleanup(d.Close)
	return d
}

// crDomeCfg is the dome's camera config: PTZ through its ONVIF service,
// its sub stream.
func crDomeCfg(d *democam.PTZCamera, id string) config.Camera {
	return config.Camera{ID: id, Name: "Dome " + id, URL: d.URL(), SubURL: d.SubURL(), ONVIF: d.ONVIFURL(),
		Username: crDomeUser, Password: crDomePass, Transport: "tcp"}
}

// crAccount is a user of the control-room tests with its roles.
type crAccount struct {
	name, password string
	cameras, roles []string
	admin          bool
}

// crConfig is a test config with the roles "operator" (ptz priority 100)
// and "supervisor" (500) on every camera, and the given users.
func crConfig(t testing.TB, users []crAccount, cams []config.Camera) *config.Config {
	t.Helper()
	var accounts []e2eutil.Account
	for _, u := range users {
		accounts = append(accounts, e2eutil.Account{Name: u.name, Password: u.password, Cameras: u.cameras, Admin: u.admin})
	}
	cfg := e2eutil.Config(t, accounts, cams)
	cfg.Auth.Roles = []config.Role{
		{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view", "ptz"}, PTZPriority: 100},
		{Name: "supervisor", Cameras: []string{"*"}, Rights: []string{"view", "ptz", "playback"}, PTZPriority: 500},
	}
	for i, u := range users {
		cfg.Auth.Users[i].Roles = u.roles
	}
	return cfg
}

// crResp is a JSON answer.
type crResp struct {
	Status int
	Header http.Header
	Body   string
}

func (r crResp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", r.Status, r.Body)
	}
	return m
}

// crPTZ sends a PTZ command (POST /api/v1/cameras/{id}/ptz).
func crPTZ(t testing.TB, base, camera, token, body string) crResp {
	t.Helper()
	st, h, b := e2eutil.Do(t, http.MethodPost, base+"/api/v1/cameras/"+camera+"/ptz", token, "application/json", body)
	return crResp{st, h, b}
}

// crPTZStatus is the GET answer's shape.
type crPTZStatus struct {
	Capabilities *struct {
		PanTilt bool `json:"pan_tilt"`
		Zoom    bool `json:"zoom"`
		Presets bool `json:"presets"`
		Home    bool `json:"home"`
	} `json:"capabilities"`
	Presets []struct {
		Token string `json:"token"`
		Name  string `json:"name"`
	} `json:"presets"`
	Status *struct {
		Position *struct{ Pan, Tilt, Zoom float64 } `json:"position"`
		Moving   bool                               `json:"moving"`
	} `json:"status"`
	Holder string     `json:"holder"`
	Until  *time.Time `json:"until"`
}

func crGetPTZ(t testing.TB, base, camera, token string) (int, crPTZStatus) {
	t.Helper()
	st, _, b := e2eutil.Do(t, http.MethodGet, base+"/api/v1/cameras/"+camera+"/ptz", token, "", "")
	var s crPTZStatus
	if st == http.StatusOK {
		if err := json.Unmarshal([]byte(b), &s); err != nil {
			t.Fatalf("PTZ status %q: %v", b, err)
		}
	}
	return st, s
}

// crAuditLine is one audit line's fields that the tests read.
type crAuditLine struct {
	Seq      uint64  `json:"seq"`
	Event    string  `json:"event"`
	Actor    string  `json:"actor"`
	Camera   string  `json:"camera"`
	Protocol string  `json:"protocol"`
	Detail   string  `json:"detail"`
	Duration float64 `json:"duration_s"`
}

// crAudit returns the complete audit lines whose event is one of events.
func crAudit(t testing.TB, path string, events ...string) []crAuditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []crAuditLine
	for _, raw := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasSuffix(raw, "\n") {
			break
		}
		var l crAuditLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("audit line %q: %v", raw, err)
		}
		for _, e := range events {
			if l.Event == e {
				out = append(out, l)
			}
		}
	}
	return out
}

// crPTZCalls returns the dome's ContinuousMove and Stop calls, in order.
func crPTZCalls(d *democam.PTZCamera) []string {
	var out []string
	for _, c := range d.Calls() {
		if c == "ContinuousMove" || c == "Stop" {
			out = append(out, c)
		}
	}
	return out
}

// crCount counts s in list.
func crCount(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
