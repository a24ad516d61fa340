package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/gateway"
	"cordon/internal/testtool"
)

// ovHardenResult is one camera of GET /api/v1/admin/hardening.
type ovHardenResult struct {
	Camera    string    `json:"camera"`
	Vendor    string    `json:"vendor"`
	CheckedAt time.Time `json:"checked_at"`
	Error     string    `json:"error"`
	Settings  []struct {
		Name   string `json:"name"`
		Want   string `json:"want"`
		Have   string `json:"have"`
		OK     bool   `json:"ok"`
		Status string `json:"status"`
	} `json:"settings"`
}

func (r ovHardenResult) ok() bool {
	if r.Error != "" || len(r.Settings) == 0 {
		return false
	}
	for _, s := range r.Settings {
		if !s.OK {
			return false
		}
	}
	return true
}

func (r ovHardenResult) setting(name string) (have string, ok bool) {
	for _, s := range r.Settings {
		if s.Name == name {
			return s.Have, s.OK
		}
	}
	return "", false
}

// ovHardening reads the admin API's hardening report by camera.
func ovHardening(t *testing.T, base, token string) map[string]ovHardenResult {
	t.Helper()
	st, _, body := e2eutil.Do(t, http.MethodGet, base+"/api/v1/admin/hardening", token, "", "")
	if st != http.StatusOK {
		t.Fatalf("GET /api/v1/admin/hardening: %d %s", st, body)
	}
	var list []ovHardenResult
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("hardening report %s: %v", body, err)
	}
	out := map[string]ovHardenResult{}
	for _, r := range list {
		out[r.Camera] = r
	}
	return out
}

// ovVendorCam is a democam RTSP camera with an emulated management API
// (democam.VendorAPI) on the same host and credentials, as a real
// Hikvision or Dahua camera has.
func ovVendorCam(t *testing.T, id, host, vendor string) (*democam.Camera, *democam.VendorAPI, config.Camera) {
	t.Helper()
	cam := drCam(t, id, host)
	api := &democam.VendorAPI{Vendor: vendor, Listen: host + ":0", Username: cam.Username, Password: cam.Password}
	if err := api.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	cc := drCamCfg(cam)
	cc.AdminURL = "http://" + api.Addr() // vendor: auto
	return cam, api, cc
}

// The drift watch in serve: every camera is checked at start (and at
// each connect), the admin API shows vendor and each setting, a drift at
// the first check is audited; an administrator's apply sets the settings
// and reads them back (camera_hardened, the admin as actor, metric 1);
// a factory reset is found at the next connect: hardening_drift audited
// once, metric 0, the API shows the drifted settings; a camera that stays
// drifted is not audited again.
func TestHardeningDriftWatchInServe(t *testing.T) {
	hikCam, hik, hikCfg := ovVendorCam(t, "hik", "127.0.0.155", democam.VendorHikvision)
	_, dah, dahCfg := ovVendorCam(t, "dah", "127.0.0.156", democam.VendorDahua)
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "root", Password: "root-login-pw", Admin: true},
		{Name: "carol", Password: "carol-login-pw", Cameras: []string{"*"}},
	}, []config.Camera{hikCfg, dahCfg})
	cfg.CameraNetwork.DNSListen = "127.0.0.150:0"
	cfg.CameraNetwork.NTPListen = "127.0.0.150:0"
	g := e2eutil.Start(t, cfg, func(g *gateway.Gateway) { g.HardenMinGap = 100 * time.Millisecond })
	_, ntpPort, _ := net.SplitHostPort(g.NTPAddr())
	root := e2eutil.Login(t, g.Base, "root", "root-login-pw")

	// 1. checked at start: vendors detected, factory settings drift
	var rep map[string]ovHardenResult
	e2eutil.WaitFor(t, 60*time.Second, "both cameras checked", func() bool {
		rep = ovHardening(t, g.Base, root)
		return !rep["hik"].CheckedAt.IsZero() && !rep["dah"].CheckedAt.IsZero()
	})
	if r := rep["hik"]; r.Vendor != "hikvision" || r.ok() || r.Error != "" {
		t.Fatalf("hik at start: %+v", r)
	}
	if r := rep["dah"]; r.Vendor != "dahua" || r.ok() || r.Error != "" {
		t.Fatalf("dah at start: %+v", r)
	}
	if have, ok := rep["hik"].setting("cloud.hik-connect"); ok || have != "on" {
		t.Fatalf("hik cloud at start: %q %v", have, ok)
	}
	drift := func(camera string) []ovAudit {
		return ovAuditLines(t, cfg.Audit.Path, func(e ovAudit) bool { return e.Event == "hardening_drift" && e.Camera == camera })
	}
	if d := drift("hik"); len(d) != 1 || !strings.HasPrefix(d[0].Detail, "not as wanted at the first check") {
		t.Fatalf("drift lines at start: %+v", d)
	}
	if v, _ := coreMetric(t, g.MetricsAddr(), "cordon_camera_hardening_ok", `camera="hik"`); v != 0 {
		t.Fatalf("cordon_camera_hardening_ok{hik} = %v at start", v)
	}

	// 2. only an administrator applies
	carol := e2eutil.Login(t, g.Base, "carol", "carol-login-pw")
	if st, _, _ := e2eutil.Do(t, http.MethodPost, g.Base+"/api/v1/admin/hardening/hik/apply", carol, "", ""); st != http.StatusForbidden {
		t.Fatalf("carol's apply: %d", st)
	}
	for _, id := range []string{"hik", "dah"} {
		st, _, body := e2eutil.Do(t, http.MethodPost, g.Base+"/api/v1/admin/hardening/"+id+"/apply", root, "", "")
		var r ovHardenResult
		if st != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || !r.ok() {
			t.Fatalf("apply %s: %d %s", id, st, body)
		}
	}
	if hik.Setting("EZVIZ.enabled") != "false" || hik.Setting("ntp.port") != ntpPort || hik.Setting("ip.dns1") != "127.0.0.150" {
		t.Fatalf("hik after apply: %v", hik.Settings())
	}
	if dah.Setting("T2UServer.Enable") != "false" || dah.Setting("Network.eth0.DnsServers[0]") != "127.0.0.150" {
		t.Fatalf("dah after apply: %v", dah.Settings())
	}
	rep = ovHardening(t, g.Base, root)
	if !rep["hik"].ok() || !rep["dah"].ok() {
		t.Fatalf("report after apply: %+v", rep)
	}
	hardened := ovAuditLines(t, cfg.Audit.Path, func(e ovAudit) bool { return e.Event == "camera_hardened" })
	if len(hardened) != 2 || hardened[0].Actor != "root" || hardened[0].Camera != "hik" || hardened[1].Camera != "dah" {
		t.Fatalf("camera_hardened lines: %+v", hardened)
	}
	if v, _ := coreMetric(t, g.MetricsAddr(), "cordon_camera_hardening_ok", `camera="hik"`); v != 1 {
		t.Fatalf("cordon_camera_hardening_ok{hik} = %v after apply", v)
	}

	// 3. a factory reset, found at the next camera connect
	hik.FactoryReset()
	reconnect := func() {
		t.Helper()
		before := ovHardening(t, g.Base, root)["hik"].CheckedAt
		if err := hikCam.Restart(); err != nil {
			t.Fatal(err)
		}
		e2eutil.WaitFor(t, 60*time.Second, "hik checked after its reconnect", func() bool {
			return ovHardening(t, g.Base, root)["hik"].CheckedAt.After(before)
		})
	}
	reconnect()
	r := ovHardening(t, g.Base, root)["hik"]
	if have, ok := r.setting("cloud.hik-connect"); r.ok() || ok || have != "on" {
		t.Fatalf("hik after the reset: %+v", r)
	}
	if v, _ := coreMetric(t, g.MetricsAddr(), "cordon_camera_hardening_ok", `camera="hik"`); v != 0 {
		t.Fatalf("cordon_camera_hardening_ok{hik} = %v after the reset", v)
	}
	// the drift line goes through the camera aggregator's writer: wait
	// for it
	e2eutil.WaitFor(t, 10*time.Second, "the drift audited", func() bool { return len(drift("hik")) == 2 })
	if d := drift("hik")[1]; !strings.HasPrefix(d.Detail, "settings changed back") || !strings.Contains(d.Detail, "cloud.hik-connect") {
		t.Fatalf("drift line: %+v", d)
	}
	// 4. still drifted at the next check: no new drift (the watcher logs
	// each drift it audits, synchronously)
	drifts := func() int {
		return strings.Count(g.Logs.String(), `"msg":"camera hardening drift","component":"harden","camera":"hik"`)
	}
	if n := drifts(); n != 2 {
		t.Fatalf("%d drift log lines for hik, want 2:\n%s", n, g.Logs.String())
	}
	reconnect()
	if n := drifts(); n != 2 {
		t.Fatalf("drift reported again for a camera that stayed drifted (%d)", n)
	}
	if d := drift("hik"); len(d) != 2 {
		t.Fatalf("drift lines after a second check: %+v", d)
	}
	if v, _ := coreMetric(t, g.MetricsAddr(), "cordon_camera_hardening_ok", `camera="dah"`); v != 1 {
		t.Fatalf("cordon_camera_hardening_ok{dah} = %v", v)
	}
}

// The viewer's admin panel in headless chromium: the hardening status of
// each camera beside the egress report, the drifted settings
// highlighted; the administrator's "Apply" fixes the camera (read back by
// the API and on the camera, audited with the administrator as actor),
// and the panel shows it as wanted. No CSP violation or script error.
func TestHardeningPanelInBrowser(t *testing.T) {
	_, hik, hikCfg := ovVendorCam(t, "hik", "127.0.0.157", democam.VendorHikvision)
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "root", Password: "root-login-pw", Admin: true, Cameras: []string{"*"}}},
		[]config.Camera{hikCfg})
	cfg.CameraNetwork.DNSListen = "127.0.0.150:0"
	g := e2eutil.Start(t, cfg)
	root := e2eutil.Login(t, g.Base, "root", "root-login-pw")
	e2eutil.WaitFor(t, 60*time.Second, "hik checked", func() bool { return !ovHardening(t, g.Base, root)["hik"].CheckedAt.IsZero() })

	ctx := testtool.Browser(t, 120*time.Second)
	problems := testtool.WatchPage(ctx)
	var ok bool
	if err := chromedp.Run(ctx,
		testtool.AddCSPProbe(""),
		chromedp.Navigate(g.Base+"/"),
		chromedp.Poll(`!document.getElementById('signin-submit').disabled`, &ok, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.SetValue("#username", "root", chromedp.ByQuery),
		chromedp.SetValue("#password", "root-login-pw", chromedp.ByQuery),
		chromedp.Click("#signin-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	item := `document.querySelector('#hardening-panel li.hardening-camera[data-camera="hik"]')`
	poll := func(what, js string) {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Poll(js, &ok, chromedp.WithPollingTimeout(60*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			var text string
			_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ''`, &text))
			t.Fatalf("%s: %v\npage text:\n%s\nproblems: %v", what, err, text, problems.All())
		}
	}
	poll("the panel shows hik drifted", `!document.getElementById('hardening-panel').hidden && `+item+`?.dataset.state === 'drift'`)
	var drifted []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...`+item+`.querySelectorAll('li.hardening-setting.is-drift .hardening-name')].map((e) => e.textContent)`, &drifted)); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(drifted, "cloud.hik-connect") || !slices.Contains(drifted, "dns") {
		t.Fatalf("highlighted settings %v", drifted)
	}
	testtool.Screenshot(t, ctx, e2eArtifacts, "hardening-panel.png")
	if err := chromedp.Run(ctx, chromedp.Click(`#hardening-panel li.hardening-camera[data-camera="hik"] button.hardening-apply`, chromedp.ByQuery)); err != nil {
		t.Fatalf("click Apply: %v", err)
	}
	poll("the panel shows hik as wanted", item+`?.dataset.state === 'ok' && `+item+`.querySelectorAll('li.hardening-setting.is-drift').length === 0`)
	if r := ovHardening(t, g.Base, root)["hik"]; !r.ok() || hik.Setting("EZVIZ.enabled") != "false" {
		t.Fatalf("after the panel's apply: %+v, camera %v", r, hik.Settings())
	}
	if h := ovAuditLines(t, cfg.Audit.Path, func(e ovAudit) bool { return e.Event == "camera_hardened" }); len(h) != 1 || h[0].Actor != "root" {
		t.Fatalf("camera_hardened lines: %+v", h)
	}
	testtool.CheckPage(t, ctx, problems)
}

// A reload updates the watched cameras: a removed camera leaves the
// report and its metric, an added one is checked.
func TestHardeningFollowsReload(t *testing.T) {
	_, _, hikCfg := ovVendorCam(t, "hik", "127.0.0.158", democam.VendorHikvision)
	_, _, dahCfg := ovVendorCam(t, "dah", "127.0.0.159", democam.VendorDahua)
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "root", Password: "root-login-pw", Admin: true}}, []config.Camera{hikCfg})
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	root := e2eutil.Login(t, g.Base, "root", "root-login-pw")
	e2eutil.WaitFor(t, 60*time.Second, "hik checked", func() bool { return !ovHardening(t, g.Base, root)["hik"].CheckedAt.IsZero() })
	if _, found := coreMetric(t, g.MetricsAddr(), "cordon_camera_hardening_ok", `camera="hik"`); !found {
		t.Fatal("no metric for hik")
	}
	cfg.Cameras = []config.Camera{dahCfg}
	drWriteConfig(t, path, cfg)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 60*time.Second, "dah checked after the reload", func() bool {
		rep := ovHardening(t, g.Base, root)
		_, hik := rep["hik"]
		return !hik && len(rep) == 1 && rep["dah"].Vendor == "dahua" && !rep["dah"].CheckedAt.IsZero()
	})
	if _, found := coreMetric(t, g.MetricsAddr(), "cordon_camera_hardening_ok", `camera="hik"`); found {
		t.Fatal("the removed camera's metric is still exported")
	}
}
