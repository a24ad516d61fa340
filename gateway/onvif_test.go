package gateway

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cordon/auth"
	"cordon/config"
	"cordon/relay/onvifserve"
)

// onvifGateway runs a gateway with the ONVIF face on loopback: users alice
// (ONVIF password) and bob (none), and an API key vms (ONVIF password);
// mods change the config before it is validated.
func onvifGateway(t *testing.T, mods ...func(*config.Config)) *Gateway {
	t.Helper()
	dir := t.TempDir()
	write := func(name, secret string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hash := func(s string) string {
		h, err := auth.HashSecret([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	cfg := config.Default()
	cfg.HTTP.Listen, cfg.RTSP.Listen, cfg.Metrics.Listen = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.RTSP.UDPRTPListen, cfg.RTSP.UDPRTCPListen = "", ""
	cfg.WebRTC.UDPListen, cfg.WebRTC.TCPListen, cfg.WebRTC.HostIPs = "127.0.0.1:0", "", []string{"127.0.0.1"}
	cfg.StateDir, cfg.Audit.Path = filepath.Join(dir, "state"), filepath.Join(dir, "audit.log")
	cfg.ONVIF.Listen = "127.0.0.1:0"
	cfg.Auth.Users = []config.User{
		{Name: "alice", PasswordHash: hash("alice-login"), Cameras: []string{"*"}, ONVIFPasswordFile: write("alice", "alice-onvif-0123456789")},
		{Name: "bob", PasswordHash: hash("bob-login"), Cameras: []string{"*"}},
	}
	cfg.Auth.APIKeys = []config.APIKey{{Name: "vms", KeyHash: hash("vms-key"), Cameras: []string{"*"}, ONVIFPasswordFile: write("vms", "vms-onvif-0123456789")}}
	for _, mod := range mods {
		mod(cfg)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	g := &Gateway{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoHardening: true}
	if err := g.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func loginOKLines(t *testing.T, g *Gateway) []string {
	t.Helper()
	b, err := os.ReadFile(g.Config.Audit.Path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"event":"login_ok"`) && strings.Contains(l, `"protocol":"onvif"`) {
			out = append(out, l)
		}
	}
	return out
}

// The ONVIF secret per name (users first, API keys), the principal on
// success, one login_ok per name and address, lockout as the face's
// error, and PasswordText through the login password.
func TestONVIFAccess(t *testing.T) {
	g := onvifGateway(t)
	a := onvifAccess{g}
	att, err := a.BeginAttempt("alice", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := att.Secret(); !ok || s != "alice-onvif-0123456789" {
		t.Fatalf("alice's secret %q %v", s, ok)
	}
	p, err := att.Succeeded()
	if err != nil || p.Name != "alice" || p.Ref.(*auth.Principal).Kind != auth.KindUser {
		t.Fatalf("alice: %+v %v", p, err)
	}
	for _, c := range []struct{ name, kind string }{{"bob", ""}, {"nobody", ""}, {"vms", auth.KindAPIKey}} {
		att, err := a.BeginAttempt(c.name, "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		s, ok := att.Secret()
		if ok != (c.kind != "") || (ok && s != "vms-onvif-0123456789") {
			t.Fatalf("%s: secret %q %v", c.name, s, ok)
		}
		if !ok {
			att.Failed("no ONVIF secret")
			continue
		}
		if p, err := att.Succeeded(); err != nil || p.Ref.(*auth.Principal).Kind != c.kind {
			t.Fatalf("%s: %+v %v", c.name, p, err)
		}
	}
	// signed in on every request: one line per name and address
	for range 3 {
		att, _ := a.BeginAttempt("alice", "10.0.0.1")
		if _, err := att.Succeeded(); err != nil {
			t.Fatal(err)
		}
	}
	att, _ = a.BeginAttempt("alice", "10.0.0.2")
	if _, err := att.Succeeded(); err != nil {
		t.Fatal(err)
	}
	if lines := loginOKLines(t, g); len(lines) != 3 { // alice@.1, vms@.1, alice@.2
		t.Fatalf("login_ok lines: %v", lines)
	}

	// PasswordText: the login password, through auth's password path
	if p, err := a.CheckPassword(t.Context(), "bob", "bob-login", "10.0.0.3"); err != nil || p.Name != "bob" {
		t.Fatalf("bob's login password: %+v %v", p, err)
	}
	if _, err := a.CheckPassword(t.Context(), "bob", "bob-onvif?", "10.0.0.3"); err == nil {
		t.Fatal("a wrong password accepted")
	}

	// failures lock the address: the face gets *LockedOut
	var lo *onvifserve.LockedOut
	for i := range 10 {
		att, err := a.BeginAttempt("alice", "10.0.0.9")
		if errors.As(err, &lo) {
			break
		}
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		att.Failed("bad WS-Security digest")
	}
	if lo == nil || lo.RetryAfter <= 0 {
		t.Fatalf("no lockout: %v", lo)
	}
	if _, err := a.CheckPassword(t.Context(), "alice", "alice-login", "10.0.0.9"); !errors.As(err, &lo) {
		t.Fatalf("PasswordText while locked: %v", err)
	}
	if g.ONVIFAddr() == "" {
		t.Fatal("no ONVIF address")
	}
}

// loginDedup forgets lines after the interval and never holds more than
// its bound (when full of fresh keys, a new key is written every time).
func TestLoginDedup(t *testing.T) {
	d := newLoginDedup(time.Minute, 2)
	now := time.Unix(1000, 0)
	for _, k := range []string{"a", "b"} {
		if !d.due(k, now) {
			t.Fatalf("%s not due", k)
		}
		d.done(k, now)
	}
	if d.due("a", now.Add(30*time.Second)) {
		t.Fatal("a due again within the interval")
	}
	d.done("c", now.Add(30*time.Second)) // full of fresh keys: not remembered
	if !d.due("c", now.Add(31*time.Second)) || len(d.last) != 2 {
		t.Fatalf("c remembered beyond the bound: %v", d.last)
	}
	d.done("c", now.Add(2*time.Minute)) // a and b expired: room again
	if d.due("c", now.Add(2*time.Minute+time.Second)) || len(d.last) != 1 || !d.due("a", now.Add(2*time.Minute)) {
		t.Fatalf("after expiry: %v", d.last)
	}
}
