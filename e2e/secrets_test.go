package e2e

// Secret grep (issue "Strip every vendor trace from the media path", item
// 6): a full session with distinctive secrets, then every byte the gateway
// wrote (logs, audit log, HTTP answers and headers, metrics, WHEP answers,
// RTSP answers) is searched for them.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// outputs collects everything the gateway said, by where it said it.
type outputs struct {
	mu    sync.Mutex
	texts []output
}

type output struct{ where, text string }

func (o *outputs) add(where, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.texts = append(o.texts, output{where, text})
}

// request sends an HTTP request and records the status line, every header
// and the body of the answer.
func (o *outputs) request(t *testing.T, method, url, bearer, ctype, body string) (int, string) {
	t.Helper()
	status, hdr, b := e2eutil.Do(t, method, url, bearer, ctype, body)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d %s\n", status, http.StatusText(status))
	_ = hdr.Write(&sb)
	sb.WriteString(b)
	o.add(method+" "+strings.SplitN(url, "//", 2)[1], sb.String())
	return status, b
}

// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestSecretsNeverLeave(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "ffmpeg")
	const (
		camUser     = "zq7camuser"
		camPass     = "Zq7-camera-SECRET-4f9a"
		camWrong    = "Wr0ng-camera-SECRET-77c1"
		adminPass   = "Adm1n-user-SECRET-9b2e"
		opPass      = "0p-user-SECRET-5d1c"
		keySecret   = "Ap1-key-SECRET-c3d7"
		loginWrong  = "Typo-login-SECRET-e81f"
		adminName   = "sec-admin"
		opName      = "sec-op"
		apiKeyName  = "vms-sec"
		camID       = "cam-secret"
		wrongCamID  = "cam-wrongpw"
		rtspWrongPw = "Typo-rtsp-SECRET-0a4b"
	)
	cam := &democam.Camera{ID: camID, Listen: "127.0.0.21:0", Path: "Streaming/Channels/101",
		Username: camUser, Password: camPass, Audio: true, DisableUDP: true, Quirks: democam.Quirks{HikvisionSDP: true}}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)

	cfg := tcpOnlyRTSP(e2eutil.Config(t, []e2eutil.Account{
		{Name: adminName, Password: adminPass, Cameras: []string{"*"}, Admin: true},
		{Name: opName, Password: opPass, Cameras: []string{camID}},
		{Name: apiKeyName, Password: keySecret, Cameras: []string{"cam-*"}, APIKey: true},
	}, []config.Camera{
		{ID: camID, Name: "Secret cam", URL: cam.URL(), Username: camUser, Password: camPass, Transport: "tcp"},
		// the same camera with a wrong password: auth failures get logged
		{ID: wrongCamID, Name: "Wrong pw cam", URL: cam.URL(), Username: camUser, Password: camWrong, Transport: "tcp"},
	}))
	g := e2eutil.Start(t, cfg)
	var out outputs
	base := g.Base

	// sign in: a failure first, then the admin and the operator
	out.request(t, http.MethodPost, base+"/api/v1/login", "", "application/json",
		fmt.Sprintf(`{"username":%q,"password":%q}`, opName, loginWrong))
	login := func(name, pw string) string {
		st, body := out.request(t, http.MethodPost, base+"/api/v1/login", "", "application/json",
			fmt.Sprintf(`{"username":%q,"password":%q}`, name, pw))
		var tok struct {
			Token string `json:"token"`
		}
		if st != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
			t.Fatalf("login %s: %d %s", name, st, body)
		}
		return tok.Token
	}
	admin := login(adminName, adminPass)
	op := login(opName, opPass)

	// view over WHEP: a user and the API key (by name: a bare key is refused)
	var viewers []*e2eutil.Viewer
	for i, tok := range []string{op, "key:" + apiKeyName + ":" + keySecret} {
		v, st, body := e2eutil.Dial(t, base, camID, tok, e2eutil.ViewerOptions{})
		if v == nil {
			t.Fatalf("WHEP %d: %d %s", i, st, body)
		}
		out.add(fmt.Sprintf("WHEP answer %d", i), v.Answer+"\nLocation: "+v.Location)
		viewers = append(viewers, v)
	}
	for _, v := range viewers {
		v.NextAU(t, 10*time.Second)
	}
	// refused WHEP answers too
	for _, tok := range []string{"", keySecret + "x", op} {
		cam := camID
		if tok == op {
			cam = wrongCamID // not permitted to the operator
		}
		out.request(t, http.MethodPost, base+"/whep/"+cam, tok, "application/sdp", viewers[0].Answer)
	}

	// view over RTSP: raw DESCRIBEs (refused, wrong password, Basic) and ffmpeg
	raddr := g.RTSPAddr()
	rurl := "rtsp://" + raddr + "/" + camID
	out.add("RTSP DESCRIBE without credentials", rawRTSP(t, raddr, "DESCRIBE", rurl, map[string]string{"Accept": "application/sdp"}))
	out.add("RTSP DESCRIBE wrong password", rawRTSP(t, raddr, "DESCRIBE", rurl, map[string]string{"Authorization": basicAuth(opName, rtspWrongPw)}))
	desc := rawRTSP(t, raddr, "DESCRIBE", rurl, map[string]string{"Accept": "application/sdp", "Authorization": basicAuth(opName, opPass)})
	if !strings.HasPrefix(desc, "RTSP/1.0 200") {
		t.Fatalf("RTSP DESCRIBE: %s", desc)
	}
	out.add("RTSP DESCRIBE (user)", desc)
	out.add("RTSP DESCRIBE (API key)", rawRTSP(t, raddr, "DESCRIBE", rurl, map[string]string{"Accept": "application/sdp", "Authorization": basicAuth(apiKeyName, keySecret)}))
	tp := tapRTSP(t, rurl, apiKeyName, keySecret)
	out.add("RTSP responses to a gortsplib client", tp.Responses())

	// while the sessions run: the admin and listing APIs
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ff := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
		"-i", "rtsp://"+opName+":"+opPass+"@"+raddr+"/"+camID, "-t", "4", "-f", "null", "-")
	ffDone := make(chan []byte, 1)
	go func() { b, _ := ff.CombinedOutput(); ffDone <- b }()
	e2eutil.WaitFor(t, 10*time.Second, "an RTSP session in the admin list", func() bool {
		_, body := out.request(t, http.MethodGet, base+"/api/v1/admin/sessions", admin, "", "")
		return strings.Count(body, `"protocol":"rtsp"`) >= 2
	})
	for _, tok := range []string{admin, op, "key:" + apiKeyName + ":" + keySecret} {
		out.request(t, http.MethodGet, base+"/api/v1/cameras", tok, "", "")
	}
	out.request(t, http.MethodGet, base+"/api/v1/admin/sessions", op, "", "") // refused: not admin
	out.request(t, http.MethodGet, base+"/api/v1/egress", admin, "", "")
	out.request(t, http.MethodGet, base+"/healthz", "", "", "")
	out.request(t, http.MethodGet, base+"/", "", "", "")
	out.request(t, http.MethodGet, base+"/api/v1/nope", admin, "", "")

	// the wrong-password camera entry fails (its error is logged and listed)
	e2eutil.WaitFor(t, 15*time.Second, "the wrong-password camera's error", func() bool {
		_, body := out.request(t, http.MethodGet, base+"/api/v1/cameras", admin, "", "")
		var cams []struct {
			ID        string `json:"id"`
			LastError string `json:"last_error"`
		}
		_ = json.Unmarshal([]byte(body), &cams)
		for _, c := range cams {
			if c.ID == wrongCamID && c.LastError != "" {
				return true
			}
		}
		return false
	})

	// the camera restarts; the session resumes
	if err := cam.Restart(); err != nil {
		t.Fatal(err)
	}
	e2eutil.WaitFor(t, 15*time.Second, "the camera to reconnect", func() bool {
		_, body := out.request(t, http.MethodGet, base+"/api/v1/cameras", admin, "", "")
		return strings.Contains(body, `"reconnects":`) && strings.Contains(body, `"online":true`)
	})
	if b := <-ffDone; len(b) > 0 {
		t.Logf("ffmpeg RTSP client: %s", b)
	}

	metrics := func() {
		st, body := out.request(t, http.MethodGet, "http://"+g.MetricsAddr()+"/metrics", "", "", "")
		if st != http.StatusOK || !strings.Contains(body, "cordon_") {
			t.Errorf("metrics: %d", st)
		}
	}
	metrics()
	// end: DELETE the WHEP sessions, log out, close the gateway (view_end,
	// shutdown lines), then read what it left behind
	for _, v := range viewers[:2] {
		out.request(t, http.MethodDelete, base+v.Location, op, "", "")
	}
	out.request(t, http.MethodPost, base+"/api/v1/logout", op, "", "")
	out.request(t, http.MethodGet, base+"/api/v1/cameras", op, "", "") // revoked
	metrics()
	g.Close()
	out.add("gateway logs", g.Logs.String())
	auditLog, err := os.ReadFile(g.Config.Audit.Path)
	if err != nil {
		t.Fatal(err)
	}
	out.add("audit log "+g.Config.Audit.Path, string(auditLog))
	for _, name := range []string{"view_start", "view_end", "login_failed", "camera_offline"} {
		if !strings.Contains(string(auditLog), `"`+name+`"`) {
			t.Errorf("audit log has no %s event: the session did not exercise it", name)
		}
	}
	// the failure paths really ran and were logged
	logs := g.Logs.String()
	for _, want := range []string{`"camera connection failed"`, `"camera offline"`, `"camera online"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the gateway logs lack %s: the session did not exercise it", want)
		}
	}
	if !strings.Contains(logs, wrongCamID) {
		t.Errorf("the gateway logged nothing about %s", wrongCamID)
	}
	// the state directory (signing key aside, it must not hold secrets either)
	_ = filepathWalkText(t, g.Config.StateDir, &out)

	needles := map[string]string{
		"camera password":              camPass,
		"wrong camera password":        camWrong,
		"camera user:password@":        camUser + ":" + camPass,
		"camera user:wrong-password":   camUser + ":" + camWrong,
		"camera username":              camUser,
		"admin password":               adminPass,
		"operator password":            opPass,
		"mistyped login password":      loginWrong,
		"mistyped RTSP password":       rtspWrongPw,
		"API key secret":               keySecret,
		"operator Basic credentials":   base64.StdEncoding.EncodeToString([]byte(opName + ":" + opPass)),
		"API key Basic credentials":    base64.StdEncoding.EncodeToString([]byte(apiKeyName + ":" + keySecret)),
		"camera Basic credentials":     base64.StdEncoding.EncodeToString([]byte(camUser + ":" + camPass)),
		"mistyped RTSP Basic password": base64.StdEncoding.EncodeToString([]byte(opName + ":" + rtspWrongPw)),
	}
	for who, secret := range map[string]string{"admin": adminPass, "operator": opPass, "API key": keySecret} {
		h := e2eutil.Hash(t, secret)
		needles[who+" argon2 hash"] = h
		needles[who+" argon2 hash value"] = h[strings.LastIndex(h, "$")+1:]
		needles[who+" argon2 salt"] = strings.Split(h, "$")[4]
	}
	total := 0
	for _, o := range out.texts {
		total += len(o.text)
		for what, n := range needles {
			if i := strings.Index(o.text, n); i >= 0 {
				lo, hi := max(0, i-80), min(len(o.text), i+len(n)+40)
				ctx := strings.ReplaceAll(o.text[lo:hi], n, "<"+strings.ToUpper(what)+">")
				for w2, n2 := range needles { // never print a secret, even our own
					ctx = strings.ReplaceAll(ctx, n2, "<"+strings.ToUpper(w2)+">")
				}
				t.Errorf("%s appears in %s at byte %d: ...%s...", what, o.where, i, ctx)
			}
		}
	}
	t.Logf("searched %d bytes in %d outputs for %d secrets", total, len(out.texts), len(needles))
}

// filepathWalkText adds every regular file under dir to out.
func filepathWalkText(t *testing.T, dir string, out *outputs) error {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			_ = filepathWalkText(t, p, out)
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			out.add("state file "+p, string(b))
		}
	}
	return nil
}
