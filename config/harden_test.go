package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateHardening(t *testing.T) {
	tf := makeTLS(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		mut   func(c *Config)
		field string
		msg   string
	}{
		{"vendor unknown", func(c *Config) { c.Cameras[0].Vendor = "axis" }, "cameras[0].vendor", "auto, hikvision, dahua or onvif"},
		{"admin_url scheme", func(c *Config) { c.Cameras[1].AdminURL = "rtsp://10.20.0.12" }, "cameras[1].admin_url", "http:// or https://"},
		{"admin_url credentials", func(c *Config) { c.Cameras[0].AdminURL = "http://admin:" + camSecret + "@10.20.0.12" }, "cameras[0].admin_url", "credentials"},
		{"admin_url unparsable", func(c *Config) { c.Cameras[0].AdminURL = "http://10.20.0.12:x/" + camSecret }, "cameras[0].admin_url", "not a valid URL"},
		{"admin_url no host", func(c *Config) { c.Cameras[0].AdminURL = "http:///" }, "cameras[0].admin_url", "must name a host"},
		{"admin_url path", func(c *Config) { c.Cameras[0].AdminURL = "http://10.20.0.12/ISAPI" }, "cameras[0].admin_url", "without a path"},
		{"admin_url query", func(c *Config) { c.Cameras[0].AdminURL = "http://10.20.0.12/?a=b" }, "cameras[0].admin_url", "without a path"},
		{"admin_url port", func(c *Config) { c.Cameras[0].AdminURL = "http://10.20.0.12:70000" }, "cameras[0].admin_url", "1 to 65535"},
		{"pin without https", func(c *Config) { c.Cameras[0].AdminCertSHA256 = strings.Repeat("ab", 32) }, "cameras[0].admin_cert_sha256", "needs an https:// admin_url"},
		{"pin short", func(c *Config) {
			c.Cameras[0].AdminURL, c.Cameras[0].AdminCertSHA256 = "https://10.20.0.12", "abcd"
		}, "cameras[0].admin_cert_sha256", "64 hex digits"},
		{"pin not hex", func(c *Config) {
			c.Cameras[0].AdminURL, c.Cameras[0].AdminCertSHA256 = "https://10.20.0.12", strings.Repeat("zz", 32)
		}, "cameras[0].admin_cert_sha256", "64 hex digits"},
		{"ca without https", func(c *Config) { c.Cameras[0].AdminCAFile = tf.cert }, "cameras[0].admin_ca_file", "needs an https:// admin_url"},
		{"ca unreadable", func(c *Config) {
			c.Cameras[0].AdminURL, c.Cameras[0].AdminCAFile = "https://10.20.0.12", "/nonexistent/ca.pem"
		}, "cameras[0].admin_ca_file", "cannot read"},
		{"ca not PEM", func(c *Config) {
			c.Cameras[0].AdminURL, c.Cameras[0].AdminCAFile = "https://10.20.0.12", notPEM
		}, "cameras[0].admin_ca_file", "no PEM certificate"},
		{"other host without admin_url", func(c *Config) { c.Cameras[0].AdminOtherHost = true }, "cameras[0].admin_other_host", "needs an admin_url"},
		{"harden_interval syntax", func(c *Config) { c.CameraNetwork.HardenInterval = "often" }, "camera_network.harden_interval", "duration"},
		{"harden_interval short", func(c *Config) { c.CameraNetwork.HardenInterval = "10s" }, "camera_network.harden_interval", "between 1m and 7d"},
		{"harden_interval long", func(c *Config) { c.CameraNetwork.HardenInterval = "8d" }, "camera_network.harden_interval", "between 1m and 7d"},
		{"harden_interval empty", func(c *Config) { c.CameraNetwork.HardenInterval = "" }, "camera_network.harden_interval", "duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mut(c)
			errs := c.Validate()
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Fatalf("got %v, want one error on %s containing %q", FieldErrors(errs), tc.field, tc.msg)
			}
			if strings.Contains(errs[0].Error(), camSecret) {
				t.Fatalf("error leaks the camera secret: %q", errs[0])
			}
		})
	}
	c := validConfig(t)
	c.Cameras[0].AdminURL = "https://10.20.0.12:8443/"
	c.Cameras[0].AdminCertSHA256 = strings.ToUpper(strings.TrimSuffix(strings.Repeat("0a:", 32), ":"))
	c.Cameras[0].AdminCAFile = tf.cert
	c.Cameras[0].Vendor = VendorDahua
	c.Cameras[1].Vendor = VendorONVIF
	c.CameraNetwork.HardenInterval = "1d12h"
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	if pin, err := c.Cameras[0].AdminCertPin(); err != nil || len(pin) != 32 || pin[0] != 0x0a || pin[31] != 0x0a {
		t.Fatalf("AdminCertPin = %x, %v", pin, err)
	}
	if pool, err := c.Cameras[0].AdminRootCAs(); err != nil || pool == nil {
		t.Fatalf("AdminRootCAs = %v, %v", pool, err)
	}
	if got := c.CameraNetwork.HardenEvery(); got != 36*time.Hour {
		t.Fatalf("HardenEvery = %v", got)
	}
	c.CameraNetwork.HardenInterval = "bad"
	if got := c.CameraNetwork.HardenEvery(); got != 6*time.Hour {
		t.Fatalf("HardenEvery on a bad value = %v", got)
	}
}

func TestAdminBase(t *testing.T) {
	for _, tc := range []struct{ url, admin, want string }{
		{"rtsp://10.20.0.12:554/x", "", "http://10.20.0.12:80"},
		{"rtsp://user:pw@[fd00::12]/x", "", "http://[fd00::12]:80"},
		{"rtsp://10.20.0.12/x", "https://10.20.0.12:8443/", "https://10.20.0.12:8443"},
		{"rtsp://10.20.0.12/x", "http://10.20.0.12", "http://10.20.0.12"},
	} {
		c := Camera{ID: "c", URL: tc.url, AdminURL: tc.admin}
		u, err := c.AdminBase()
		if err != nil || u.String() != tc.want {
			t.Errorf("AdminBase(%q, %q) = %v, %v; want %s", tc.url, tc.admin, u, err, tc.want)
		}
	}
	for _, admin := range []string{"http://u:p@10.0.0.1", "ftp://10.0.0.1", "http://"} {
		c := Camera{ID: "c", URL: "rtsp://10.0.0.1/", AdminURL: admin}
		if _, err := c.AdminBase(); err == nil || strings.Contains(err.Error(), "u:p") {
			t.Errorf("AdminBase(%q) = %v", admin, err)
		}
	}
	if _, err := (&Camera{ID: "c", URL: "rtsp:///x"}).AdminBase(); err == nil {
		t.Error("AdminBase without a host accepted")
	}
}

func TestWarnAdminURLOtherHost(t *testing.T) {
	c := validConfig(t)
	c.HTTP.Listen = "127.0.0.1:8080"
	c.Cameras[0].AdminURL = "http://10.20.0.99"
	c.Cameras[1].AdminURL = "https://CAM2.example:8443"
	w := c.Warnings()
	if len(w) != 1 || w[0].Field != "cameras[0].admin_url" || !strings.Contains(w[0].Msg, "credentials") ||
		!strings.Contains(w[0].Msg, "admin_other_host") {
		t.Fatalf("warnings = %v", FieldErrors(w))
	}
	if !c.Cameras[0].AdminHostRefused() || c.Cameras[1].AdminHostRefused() {
		t.Fatal("AdminHostRefused")
	}
	c.Cameras[0].AdminOtherHost = true // the operator says so: no warning, no refusal
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	if w := c.Warnings(); len(w) != 0 || c.Cameras[0].AdminHostRefused() {
		t.Fatalf("with admin_other_host: warnings = %v", FieldErrors(w))
	}
}
