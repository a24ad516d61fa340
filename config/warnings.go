package config

import (
	"fmt"
	"net"
	"path"
	"strings"

	"cordon/auth/audit"
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
		if c.Metrics.PProf {
			add("metrics.pprof", "Go's profiler is served without authentication beyond loopback (it reveals memory contents and costs CPU while profiling)")
		}
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
		if c.Cameras[i].AdminHostRefused() {
			add(fmt.Sprintf("cameras[%d].admin_url", i), "names another host than url: hardening will not send the camera's credentials there "+
				"unless admin_other_host is true")
		}
	}
	w = append(w, c.roleWarnings(viewable)...)
	for i, ok := range viewable {
		if !ok {
			add(fmt.Sprintf("cameras[%d]", i), "no user or API key may view it")
		}
	}
	w = append(w, c.directoryWarnings()...)
	return append(w, c.auditWarnings()...)
}

// roleWarnings: role globs matching no camera, roles nobody holds; marks
// the cameras a held role lets someone view.
func (c *Config) roleWarnings(viewable []bool) []FieldError {
	var w []FieldError
	held := map[string]bool{}
	for _, u := range c.Auth.Users {
		for _, r := range u.Roles {
			held[r] = true
		}
	}
	for _, k := range c.Auth.APIKeys {
		for _, r := range k.Roles {
			held[r] = true
		}
	}
	for _, m := range append(append([]RoleMapping{}, c.Auth.OIDC.RoleMap...), c.Auth.LDAP.RoleMap...) {
		for _, r := range m.Roles {
			held[r] = true // directory users may hold it
		}
	}
	for i, r := range c.Auth.Roles {
		f := fmt.Sprintf("auth.roles[%d]", i)
		if !held[r.Name] {
			w = append(w, FieldError{Field: f, Msg: "no user, API key or directory role map has this role"})
		}
		if len(r.Cameras) == 0 {
			w = append(w, FieldError{Field: f + ".cameras", Msg: "empty: the role grants nothing"})
		}
		view := contains(r.Rights, "view")
		for j, g := range r.Cameras {
			hit := false
			for ci := range c.Cameras {
				if ok, _ := path.Match(g, c.Cameras[ci].ID); ok {
					hit = true
					if view && held[r.Name] {
						viewable[ci] = true
					}
				}
			}
			if !hit && len(c.Cameras) > 0 {
				w = append(w, FieldError{Field: fmt.Sprintf("%s.cameras[%d]", f, j), Msg: "matches no configured camera"})
			}
		}
	}
	return w
}

func (c *Config) auditWarnings() []FieldError {
	var w []FieldError
	a := &c.Audit
	if a.Forward == "" {
		if a.KeepFiles > 0 || a.KeepMB > 0 {
			w = append(w, FieldError{Field: "audit.keep_files", Msg: "rotated audit files are deleted by this policy with no copy off the gateway (set audit.forward)"})
		}
		return w
	}
	t, err := audit.ParseForwardURL(a.Forward)
	if err != nil {
		return w
	}
	host, _, _ := net.SplitHostPort(t.Addr)
	ip := net.ParseIP(host)
	remote := !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback())
	switch {
	case t.Scheme == audit.SchemeUDP:
		w = append(w, FieldError{Field: "audit.forward", Msg: "UDP has no acknowledgement: lines sent while the collector is away are lost (use tcp+tls://)"})
	case t.Scheme == audit.SchemeTCP && remote:
		w = append(w, FieldError{Field: "audit.forward", Msg: "audit lines cross the network unencrypted and unauthenticated (use tcp+tls://)"})
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
