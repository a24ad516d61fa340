package harden

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"cordon/democam"
)

// onvifWanted: ONVIF carries no NTP port, so cordon's NTP is on 123.
var onvifWanted = Wanted{
	NTP:    netip.MustParseAddrPort("127.0.0.1:123"),
	DNS:    netip.MustParseAddr("127.0.0.1"),
	Cordon: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
}

func startDome(t *testing.T, host string) (*democam.PTZCamera, Target) {
	t.Helper()
	cam := &democam.PTZCamera{ID: "dome", Listen: host + ":0", Username: camUser, Password: camPass}
	if err := cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	u, _ := url.Parse(cam.ONVIFURL())
	return cam, targetOf(t, "dome", "http://"+u.Host, "auto")
}

func TestONVIFDryApplyDry(t *testing.T) {
	cam, tg := startDome(t, "127.0.0.65")
	run := func(o Options) CameraResult {
		t.Helper()
		ctx, cancel := contextWithMinute()
		defer cancel()
		return Run(ctx, tg, onvifWanted, o)
	}
	dry := run(fastOptions())
	if dry.Error != "" || dry.Vendor != "onvif" || dry.OK() {
		t.Fatalf("dry run: %+v", dry)
	}
	for name, want := range map[string][2]string{
		SettingDiscovery: {"on", StatusDrift}, SettingNTP: {"pool.ntp.org, time.windows.com", StatusDrift},
		SettingDNS: {"8.8.8.8, 114.114.114.114", StatusDrift}, SettingGateway: {"192.168.1.1", StatusDrift},
	} {
		if s := statusOf(dry, name); s.Have != want[0] || s.Status != want[1] {
			t.Errorf("dry %s: %+v", name, s)
		}
	}
	o := fastOptions()
	o.Apply = true
	if applied := run(o); !applied.OK() {
		t.Fatalf("apply: %+v", applied)
	}
	st := cam.Settings()
	if st.Discoverable || len(st.NTPServers) != 1 || st.NTPServers[0] != "127.0.0.1" || len(st.DNSServers) != 1 ||
		st.DNSServers[0] != "127.0.0.1" || len(st.Gateway) != 0 || len(st.Protocols) != 3 || !st.Protocols[2].Enabled {
		t.Fatalf("camera after apply: %+v", st)
	}
	if again := run(fastOptions()); !again.OK() {
		t.Fatalf("second dry run: %+v", again)
	}
	cam.FactoryReset()
	if r := run(fastOptions()); r.OK() || statusOf(r, SettingDiscovery).Status != StatusDrift {
		t.Fatalf("after a factory reset: %+v", r)
	}
	// ntp_listen on another port than 123 cannot be given over ONVIF.
	ctx, cancel := contextWithMinute()
	defer cancel()
	r := Run(ctx, tg, testWanted, fastOptions())
	if s := statusOf(r, SettingNTP); s.Status != StatusUnknown || !strings.Contains(s.Detail, "must use port 123") {
		t.Fatalf("ntp port: %+v", s)
	}
	for _, c := range cam.Calls() {
		if strings.Contains(c, "SetSystemFactoryDefault") || strings.Contains(c, "SetUser") || strings.Contains(c, "Reboot") {
			t.Fatalf("unexpected call %s", c)
		}
	}
}

// cameras[].onvif: the ONVIF device service on another port than
// admin_url (where nothing answers) is found there, with vendor onvif and
// with auto-detection.
func TestONVIFAtConfiguredURL(t *testing.T) {
	cam, _ := startDome(t, "127.0.0.66")
	onvifURL := mustURL(t, cam.ONVIFURL())
	for _, vendor := range []string{"onvif", "auto"} {
		tg := targetOf(t, "dome", "http://127.0.0.66:1", vendor) // nothing listens on port 1
		tg.ONVIF = onvifURL
		r := runT(t, tg, fastOptions())
		if r.Error != "" || r.Vendor != "onvif" || statusOf(r, SettingDiscovery).Status != StatusDrift {
			t.Fatalf("vendor %s: %+v", vendor, r)
		}
	}
	// without it, the default path on admin_url finds nothing
	r := runT(t, targetOf(t, "dome", "http://127.0.0.66:1", "onvif"), fastOptions())
	if r.Error == "" {
		t.Fatalf("no ONVIF URL: %+v", r)
	}
}
