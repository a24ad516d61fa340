package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzLoadValidate: any file gives a Config or FieldErrors, never a panic,
// and no message echoes the planted secret.
func FuzzLoadValidate(f *testing.F) {
	for _, s := range []string{
		"", "null", "- a", "5", "http: 5", "cameras: 5", "cameras: [5]", "cameras: [{id: 5}]",
		"auth: {users: {name: x}}", "auth: {users: [null]}", "webrtc: {ice_servers: [5, [1]]}",
		"cameras: [{id: a, url: 'rtsp://u:" + camSecret + "@h:x/'}]",
		"cameras: [{id: a, url: rtsp://h/, password: " + camSecret + ", on_demand: " + camSecret + "}]",
		"state_dir: [a]\naudit: {max_size_mb: 1.5}",
		"auth: {roles: [{name: r, cameras: ['[', '*'], rights: [view, x, view], ptz_priority: 2000}], users: [{name: u, roles: [r, q]}]}",
		"limits: {http: {per_address: 5, total: -1}, idle_timeout: 1d2h, argon2_queue: 99999}",
		"audit: {forward: 'tcp+tls://[::1', forward_ca_file: /nonexistent, keep_files: -3}\nwebrtc: {viewer_networks: [10.0.0.0/33, ::/0], max_remote_candidates: 0}",
		ExampleYAML(),
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		fh, err := os.CreateTemp(dir, "f*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		p := fh.Name()
		defer os.Remove(p)
		_, werr := fh.WriteString(data)
		if cerr := fh.Close(); werr != nil || cerr != nil {
			t.Fatal(werr, cerr)
		}
		cfg, err := Load(p)
		if err != nil {
			if len(AsFieldErrors(err)) == 0 {
				t.Fatal("error without problems")
			}
			if strings.Contains(err.Error(), camSecret) {
				t.Fatalf("load error echoes the secret: %v", err)
			}
			return
		}
		errs := cfg.Validate()
		for _, fe := range errs {
			if strings.Contains(fe.Error(), camSecret) {
				t.Fatalf("validation error echoes the secret: %v", fe)
			}
		}
		_ = cfg.Warnings()
		r := NewRedactor(cfg)
		if errs != nil {
			return
		}
		// valid configuration: no camera secret survives redaction of the
		// pull URL
		for i := range cfg.Cameras {
			u, err := cfg.Cameras[i].PullURL()
			if err != nil {
				t.Fatalf("valid camera without pull URL: %v", err)
			}
			secret, _ := cfg.Cameras[i].Secret()
			if u.User != nil {
				if p, ok := u.User.Password(); ok {
					secret = p
				}
			}
			if secret == "" || strings.Contains(Mask, secret) {
				continue
			}
			if got := r.Redact(u.String()); strings.Contains(got, secret) {
				t.Fatalf("redacted pull URL keeps the secret: %q", got)
			}
			if got := SafeURL(u.String()); strings.Contains(got, "@") && strings.Contains(got, secret) {
				t.Fatalf("SafeURL keeps userinfo: %q", got)
			}
		}
	})
}
