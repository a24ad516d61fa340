package harden

import (
	"strings"
	"testing"
	"time"

	"cordon/democam"
)

func TestHikvisionDryApplyDry(t *testing.T) {
	cam := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.21")
	tg := targetOf(t, "gate-north", cam.URL(), "auto")
	dry := runT(t, tg, fastOptions())
	if dry.Error != "" || dry.Vendor != "hikvision" {
		t.Fatalf("dry run: vendor %q error %q", dry.Vendor, dry.Error)
	}
	if dry.OK() {
		t.Fatal("factory camera reported as hardened")
	}
	for name, want := range map[string]string{
		SettingHikConnect: StatusDrift, SettingISUP: StatusDrift, SettingUPnP: StatusDrift, SettingPortMapping: StatusDrift,
		SettingDDNS: StatusDrift, SettingEmail: StatusDrift, SettingFTP: StatusDrift, SettingBonjour: StatusAbsent,
		SettingNTP: StatusDrift, SettingDNS: StatusDrift, SettingGateway: StatusDrift,
	} {
		if got := statusOf(dry, name); got.Status != want {
			t.Errorf("dry %s: %+v, want %s", name, got, want)
		}
	}
	if s := statusOf(dry, SettingNTP); s.Have != "time.windows.com:123" || s.Want != "127.0.0.1:10123" {
		t.Errorf("ntp: %+v", s)
	}
	o := fastOptions()
	o.Apply = true
	applied := runT(t, tg, o)
	if !applied.OK() {
		t.Fatalf("apply did not harden: %+v", applied)
	}
	if s := statusOf(applied, SettingHikConnect); s.Status != StatusSet || s.Have != "off" {
		t.Errorf("apply cloud: %+v", s)
	}
	if got := cam.Setting("EZVIZ.enabled"); got != "false" {
		t.Errorf("camera EZVIZ.enabled = %q", got)
	}
	for k, want := range map[string]string{"time.mode": "NTP", "ntp.ip": "127.0.0.1", "ntp.port": "10123",
		"ip.dns1": "127.0.0.1", "ip.dns2": "127.0.0.1", "ip.gateway": "0.0.0.0", "ip.address": "127.0.0.21",
		"ip.mask": "255.0.0.0", "mailing.host": ""} {
		if got := cam.Setting(k); got != want {
			t.Errorf("camera %s = %q, want %q", k, got, want)
		}
	}
	again := runT(t, tg, fastOptions())
	if !again.OK() {
		t.Fatalf("second dry run not ok: %+v", again)
	}
	for _, req := range cam.Requests() {
		if strings.Contains(req, "/Security") || strings.Contains(req, "reboot") || strings.Contains(req, "users") {
			t.Errorf("unexpected request %s", req)
		}
	}
}

func TestDahuaDryApplyDry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cgiOff bool
	}{{"cgi", false}, {"rpc2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cam := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorDahua, CGIDisabled: tc.cgiOff}, "127.0.0.22")
			tg := targetOf(t, "yard", cam.URL(), "auto")
			dry := runT(t, tg, fastOptions())
			if dry.Error != "" || dry.Vendor != "dahua" || dry.OK() {
				t.Fatalf("dry run: %+v", dry)
			}
			if s := statusOf(dry, SettingEasy4IP); s.Status != StatusDrift || s.Have != "on" {
				t.Errorf("easy4ip: %+v", s)
			}
			if s := statusOf(dry, SettingFTP); s.Status != StatusOK {
				t.Errorf("ftp (off at the factory): %+v", s)
			}
			o := fastOptions()
			o.Apply = true
			applied := runT(t, tg, o)
			if !applied.OK() {
				t.Fatalf("apply: %+v", applied)
			}
			for k, want := range map[string]string{"T2UServer.Enable": "false", "VSP_PaaS.Enable": "false",
				"NTP.Address": "127.0.0.1", "NTP.Port": "10123", "NTP.Enable": "true",
				"Network.eth0.DnsServers[0]": "127.0.0.1", "Network.eth0.DefaultGateway": "0.0.0.0",
				"Network.eth0.IPAddress": "127.0.0.22", "DDNS[0].HostName": "www.dahuaddns.com"} {
				if got := cam.Setting(k); got != want {
					t.Errorf("camera %s = %q, want %q", k, got, want)
				}
			}
			if again := runT(t, tg, fastOptions()); !again.OK() {
				t.Fatalf("second dry run: %+v", again)
			}
		})
	}
}

func TestNeedsReboot(t *testing.T) {
	for _, tc := range []struct {
		name, vendor string
		cgiOff       bool
		pending      string // status after apply without --reboot
		key, want    string
	}{
		{"hikvision statusCode 7", democam.VendorHikvision, false, StatusNeedsReboot, "EZVIZ.enabled", "false"},
		{"dahua cgi reads back old", democam.VendorDahua, false, StatusNotApplied, "T2UServer.Enable", "false"},
		{"dahua rpc2 NeedReboot", democam.VendorDahua, true, StatusNeedsReboot, "T2UServer.Enable", "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cam := startVendor(t, &democam.VendorAPI{Vendor: tc.vendor, NeedsReboot: true, CGIDisabled: tc.cgiOff,
				RebootDowntime: 100 * time.Millisecond}, "127.0.0.25")
			tg := targetOf(t, "cam", cam.URL(), tc.vendor)
			o := fastOptions()
			o.Apply = true
			res := runT(t, tg, o)
			if res.OK() || res.Rebooted || cam.Reboots() != 0 {
				t.Fatalf("without --reboot: ok=%v rebooted=%v reboots=%d", res.OK(), res.Rebooted, cam.Reboots())
			}
			name := SettingHikConnect
			if tc.vendor == democam.VendorDahua {
				name = SettingEasy4IP
			}
			if s := statusOf(res, name); s.Status != tc.pending || s.OK || !strings.Contains(s.Detail, "--reboot") {
				t.Fatalf("pending status: %+v", s)
			}
			o.Reboot = true
			res = runT(t, tg, o)
			if !res.OK() || !res.Rebooted || cam.Reboots() != 1 {
				t.Fatalf("with --reboot: ok=%v rebooted=%v reboots=%d error=%q\n%+v", res.OK(), res.Rebooted, cam.Reboots(), res.Error, res.Settings)
			}
			if got := cam.Setting(tc.key); got != tc.want {
				t.Fatalf("after reboot %s = %q", tc.key, got)
			}
			if again := runT(t, tg, fastOptions()); !again.OK() || cam.Reboots() != 1 {
				t.Fatalf("dry run after reboot: %+v", again)
			}
		})
	}
}

func TestWrongCredentialsAndVendor(t *testing.T) {
	hik := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.26")
	dah := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorDahua}, "127.0.0.27")
	bad := targetOf(t, "gate", hik.URL(), "auto")
	bad.Password = "wrong-" + camPass
	res := runT(t, bad, fastOptions())
	if res.OK() || !strings.Contains(res.Settings[0].Detail, "refused the credentials") {
		t.Fatalf("wrong password: %+v", res.Settings[0])
	}
	for _, s := range res.Settings[1:] {
		if s.Status != StatusUnknown || !strings.Contains(s.Detail, "camera gate: "+s.Name+": not checked") {
			t.Fatalf("after refused credentials: %+v", s)
		}
	}
	for _, tc := range []struct{ url, vendor, want string }{
		{hik.URL(), "dahua", "does not answer like a Dahua camera"},
		{dah.URL(), "hikvision", "does not answer like a Hikvision camera"},
		{dah.URL(), "onvif", "does not answer like an ONVIF camera"},
	} {
		res := runT(t, targetOf(t, "cam-x", tc.url, tc.vendor), fastOptions())
		if !strings.Contains(res.Error, "camera cam-x: ") || !strings.Contains(res.Error, tc.want) || len(res.Settings) != 0 {
			t.Errorf("vendor %s: error %q", tc.vendor, res.Error)
		}
	}
	if n := len(hik.Requests()) + len(dah.Requests()); n != 0 {
		t.Fatalf("%d authenticated requests reached the cameras with a wrong vendor", n)
	}
	for _, r := range []CameraResult{res} {
		if strings.Contains(r.Error+r.Settings[0].Detail, camPass) {
			t.Fatal("secret in an error")
		}
	}
}
