package e2e

import (
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/soap"
	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
)

// ONVIF-only passwords of the test principals (onvif_password_file).
const (
	ovAliceONVIF = "alice-onvif-Secret-0123456789"
	ovCarolONVIF = "carol-onvif-Secret-0123456789"
	ovVMSONVIF   = "vms1-onvif-Secret-0123456789"
	ovAliceLogin = "alice-login-pw"
)

// ovFixture is a gateway with the ONVIF face on, three cameras (gate,
// yard: democam RTSP cameras; dome: the democam ONVIF PTZ dome) and
// three principals: alice (user: gate and dome), carol (user, no rights)
// and vms-1 (API key: yard), each with an ONVIF password.
type ovFixture struct {
	g          *drGateway
	configPath string
	cfg        *config.Config
	dome       *democam.PTZCamera
}

func ovStart(t *testing.T) *ovFixture {
	t.Helper()
	gate := drCam(t, "gate", "127.0.0.151")
	yard := drCam(t, "yard", "127.0.0.152")
	dome := &democam.PTZCamera{ID: "dome", Listen: "127.0.0.153:0", Username: "cam", Password: "cam-dome-secret"}
	if err := dome.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dome.Close)
	cams := []config.Camera{drCamCfg(gate), drCamCfg(yard),
		{ID: "dome", Name: "Dome", URL: dome.URL(), Username: dome.Username, Password: dome.Password, Transport: "tcp"}}
	cfg := e2eutil.Config(t, []e2eutil.Account{
		{Name: "alice", Password: ovAliceLogin, Cameras: []string{"gate", "dome"}},
		{Name: "carol", Password: "carol-login-pw"},
		{Name: "root", Password: "root-login-pw", Admin: true},
		{Name: "vms-1", Password: "vms-1-key-secret-0123456789", Cameras: []string{"yard"}, APIKey: true},
	}, cams)
	cfg.ONVIF.Listen = "127.0.0.1:0"
	cfg.Auth.Users[0].ONVIFPasswordFile = ovSecretFile(t, "alice.onvif", ovAliceONVIF)
	cfg.Auth.Users[1].ONVIFPasswordFile = ovSecretFile(t, "carol.onvif", ovCarolONVIF)
	cfg.Auth.APIKeys[0].ONVIFPasswordFile = ovSecretFile(t, "vms-1.onvif", ovVMSONVIF)
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	g := drStart(t, cfg, path)
	for _, id := range []string{"gate", "yard", "dome"} {
		e2eutil.WaitFor(t, 30*time.Second, id+" online", func() bool { return g.Cameras().Get(id).State().Online })
	}
	return &ovFixture{g: g, configPath: path, cfg: cfg, dome: dome}
}

// A VMS adds cordon with a principal's ONVIF credentials: it sees one
// profile per camera that principal may view (named, sized from the
// stream), cordon's own identity, stream URIs on the RTSP re-serve, and
// each URI plays through cordon with the same credentials (RTSP Digest
// with the ONVIF password). An API key works the same way.
func TestONVIFVMSSeesItsCamerasAndTheyPlay(t *testing.T) {
	fx := ovStart(t)
	addr := fx.g.ONVIFAddr()
	res := ovNode(t, addr, "alice", ovAliceONVIF,
		onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "deviceInformation"},
		onvifnode.Step{"op": "streamUri", "profileToken": "gate"}, onvifnode.Step{"op": "streamUri", "profileToken": "dome"},
		onvifnode.Step{"op": "streamUri", "profileToken": "yard"})
	conn := onvifnode.Value[onvifnode.Connect](t, res[0])
	if len(conn.Profiles) != 2 || conn.VideoSources != 2 || len(conn.Warnings) != 0 {
		t.Fatalf("alice's profiles: %+v", conn)
	}
	for i, want := range []struct{ token, name string }{{"gate", "Camera gate"}, {"dome", "Dome"}} {
		p := conn.Profiles[i]
		if p.Token != want.token || p.Name != want.name || p.Encoding != "H264" || p.Width == 0 || p.Height == 0 || p.PTZ {
			t.Fatalf("profile %d: %+v", i, p)
		}
	}
	info := onvifnode.Value[map[string]any](t, res[1])
	if info["manufacturer"] != "cordon" || info["model"] != "cordon video gateway" {
		t.Fatalf("device information %v", info)
	}
	_, rtspPort, _ := strings.Cut(fx.g.RTSPAddr(), ":")
	for i, id := range []string{"gate", "dome"} {
		uri := onvifnode.Value[string](t, res[2+i])
		if uri != "rtsp://127.0.0.1:"+rtspPort+"/"+id {
			t.Fatalf("stream URI %q", uri)
		}
		got := testtool.ProbeVideo(t, ovWithCredentials(t, uri, "alice", ovAliceONVIF))
		want := "h264," + strconv.Itoa(conn.Profiles[i].Width) + "," + strconv.Itoa(conn.Profiles[i].Height)
		if got != want {
			t.Fatalf("ffprobe %s: %q, the profile says %q", id, got, want)
		}
	}
	if res[4].OK || !strings.Contains(res[4].Error, "no such profile") {
		t.Fatalf("a camera alice may not view: %+v", res[4])
	}

	// the API key: its camera only, playing with its ONVIF password
	res = ovNode(t, addr, "vms-1", ovVMSONVIF, onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "streamUri", "profileToken": "yard"})
	conn = onvifnode.Value[onvifnode.Connect](t, res[0])
	if len(conn.Profiles) != 1 || conn.Profiles[0].Token != "yard" {
		t.Fatalf("vms-1's profiles: %+v", conn)
	}
	if got := testtool.ProbeVideo(t, ovWithCredentials(t, onvifnode.Value[string](t, res[1]), "vms-1", ovVMSONVIF)); !strings.HasPrefix(got, "h264,") {
		t.Fatalf("ffprobe yard: %q", got)
	}
	// the ONVIF password opens no camera outside the principal's rights
	// over RTSP either
	uri := "rtsp://vms-1:" + ovVMSONVIF + "@" + fx.g.RTSPAddr() + "/gate"
	if out, err := ovFFprobeErr(uri); err == nil {
		t.Fatalf("vms-1 played gate over RTSP: %s", out)
	}

	// every request signed in again, yet one login_ok per principal and
	// address (and a view_start per RTSP play, protocol rtsp)
	logins := ovAuditLines(t, fx.cfg.Audit.Path, func(e ovAudit) bool { return e.Event == "login_ok" && e.Protocol == "onvif" })
	seen := map[string]int{}
	for _, e := range logins {
		seen[e.Actor+" "+e.Remote]++
	}
	if seen["alice 127.0.0.1"] != 1 || seen["vms-1 127.0.0.1"] != 1 || len(seen) != 2 {
		t.Fatalf("login_ok lines over ONVIF: %+v", logins)
	}
}

// A principal without rights signs in and sees no profiles (not an
// error); a rights change applies from the next request.
func TestONVIFRightsDecideProfiles(t *testing.T) {
	fx := ovStart(t)
	addr := fx.g.ONVIFAddr()
	res := ovNode(t, addr, "carol", ovCarolONVIF, onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "deviceInformation"})
	if conn := onvifnode.Value[onvifnode.Connect](t, res[0]); len(conn.Profiles) != 0 || conn.VideoSources != 0 {
		t.Fatalf("carol sees %+v", conn)
	}
	onvifnode.Value[map[string]any](t, res[1])

	// carol gets yard, alice loses dome: the next requests show it
	fx.cfg.Auth.Users[1].Cameras = []string{"yard"}
	fx.cfg.Auth.Users[0].Cameras = []string{"gate"}
	drWriteConfig(t, fx.configPath, fx.cfg)
	if err := fx.g.Reload(); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{"carol": "yard", "alice": "gate"} {
		secret := map[string]string{"carol": ovCarolONVIF, "alice": ovAliceONVIF}[user]
		conn := onvifnode.Value[onvifnode.Connect](t, ovNode(t, addr, user, secret, onvifnode.Step{"op": "connect"})[0])
		if len(conn.Profiles) != 1 || conn.Profiles[0].Token != want {
			t.Fatalf("%s after the reload: %+v", user, conn)
		}
	}
}

// Wrong credentials are refused and counted towards lockout: named, from
// the client's address, audited (login_failed, protocol onvif); the login
// password is no ONVIF password. Failures from one address lock that
// address (429 with Retry-After, even for the right password), never
// another.
func TestONVIFWrongCredentialsLockOut(t *testing.T) {
	fx := ovStart(t)
	addr := fx.g.ONVIFAddr()
	for _, c := range []struct{ user, pass string }{{"alice", "wrong-password-0123456789"}, {"alice", ovAliceLogin}, {"nobody", "x"}} {
		res := ovNode(t, addr, c.user, c.pass, onvifnode.Step{"op": "connect"})
		if res[0].OK {
			t.Fatalf("%s signed in with %q", c.user, c.pass)
		}
	}
	failed := ovAuditLines(t, fx.cfg.Audit.Path, func(e ovAudit) bool { return e.Event == "login_failed" && e.Protocol == "onvif" })
	if len(failed) == 0 || failed[0].Actor != "alice" || failed[0].Remote != "127.0.0.1" {
		t.Fatalf("login_failed lines: %+v", failed)
	}

	// lockout from one address (127.0.0.160), read from the 429
	const src, other = "127.0.0.160", "127.0.0.161"
	getProfiles := soap.El("trt:GetProfiles")
	locked := false
	for i := 0; i < 12 && !locked; i++ {
		st, _, _ := ovSOAP(t, src, addr, "alice", "wrong-"+strconv.Itoa(i)+"-0123456789", getProfiles)
		if st != http.StatusBadRequest && st != http.StatusTooManyRequests {
			t.Fatalf("failure %d: HTTP %d", i+1, st)
		}
		st, retry, _ := ovSOAP(t, src, addr, "alice", ovAliceONVIF, getProfiles) // the right password, same address
		switch st {
		case http.StatusOK: // not locked yet (or a short lock already over: the next failure doubles it)
		case http.StatusTooManyRequests:
			if n, err := strconv.Atoi(retry); err != nil || n < 1 {
				t.Fatalf("429 with Retry-After %q", retry)
			}
			locked = true
		default:
			t.Fatalf("right password after %d failures: HTTP %d", i+1, st)
		}
	}
	if !locked {
		t.Fatal("no lockout after 12 failures")
	}
	// another address is not affected
	st, _, env := ovSOAP(t, other, addr, "alice", ovAliceONVIF, getProfiles)
	if st != http.StatusOK || env == nil || env.Payload() == nil || len(env.Payload().ChildrenLocal("Profiles")) != 2 {
		t.Fatalf("alice from another address: HTTP %d", st)
	}
}

// ovNetnsEnv marks the test binary re-executed in a private network
// namespace (where the discovery test may add an operator interface).
const ovNetnsEnv = "CORDON_E2E_ONVIF_NETNS"

// onvif.discovery in serve, in a private network namespace with an
// operator-side interface (10.98.0.1): a WS-Discovery Probe multicast
// there is answered with cordon's device service address (the bound
// port), and that address answers a signed-in VMS.
func TestONVIFDiscoveryInServe(t *testing.T) {
	if !testtool.InNetns(t, ovNetnsEnv) {
		return
	}
	testtool.IP(t, []string{"link", "set", "lo", "up"},
		[]string{"link", "add", "op0", "type", "veth", "peer", "name", "op1"}, []string{"addr", "add", "10.98.0.1/24", "dev", "op0"},
		[]string{"link", "set", "op0", "up"}, []string{"link", "set", "op1", "up"})
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "vms-1", Password: "vms-1-key-secret-0123456789", APIKey: true}}, nil)
	cfg.Auth.APIKeys[0].ONVIFPasswordFile = ovSecretFile(t, "vms-1.onvif", ovVMSONVIF)
	cfg.ONVIF.Listen = "10.98.0.1:0"
	cfg.ONVIF.Discovery = true
	g := e2eutil.Start(t, cfg)

	vms := onvifnode.NewProber(t, "10.98.0.1:0", "op0")
	vms.Send(t, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}, "dn:NetworkVideoTransmitter", "uuid:e2e-probe-1")
	env, raw := vms.Answer(t, 10*time.Second)
	xaddr := env.Payload().Path("ProbeMatch").TextOf("XAddrs")
	if xaddr != "http://"+g.ONVIFAddr()+"/onvif/device_service" || env.Header.TextOf("RelatesTo") != "uuid:e2e-probe-1" {
		t.Fatalf("ProbeMatch %s (face at %s)", raw, g.ONVIFAddr())
	}
	st, _, answer := ovSOAP(t, "10.98.0.1", g.ONVIFAddr(), "vms-1", ovVMSONVIF, soap.El("tds:GetDeviceInformation"))
	if st != http.StatusOK || answer == nil || answer.Payload().TextOf("Manufacturer") != "cordon" {
		t.Fatalf("GetDeviceInformation at the discovered address: HTTP %d", st)
	}
}
