package config

import (
	"strings"
	"testing"
)

func TestValidateSubAndONVIF(t *testing.T) {
	cases := []struct {
		name  string
		mut   func(c *Config)
		field string
		msg   string
	}{
		{"sub scheme", func(c *Config) { c.Cameras[0].SubURL = "http://10.20.0.12/sub" }, "cameras[0].sub_url", "rtsp:// or rtsps://"},
		{"sub credentials", func(c *Config) { c.Cameras[0].SubURL = "rtsp://viewer:" + camSecret + "@10.20.0.12/sub" }, "cameras[0].sub_url", "credentials"},
		{"sub unparsable", func(c *Config) { c.Cameras[0].SubURL = "rtsp://10.20.0.12:x/" + camSecret }, "cameras[0].sub_url", "not a valid URL"},
		{"sub other host", func(c *Config) { c.Cameras[0].SubURL = "rtsp://10.20.0.99/Streaming/Channels/102" }, "cameras[0].sub_url", "same host as url"},
		{"sub port", func(c *Config) { c.Cameras[0].SubURL = "rtsp://10.20.0.12:0/sub" }, "cameras[0].sub_url", "1 to 65535"},
		{"sub no host", func(c *Config) { c.Cameras[0].SubURL = "rtsp:///sub" }, "cameras[0].sub_url", "must name a host"},
		{"onvif scheme", func(c *Config) { c.Cameras[0].ONVIF = "rtsp://10.20.0.12/onvif/device_service" }, "cameras[0].onvif", "http:// or https://"},
		{"onvif credentials", func(c *Config) { c.Cameras[0].ONVIF = "http://admin:" + camSecret + "@10.20.0.12/onvif/device_service" }, "cameras[0].onvif", "credentials"},
		{"onvif unparsable", func(c *Config) { c.Cameras[0].ONVIF = "http://10.20.0.12:x/" + camSecret }, "cameras[0].onvif", "not a valid URL"},
		{"onvif other host", func(c *Config) { c.Cameras[0].ONVIF = "http://10.20.0.99/onvif/device_service" }, "cameras[0].onvif", "onvif_other_host"},
		{"onvif query", func(c *Config) { c.Cameras[0].ONVIF = "http://10.20.0.12/onvif/device_service?x=1" }, "cameras[0].onvif", "query"},
		{"onvif port", func(c *Config) { c.Cameras[0].ONVIF = "http://10.20.0.12:99999/onvif/device_service" }, "cameras[0].onvif", "1 to 65535"},
		{"other host without onvif", func(c *Config) { c.Cameras[0].ONVIFOtherHost = true }, "cameras[0].onvif_other_host", "needs onvif"},
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
	c.Cameras[0].SubURL = "rtsp://10.20.0.12:8554/Streaming/Channels/102"
	c.Cameras[0].ONVIF = "http://10.20.0.12/onvif/device_service"
	c.Cameras[1].SubURL = "rtsps://CAM2.example/sub"
	c.Cameras[1].ONVIF = "https://10.20.0.40:8443/onvif/device_service"
	c.Cameras[1].ONVIFOtherHost = true
	c.Cameras[2].SubURL = "rtsp://10.20.0.14/y"
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	// the sub stream is pulled with the camera's credentials, in either form
	for i, want := range []string{"viewer:" + camSecret, "viewer:" + camSecret, "viewer:" + camSecret} {
		u, err := c.Cameras[i].SubPullURL()
		if err != nil || u == nil || u.User.String() != want {
			t.Fatalf("cameras[%d] SubPullURL: %v %v", i, u, err)
		}
		if strings.Contains(c.Cameras[i].SafeSubURL(), camSecret) {
			t.Fatalf("SafeSubURL leaks the secret")
		}
	}
	if u, err := c.Cameras[3].SubPullURL(); u != nil || err != nil || c.Cameras[3].HasSub() {
		t.Fatalf("camera without sub_url: %v %v", u, err)
	}
}

func TestLoadSubAndONVIF(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "c.yaml", `
auth:
  users: [{name: alice, password_hash: "`+testHash+`", cameras: ["*"]}]
cameras:
  - id: dome
    url: rtsp://10.20.0.12/main
    sub_url: rtsp://10.20.0.12/sub
    onvif: http://10.20.0.12/onvif/device_service
`)
	cfg, err := LoadAndValidate(path)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cameras[0]
	if c.SubURL != "rtsp://10.20.0.12/sub" || c.ONVIF != "http://10.20.0.12/onvif/device_service" || c.ONVIFOtherHost {
		t.Fatalf("%+v", c)
	}
}
