package config

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withRoles adds two roles and gives them to principals: still valid.
func withRoles(t *testing.T) *Config {
	t.Helper()
	c := validConfig(t)
	c.Auth.Roles = []Role{
		{Name: "operator", Cameras: []string{"gate-*"}, Rights: []string{"view", "ptz", "playback"}, PTZPriority: 100},
		{Name: "investigator", Cameras: []string{"*"}, Rights: []string{"playback", "export"}},
	}
	c.Auth.Users[1].Roles = []string{"operator"}
	c.Auth.APIKeys[0].Roles = []string{"operator", "investigator"}
	return c
}

// Each case breaks exactly one thing of the sections this branch added;
// the one error names the field.
func TestValidateAccessLimitsAudit(t *testing.T) {
	tf := makeTLS(t)
	cases := []struct {
		name  string
		mut   func(c *Config)
		field string
		msg   string
	}{
		{"unknown right", func(c *Config) { c.Auth.Roles[0].Rights = []string{"view", "ptz", "delete"} }, "auth.roles[0].rights[2]", "unknown right"},
		{"right twice", func(c *Config) { c.Auth.Roles[1].Rights = []string{"export", "export"} }, "auth.roles[1].rights[1]", "listed twice"},
		{"no rights", func(c *Config) { c.Auth.Roles[1].Rights = []string{} }, "auth.roles[1].rights", "at least one"},
		{"priority too high", func(c *Config) { c.Auth.Roles[0].PTZPriority = 1001 }, "auth.roles[0].ptz_priority", "must be 1..1000"},
		{"priority negative", func(c *Config) { c.Auth.Roles[0].PTZPriority = -5 }, "auth.roles[0].ptz_priority", "must be 1..1000"},
		{"priority without ptz", func(c *Config) { c.Auth.Roles[1].PTZPriority = 10 }, "auth.roles[1].ptz_priority", "no ptz right"},
		{"role bad glob", func(c *Config) { c.Auth.Roles[1].Cameras = []string{"gate-["} }, "auth.roles[1].cameras[0]", "not a valid glob"},
		{"role name empty", func(c *Config) { c.Auth.Roles[1].Name = ""; c.Auth.APIKeys[0].Roles = nil }, "auth.roles[1].name", "must not be empty"},
		{"role defined twice", func(c *Config) { c.Auth.Roles[1].Name = "operator"; c.Auth.APIKeys[0].Roles = []string{"operator"} }, "auth.roles[1].name", "defined twice"},
		{"user role undefined", func(c *Config) { c.Auth.Users[0].Roles = []string{"ghost"} }, "auth.users[0].roles[0]", `role "ghost" is not defined`},
		{"key role undefined", func(c *Config) { c.Auth.APIKeys[0].Roles = []string{"operator", "nope"} }, "auth.api_keys[0].roles[1]", "not defined"},
		{"lockout threshold", func(c *Config) { c.Auth.Lockout.Threshold = 0 }, "auth.lockout.threshold", "1..1000"},
		{"lockout duration", func(c *Config) { c.Auth.Lockout.Decay = "soon" }, "auth.lockout.decay", "duration"},
		{"lockout max < base", func(c *Config) { c.Auth.Lockout.Max = "500ms" }, "auth.lockout.max", "shorter than"},
		{"limits total", func(c *Config) { c.Limits.RTSP.Total = 0 }, "limits.rtsp.total", "at least 1"},
		{"limits per address", func(c *Config) { c.Limits.ICETCP.PerAddress = 0 }, "limits.ice_tcp.per_address", "at least 1"},
		{"per address over total", func(c *Config) { c.Limits.HTTP.PerAddress = 5000 }, "limits.http.per_address", "must not exceed"},
		{"header timeout", func(c *Config) { c.Limits.HeaderTimeout = "100ms" }, "limits.header_timeout", "between 1s and 24h"},
		{"idle timeout", func(c *Config) { c.Limits.IdleTimeout = "forever" }, "limits.idle_timeout", "duration"},
		{"argon2 concurrent", func(c *Config) { c.Limits.Argon2Concurrent = 100 }, "limits.argon2_concurrent", "0 (half the CPUs) to 64"},
		{"argon2 queue", func(c *Config) { c.Limits.Argon2Queue = 0 }, "limits.argon2_queue", "1..1024"},
		{"viewer network", func(c *Config) { c.WebRTC.ViewerNetworks = []string{"10.0.0.0/8", "10.50.0.1"} }, "webrtc.viewer_networks[1]", "CIDR"},
		{"max candidates", func(c *Config) { c.WebRTC.MaxRemoteCandidates = 0 }, "webrtc.max_remote_candidates", "1..64"},
		{"forward scheme", func(c *Config) { c.Audit.Forward = "http://collector:514" }, "audit.forward", "scheme"},
		{"forward host", func(c *Config) { c.Audit.Forward = "tcp://:514" }, "audit.forward", "host"},
		{"forward tls files on tcp", func(c *Config) { c.Audit.Forward = "tcp://collector"; c.Audit.ForwardCAFile = tf.cert }, "audit.forward", "need a tcp+tls"},
		{"forward files without forward", func(c *Config) { c.Audit.ForwardCertFile = tf.cert }, "audit.forward_cert_file", "audit.forward is empty"},
		{"forward ca unreadable", func(c *Config) {
			c.Audit.Forward = "tcp+tls://collector"
			c.Audit.ForwardCAFile = filepath.Join(t.TempDir(), "none.pem")
		}, "audit.forward_ca_file", "cannot read"},
		{"forward cert without key", func(c *Config) {
			c.Audit.Forward = "tcp+tls://collector"
			c.Audit.ForwardCertFile = tf.cert
		}, "audit.forward_cert_file", "go together"},
		{"forward cert other key", func(c *Config) {
			c.Audit.Forward = "tcp+tls://collector"
			c.Audit.ForwardCertFile, c.Audit.ForwardKeyFile = tf.cert, tf.otherKey
		}, "audit.forward_cert_file", "matching its key"},
		{"keep without rotation", func(c *Config) { c.Audit.KeepFiles = 3; c.Audit.MaxSizeMB = 0 }, "audit.keep_files", "needs rotation"},
		{"keep negative", func(c *Config) { c.Audit.KeepMB = -1 }, "audit.keep_mb", "0 (keep all)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := withRoles(t)
			tc.mut(c)
			errs := c.Validate()
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Fatalf("want one error %s: ...%s..., got %v", tc.field, tc.msg, FieldErrors(errs))
			}
		})
	}
	c := withRoles(t)
	c.Audit.Forward = "tcp+tls://127.0.0.1:6514"
	c.Audit.ForwardCAFile, c.Audit.ForwardCertFile, c.Audit.ForwardKeyFile = tf.cert, tf.cert, tf.key
	if errs := c.Validate(); errs != nil {
		t.Fatalf("valid forwarding config: %v", FieldErrors(errs))
	}
	cfg, err := c.Audit.ForwardTLS()
	if err != nil || cfg.ServerName != "127.0.0.1" || len(cfg.Certificates) != 1 || cfg.RootCAs == nil {
		t.Fatalf("ForwardTLS %+v %v", cfg, err)
	}
}

func TestAccessHelpers(t *testing.T) {
	c := withRoles(t)
	c.Auth.Lockout = Lockout{Threshold: 5, Base: "2s", Max: "1h", Decay: "1d"}
	if b, m, d := c.Auth.Lockout.Durations(); b != 2*time.Second || m != time.Hour || d != 24*time.Hour {
		t.Fatal(b, m, d)
	}
	c.Limits.HeaderTimeout, c.Limits.IdleTimeout = "5s", "3m"
	if h, i := c.Limits.Timeouts(); h != 5*time.Second || i != 3*time.Minute {
		t.Fatal(h, i)
	}
	c.WebRTC.ViewerNetworks = []string{"10.50.1.7/16", "2001:db8::/48"}
	if got := c.WebRTC.ViewerPrefixes(); len(got) != 2 || got[0] != netip.MustParsePrefix("10.50.0.0/16") {
		t.Fatal(got)
	}
	c.CameraNetwork.DNSListen = "10.20.0.1:53"
	got := c.CameraNetworkAddrs()
	want := []netip.Addr{netip.MustParseAddr("10.20.0.12"), netip.MustParseAddr("10.20.0.14"), netip.MustParseAddr("10.20.0.15"), netip.MustParseAddr("10.20.0.1")}
	if !slices.Equal(got, want) {
		t.Fatalf("camera network %v, want %v", got, want)
	}
	totals := c.DescriptorTotals()
	if len(totals) != 3 || totals["limits.http.total"] != 2048 {
		t.Fatal(totals)
	}
	c.RTSP.Listen, c.WebRTC.TCPListen = "", ""
	if len(c.DescriptorTotals()) != 1 {
		t.Fatal("listeners that are off are budgeted")
	}
}

func TestAccessWarnings(t *testing.T) {
	c := withRoles(t)
	c.HTTP.Listen = "127.0.0.1:8080"
	c.Auth.Roles = append(c.Auth.Roles, Role{Name: "unused", Cameras: []string{"depot"}, Rights: []string{"view"}})
	c.Auth.Roles[1].Cameras = []string{"nothing-*"}
	c.Audit.Forward = "udp://10.9.9.9:514"
	if errs := c.Validate(); errs != nil {
		t.Fatal(FieldErrors(errs))
	}
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Field)
	}
	want := []string{"auth.roles[1].cameras[0]", "auth.roles[2]", "audit.forward"}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings on %v, want %v", got, want)
	}
	// A role with the view right makes cameras viewable.
	c = withRoles(t)
	c.HTTP.Listen = "127.0.0.1:8080"
	c.Auth.Users[0].Cameras, c.Auth.APIKeys[1].Cameras = nil, nil
	c.Auth.Roles = append(c.Auth.Roles, Role{Name: "all", Cameras: []string{"*"}, Rights: []string{"view"}})
	c.Auth.Users[0].Roles = []string{"all"}
	if w := c.Warnings(); w != nil {
		t.Fatalf("warnings %v", FieldErrors(w))
	}
	c.Audit.Forward, c.Audit.KeepFiles = "", 3
	if w := c.Warnings(); len(w) != 1 || w[0].Field != "audit.keep_files" {
		t.Fatalf("retention without forwarding: %v", FieldErrors(w))
	}
	c.Audit.Forward, c.Audit.KeepFiles = "tcp://collector.example:514", 0
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0].Msg, "unencrypted") {
		t.Fatalf("plain TCP to a remote collector: %v", FieldErrors(w))
	}
}
