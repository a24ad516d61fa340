package harden

import (
	"strings"
	"testing"

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
