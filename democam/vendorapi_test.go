package democam_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"cordon/camnet/harden"
	"cordon/democam"
)

func startAPI(t *testing.T, v *democam.VendorAPI, host string) (*democam.VendorAPI, *harden.Client) {
	t.Helper()
	v.Listen, v.Username, v.Password = host+":0", "admin", "pw-123"
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	u, _ := url.Parse(v.URL())
	c := &harden.Client{Camera: "t", Base: u, Username: "admin", Password: "pw-123", Timeout: 2 * time.Second}
	t.Cleanup(c.Close)
	return v, c
}

func do(t *testing.T, c *harden.Client, method, pq, body string) *harden.Response {
	t.Helper()
	r, err := c.Do(context.Background(), method, pq, "application/xml", []byte(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, pq, err)
	}
	return r
}

func TestISAPIEmulator(t *testing.T) {
	cam, c := startAPI(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.81")
	anon, err := c.Anonymous(context.Background(), http.MethodGet, "/ISAPI/System/Network/EZVIZ", "", nil)
	if err != nil || anon.Status != 401 || anon.Header.Get("Server") != "Hikvision-Webs" ||
		!strings.Contains(anon.Header.Get("WWW-Authenticate"), `Digest realm="hikvision"`) {
		t.Fatalf("unauthenticated: %v %+v", err, anon)
	}
	if r := do(t, c, "GET", "/ISAPI/System/Network/EZVIZ", ""); r.Status != 200 || !strings.Contains(string(r.Body), "<enabled>true</enabled>") {
		t.Fatalf("GET EZVIZ: %d %s", r.Status, r.Body)
	}
	r := do(t, c, "PUT", "/ISAPI/System/Network/EZVIZ", `<EZVIZ><enabled>false</enabled></EZVIZ>`)
	if r.Status != 200 || !strings.Contains(string(r.Body), "<statusCode>1</statusCode>") || cam.Setting("EZVIZ.enabled") != "false" {
		t.Fatalf("PUT EZVIZ: %d %s", r.Status, r.Body)
	}
	if r := do(t, c, "PUT", "/ISAPI/System/Network/EZVIZ", `<!DOCTYPE x [<!ENTITY a "b">]><EZVIZ><enabled>&a;</enabled></EZVIZ>`); r.Status != 400 {
		t.Fatalf("DOCTYPE accepted: %d", r.Status)
	}
	if r := do(t, c, "GET", "/ISAPI/System/Network/Bonjour", ""); r.Status != 403 || !strings.Contains(string(r.Body), "notSupport") {
		t.Fatalf("Bonjour: %d %s", r.Status, r.Body)
	}
	cam.FactoryReset()
	if cam.Setting("EZVIZ.enabled") != "true" {
		t.Fatal("factory reset did not turn the cloud back on")
	}
	bad := &harden.Client{Camera: "t", Base: c.Base, Username: "admin", Password: "nope"}
	defer bad.Close()
	if _, err := bad.Do(context.Background(), "GET", "/ISAPI/System/deviceInfo", "", nil); !errors.Is(err, harden.ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestEmulatorNeedsReboot(t *testing.T) {
	cam, c := startAPI(t, &democam.VendorAPI{Vendor: democam.VendorHikvision, NeedsReboot: true, RebootDowntime: 50 * time.Millisecond}, "127.0.0.82")
	r := do(t, c, "PUT", "/ISAPI/System/Network/UPnP", `<UPnP><enabled>false</enabled></UPnP>`)
	if !strings.Contains(string(r.Body), "<statusCode>7</statusCode>") || cam.Setting("UPnP.enabled") != "true" {
		t.Fatalf("needs reboot: %s, running %s", r.Body, cam.Setting("UPnP.enabled"))
	}
	if r := do(t, c, "PUT", "/ISAPI/System/reboot", ""); r.Status != 200 {
		t.Fatalf("reboot: %d", r.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cam.WaitReboots(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if cam.Reboots() != 1 || cam.Setting("UPnP.enabled") != "false" {
		t.Fatalf("after reboot: %d reboots, UPnP %s", cam.Reboots(), cam.Setting("UPnP.enabled"))
	}
	if r := do(t, c, "GET", "/ISAPI/System/Network/UPnP", ""); !strings.Contains(string(r.Body), "<enabled>false</enabled>") {
		t.Fatalf("GET after reboot: %s", r.Body)
	}
}

func TestDahuaEmulator(t *testing.T) {
	cam, c := startAPI(t, &democam.VendorAPI{Vendor: democam.VendorDahua}, "127.0.0.83")
	anon, err := c.Anonymous(context.Background(), "GET", "/cgi-bin/magicBox.cgi?action=getDeviceType", "", nil)
	if err != nil || anon.Status != 401 || !strings.Contains(anon.Header.Get("WWW-Authenticate"), `realm="Login to `) {
		t.Fatalf("unauthenticated: %v %+v", err, anon)
	}
	if r := do(t, c, "GET", "/cgi-bin/configManager.cgi?action=getConfig&name=T2UServer", ""); string(r.Body) != "table.T2UServer.Enable=true\r\n" {
		t.Fatalf("getConfig: %q", r.Body)
	}
	for _, pq := range []string{"/cgi-bin/configManager.cgi?action=getConfig&name=Nope",
		"/cgi-bin/configManager.cgi?action=setConfig&T2UServer.Nope=1"} {
		if r := do(t, c, "GET", pq, ""); r.Status != 400 || !strings.HasPrefix(string(r.Body), "Error") {
			t.Fatalf("%s: %d %q", pq, r.Status, r.Body)
		}
	}
	if r := do(t, c, "GET", "/cgi-bin/configManager.cgi?action=setConfig&T2UServer.Enable=false&NTP.Port=10123", ""); string(r.Body) != "OK\r\n" ||
		cam.Setting("T2UServer.Enable") != "false" || cam.Setting("NTP.Port") != "10123" {
		t.Fatalf("setConfig: %q", r.Body)
	}
	// RPC2: a wrong password does not log in, and calls need a session.
	for _, rq := range [][2]string{
		{"/RPC2_Login", `{"method":"global.login","params":{"userName":"admin","password":"0123"},"session":"s1","id":2}`},
		{"/RPC2", `{"method":"configManager.getConfig","params":{"name":"NTP"},"session":"s1","id":3}`},
	} {
		path, body := rq[0], rq[1]
		r, err := c.Anonymous(context.Background(), "POST", path, "application/json", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Result bool }
		if json.Unmarshal(r.Body, &a) != nil || a.Result {
			t.Fatalf("%s: %s", body, r.Body)
		}
	}
}
