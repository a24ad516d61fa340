package harden

import (
	"context"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/democam"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	camUser = "admin"
	camPass = "Cam-Secret-42"
)

// testWanted points cameras at cordon on 127.0.0.1 (in the emulated
// cameras' 127.0.0.0/8 subnet).
var testWanted = Wanted{
	NTP:    netip.MustParseAddrPort("127.0.0.1:10123"),
	DNS:    netip.MustParseAddr("127.0.0.1"),
	Cordon: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
}

// fastOptions keep tests quick: short bounds and reboot polling.
func fastOptions() Options {
	return Options{RequestTimeout: 2 * time.Second, CameraTimeout: 20 * time.Second,
		RebootDown: 5 * time.Second, RebootUp: 10 * time.Second, PollEvery: 20 * time.Millisecond}
}

// startVendor starts an emulated vendor API on its own loopback host.
func startVendor(t *testing.T, v *democam.VendorAPI, host string) *democam.VendorAPI {
	t.Helper()
	v.Listen = host + ":0"
	if v.Username == "" {
		v.Username, v.Password = camUser, camPass
	}
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func mustURL(tb testing.TB, raw string) *url.URL {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func targetOf(t *testing.T, id, rawURL, vendor string) Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Camera: id, Base: u, Username: camUser, Password: camPass, Vendor: vendor}
}

func contextWithMinute() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func runT(t *testing.T, tg Target, o Options) CameraResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, tg, testWanted, o)
}

func statusOf(r CameraResult, name string) SettingResult {
	for _, s := range r.Settings {
		if s.Name == name {
			return s
		}
	}
	return SettingResult{Status: "missing"}
}
