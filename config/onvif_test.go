package config

import (
	"slices"
	"strings"
	"testing"
)

// The onvif section and onvif_password_file, validated and named by field;
// the passwords are read, redacted and never echoed.
func TestONVIFConfig(t *testing.T) {
	const pw = "Xq7-onvif-only-secret-3f9K"
	c := validConfig(t)
	dir := t.TempDir()
	c.ONVIF = ONVIF{Listen: "10.1.0.5:8000", Discovery: true}
	c.Auth.Users[0].ONVIFPasswordFile = writeFile(t, dir, "alice.onvif", pw+"\n")
	c.Auth.APIKeys[0].ONVIFPasswordFile = writeFile(t, dir, "vms.onvif", pw+"-key\n")
	if errs := c.Validate(); errs != nil {
		t.Fatal(errs)
	}
	if got, err := c.Auth.Users[0].ONVIFPassword(); err != nil || got != pw {
		t.Fatalf("%q %v", got, err)
	}
	if got, _ := c.Auth.APIKeys[0].ONVIFPassword(); got != pw+"-key" {
		t.Fatalf("%q", got)
	}
	if got, _ := c.Auth.Users[1].ONVIFPassword(); got != "" {
		t.Fatalf("bob has no ONVIF password, got %q", got)
	}
	if out := NewRedactor(c).Redact("user alice onvif " + pw); strings.Contains(out, pw) {
		t.Fatalf("not redacted: %s", out)
	}

	for name, tc := range map[string]struct {
		mod   func(c *Config)
		field string
	}{
		"bad listen":         {func(c *Config) { c.ONVIF.Listen = "nope" }, "onvif.listen"},
		"no rtsp":            {func(c *Config) { c.RTSP.Listen = "" }, "onvif.listen"},
		"discovery wildcard": {func(c *Config) { c.ONVIF.Listen = ":8000" }, "onvif.discovery"},
		"discovery loopback": {func(c *Config) { c.ONVIF.Listen = "127.0.0.1:8000" }, "onvif.discovery"},
		"discovery off":      {func(c *Config) { c.ONVIF.Listen = "" }, "onvif.discovery"},
		"same port as http":  {func(c *Config) { c.ONVIF.Listen = c.HTTP.Listen; c.ONVIF.Discovery = false }, "onvif.listen"},
		"missing file":       {func(c *Config) { c.Auth.Users[1].ONVIFPasswordFile = dir + "/none" }, "auth.users[1].onvif_password_file"},
		"short":              {func(c *Config) { c.Auth.Users[1].ONVIFPasswordFile = writeFile(t, dir, "s", "short") }, "auth.users[1].onvif_password_file"},
		"space": {func(c *Config) {
			c.Auth.APIKeys[1].ONVIFPasswordFile = writeFile(t, dir, "sp", "has a space in it 1234")
		}, "auth.api_keys[1].onvif_password_file"},
		"non-ascii": {func(c *Config) {
			c.Auth.APIKeys[1].ONVIFPasswordFile = writeFile(t, dir, "na", "päßwörd-päßwörd-123")
		}, "auth.api_keys[1].onvif_password_file"},
	} {
		t.Run(name, func(t *testing.T) {
			c := validConfig(t)
			c.ONVIF = ONVIF{Listen: "10.1.0.5:8000", Discovery: true}
			tc.mod(c)
			errs := c.Validate()
			if !slices.ContainsFunc(errs, func(e FieldError) bool { return e.Field == tc.field }) {
				t.Fatalf("want an error on %s, got %v", tc.field, errs)
			}
			for _, e := range errs {
				if strings.Contains(e.Msg, "short") || strings.Contains(e.Msg, "space in it") {
					t.Fatalf("password echoed: %v", e)
				}
			}
		})
	}
}
