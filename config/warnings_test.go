package config

import (
	"slices"
	"testing"
)

func TestWarnings(t *testing.T) {
	c := validConfig(t)
	c.HTTP.Listen = "127.0.0.1:8080"
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	if w := c.Warnings(); w != nil {
		t.Fatalf("unexpected warnings: %v", FieldErrors(w))
	}
	c.HTTP.Listen = ":8080"
	c.Metrics.Listen = "0.0.0.0:9464"
	c.Metrics.PProf = true
	c.Auth.Users[0].Cameras = []string{"gate-*"}
	c.Auth.APIKeys[0].Cameras = []string{"nothing-*", "gate-north"}
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Field)
	}
	want := []string{"http.tls_cert", "metrics.listen", "metrics.pprof", "auth.api_keys[0].cameras[0]", "cameras[2]", "cameras[3]"}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings on %v, want %v", got, want)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "localhost:1": true,
		":80": false, "0.0.0.0:80": false, "10.0.0.1:80": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}
