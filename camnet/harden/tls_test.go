package harden

import (
	"crypto/sha256"
	"crypto/tls"
	"strings"
	"testing"

	"cordon/democam"
	"cordon/internal/testtool/testca"
)

// A camera whose firmware offers only Basic over https gets its password
// only when its certificate is pinned or verified by a configured CA:
// otherwise anyone taking the camera's address on the camera network
// (with any self-signed certificate) would read the admin password.
func TestBasicOnlyHTTPSNeedsVerifiedCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := testca.New(dir, "cams")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("cam", "127.0.0.71")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testca.New(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	pin := sha256.Sum256(leaf.TLS.Certificate[0])
	wrongPin := sha256.Sum256([]byte("another certificate"))

	cases := []struct {
		name    string
		target  func(*Target)
		wantOK  bool
		wantErr string
	}{
		{"unverified", func(*Target) {}, false, "its https certificate is not verified"},
		{"wrong pin", func(tg *Target) { tg.CertSHA256 = wrongPin[:] }, false, "is not the pinned one"},
		{"other CA", func(tg *Target) { tg.RootCAs = otherCA.Pool() }, false, "not valid for 127.0.0.71 under admin_ca_file"},
		{"pinned", func(tg *Target) { tg.CertSHA256 = pin[:] }, true, ""},
		{"CA verified", func(tg *Target) { tg.RootCAs = ca.Pool() }, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorHikvision, BasicOnly: true,
				TLS: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}}, "127.0.0.71")
			tg := targetOf(t, "basic-cam", v.URL(), "hikvision")
			tc.target(&tg)
			o := fastOptions()
			o.Apply = true
			res := runT(t, tg, o)
			if tc.wantOK {
				if !res.OK() {
					t.Fatalf("not hardened: %+v", res)
				}
				if len(v.Requests()) == 0 {
					t.Fatal("no authorized request reached the camera")
				}
				return
			}
			if res.OK() {
				t.Fatal("hardened without a verified certificate")
			}
			if n := len(v.Requests()); n != 0 {
				t.Fatalf("the camera accepted %d requests: the password was sent as Basic", n)
			}
			msg := res.Error
			if len(res.Settings) > 0 {
				msg += res.Settings[0].Detail
			}
			if !strings.Contains(msg, "camera basic-cam: ") || !strings.Contains(msg, tc.wantErr) {
				t.Fatalf("error %q, want the camera named and %q", msg, tc.wantErr)
			}
			if strings.Contains(msg, camPass) {
				t.Fatal("the password is in the error")
			}
		})
	}
}
