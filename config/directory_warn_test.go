package config

import (
	"slices"
	"testing"
)

func TestDirectoryWarnings(t *testing.T) {
	c := validConfig(t)
	c.HTTP.Listen = "127.0.0.1:8080"
	c.RTSP.Listen = ":8554"
	c.Auth.Roles = []Role{{Name: "operator", Cameras: []string{"*"}, Rights: []string{"view"}}}
	c.Auth.LDAP.URL = "ldaps://dc1.force.local"
	c.Auth.LDAP.RoleMap = []RoleMapping{{Group: "cn=ops,dc=force", Roles: []string{"operator", "nosuchrole"}}}
	c.Auth.OIDC.Issuer = "https://idp.force.local"
	var got []string
	for _, w := range c.directoryWarnings() {
		got = append(got, w.Field)
	}
	want := []string{"auth.oidc.role_map", "auth.ldap.role_map[0].roles[1]", "auth.ldap.url"}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings on %v, want %v", got, want)
	}
	c.RTSP.AllowBasicWithoutTLS = true
	c.Auth.OIDC.Issuer = ""
	c.Auth.LDAP.RoleMap[0].Roles = []string{"operator"}
	if w := c.directoryWarnings(); len(w) != 1 || w[0].Field != "rtsp.allow_basic_without_tls" {
		t.Fatalf("warnings %v", FieldErrors(w))
	}
	c.RTSP.Listen = "127.0.0.1:8554"
	c.RTSP.AllowBasicWithoutTLS = false
	if w := c.directoryWarnings(); len(w) != 0 {
		t.Fatalf("loopback RTSP: %v", FieldErrors(w))
	}
}
