package config

import (
	"fmt"
	"net"
	"path"
	"strings"
)

// Warnings returns things that are valid but probably not intended, named
// by field like Validate's errors: plain HTTP or an unauthenticated /metrics
// beyond loopback, camera globs that match no camera, cameras nobody may
// view. The gateway logs them at start-up; `cordon check` may print them
// without failing. Call it on a configuration that passed Validate.
func (c *Config) Warnings() []FieldError {
	if c == nil {
		return nil
	}
	var w []FieldError
	add := func(field, msg string) { w = append(w, FieldError{Field: field, Msg: msg}) }
	if c.HTTP.TLSCert == "" && c.HTTP.Listen != "" && !IsLoopback(c.HTTP.Listen) {
		add("http.tls_cert", "not set: passwords and tokens cross the network in clear text (plain HTTP beyond loopback)")
	}
	if c.Metrics.Listen != "" && !IsLoopback(c.Metrics.Listen) {
		add("metrics.listen", "/metrics has no authentication and listens beyond loopback")
	}
	c.Cluster.warnings(c, add)
	viewable := make([]bool, len(c.Cameras))
	check := func(field string, globs []string) {
		for j, g := range globs {
			hit := false
			for i := range c.Cameras {
				if ok, _ := path.Match(g, c.Cameras[i].ID); ok {
					hit, viewable[i] = true, true
				}
			}
			if !hit && len(c.Cameras) > 0 {
				add(fmt.Sprintf("%s[%d]", field, j), "matches no configured camera")
			}
		}
	}
	for i := range c.Auth.Users {
		check(fmt.Sprintf("auth.users[%d].cameras", i), c.Auth.Users[i].Cameras)
	}
	for i := range c.Auth.APIKeys {
		check(fmt.Sprintf("auth.api_keys[%d].cameras", i), c.Auth.APIKeys[i].Cameras)
	}
	for i := range c.Cameras {
		if c.Cameras[i].adminHostDiffers() {
			add(fmt.Sprintf("cameras[%d].admin_url", i), "names another host than url: hardening sends the camera's credentials there")
		}
	}
	for i, ok := range viewable {
		if !ok {
			add(fmt.Sprintf("cameras[%d]", i), "no user or API key may view it")
		}
	}
	return w
}

// IsLoopback reports whether a listen address (host:port) binds only to
// loopback. ":8080" and "0.0.0.0:8080" are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
