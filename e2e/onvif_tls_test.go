package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
	"cordon/internal/soap"
	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
	"cordon/internal/testtool/testca"
)

// With http.tls_cert set, serve's ONVIF face is HTTPS with the same
// certificate: the npm client connects over HTTPS (trusting the test CA)
// with the ONVIF password, its stream URI is rtsps:// on the RTSP
// re-serve and plays there with the same credentials; WS-Security
// PasswordText (accepted over TLS only) is checked against the login
// password hash, so the ONVIF password sent as text is refused and
// audited as a failed sign-in.
func TestONVIFOverHTTPSInServe(t *testing.T) {
	t.Parallel()
	ca, err := testca.New(t.TempDir(), "onvif e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("cordon", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	gate := drCam(t, "gate", "127.0.0.177")
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "alice", Password: ovAliceLogin, Cameras: []string{"gate"}}},
		[]config.Camera{drCamCfg(gate)})
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = leaf.CertFile, leaf.KeyFile
	cfg.ONVIF.Listen = "127.0.0.1:0"
	cfg.Auth.Users[0].ONVIFPasswordFile = ovSecretFile(t, "alice.onvif", ovAliceONVIF)
	g := drStart(t, cfg, "")
	e2eutil.WaitFor(t, 30*time.Second, "gate online", func() bool { return g.Cameras().Get("gate").State().Online })
	e2eutil.WaitFor(t, 30*time.Second, "gate's parameter sets", func() bool { return streamKnown(g, "gate", "") })
	addr := g.ONVIFAddr()

	res := ovNodeTLS(t, addr, "alice", ovAliceONVIF, string(ca.CertPEM),
		onvifnode.Step{"op": "connect"}, onvifnode.Step{"op": "streamUri", "profileToken": "gate"})
	conn := onvifnode.Value[onvifnode.Connect](t, res[0])
	if len(conn.Profiles) != 1 || conn.Profiles[0].Token != "gate" {
		t.Fatalf("alice's profiles over HTTPS: %+v", conn)
	}
	_, rtspPort, _ := strings.Cut(g.RTSPAddr(), ":")
	uri := onvifnode.Value[string](t, res[1])
	if uri != "rtsps://127.0.0.1:"+rtspPort+"/gate" {
		t.Fatalf("stream URI over HTTPS %q", uri)
	}
	if got := testtool.ProbeVideo(t, "rtsps://alice:"+ovAliceONVIF+"@"+strings.TrimPrefix(uri, "rtsps://")); !strings.HasPrefix(got, "h264,") {
		t.Fatalf("ffprobe %s: %q", uri, got)
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	defer client.CloseIdleConnections()
	text := func(pw string) (int, *soap.Envelope) {
		body := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="` + soap.NsMedia + `"><s:Header>` +
			`<wsse:Security xmlns:wsse="` + soap.NsWSSE + `"><wsse:UsernameToken><wsse:Username>alice</wsse:Username>` +
			`<wsse:Password Type="` + soap.PasswordTextType + `">` + pw + `</wsse:Password></wsse:UsernameToken></wsse:Security>` +
			`</s:Header><s:Body><trt:GetProfiles/></s:Body></s:Envelope>`
		resp, err := client.Post("https://"+addr+"/onvif/device_service", soap.SOAP12.ContentType(), strings.NewReader(body))
		if err != nil {
			t.Fatalf("ONVIF over HTTPS: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		env, err := soap.ParseEnvelopeBytes(b, soap.Limits{})
		if err != nil {
			t.Fatalf("answer %d is not SOAP: %v: %.300s", resp.StatusCode, err, b)
		}
		return resp.StatusCode, env
	}
	if st, env := text(ovAliceLogin); st != http.StatusOK || env.Payload() == nil || env.Payload().Local != "GetProfilesResponse" {
		t.Fatalf("PasswordText with the login password over HTTPS: %d %+v", st, env.Payload())
	} else if tok, _ := env.Payload().ChildLocal("Profiles").Attr("token"); tok != "gate" {
		t.Fatalf("PasswordText with the login password: profile %q", tok)
	}
	failed := len(ovAuditLines(t, cfg.Audit.Path, func(e ovAudit) bool { return e.Event == "login_failed" && e.Protocol == "onvif" }))
	if st, env := text(ovAliceONVIF); st == http.StatusOK || env.Payload() == nil || env.Payload().Local != "Fault" {
		t.Fatalf("PasswordText with the ONVIF password: %d %+v", st, env.Payload())
	}
	e2eutil.WaitFor(t, 5*time.Second, "the refused PasswordText audited", func() bool {
		return len(ovAuditLines(t, cfg.Audit.Path, func(e ovAudit) bool {
			return e.Event == "login_failed" && e.Protocol == "onvif" && e.Actor == "alice"
		})) == failed+1
	})
}
