package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/gateway"
)

// TestSelfSignedTLS: `serve --self-signed` serves HTTPS and RTSPS with a
// certificate created once in state_dir, prints its fingerprint for
// pinning, refuses TLS below 1.2, and keeps the certificate across
// restarts.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestSelfSignedTLS(t *testing.T) {
	cam := startCam(t, "tls-cam", "127.0.0.91", democam.Quirks{})
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "carol", Password: "carol-pw-77", Cameras: []string{"*"}}},
		[]config.Camera{camCfg(cam, false)})
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	start := func() (*gateway.Gateway, string) {
		var out bytes.Buffer
		g := &gateway.Gateway{Config: cfg, Logger: slog.New(slog.DiscardHandler), Stdout: &out, SelfSigned: true}
		if err := g.Initialize(); err != nil {
			t.Fatal(err)
		}
		return g, out.String()
	}
	g, printed := start()
	defer func() { g.Close() }()
	if !g.TLS() {
		t.Fatal("gateway does not serve TLS")
	}
	pemBytes, err := os.ReadFile(filepath.Join(cfg.StateDir, "tls-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(cfg.StateDir, "tls-key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("bad certificate PEM")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	baseURL := "https://" + g.HTTPAddr()

	// the printed fingerprint is the served certificate's
	conn, err := tls.Dial("tcp", g.HTTPAddr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	conn.Close()
	want := strings.ToUpper(fmt.Sprintf("%x", sum[:2]))
	if !strings.Contains(printed, "SHA-256 fingerprint: "+want[:2]+":"+want[2:4]) {
		t.Fatalf("printed %q does not carry the served certificate's fingerprint (starts %s)", printed, want)
	}
	// TLS 1.1 is refused
	if c, err := tls.Dial("tcp", g.HTTPAddr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 accepted")
	}

	// sign in and watch over HTTPS
	body, _ := json.Marshal(map[string]string{"username": "carol", "password": "carol-pw-77"})
	resp, err := client.Post(baseURL+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login over HTTPS: %d %s", resp.StatusCode, b)
	}
	var tok struct{ Token string }
	_ = json.Unmarshal(b, &tok)
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/api/v1/cameras", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("cameras over HTTPS: %v %v", resp, err)
	}
	resp.Body.Close()

	// RTSPS with the same certificate and Basic auth (allowed over TLS)
	u, err := base.ParseURL("rtsps://carol:carol-pw-77@" + g.RTSPAddr() + "/tls-cam")
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, ReadTimeout: 10 * time.Second}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	desc, _, err := c.Describe(u)
	c.Close()
	if err != nil || len(desc.Medias) == 0 {
		t.Fatalf("RTSPS DESCRIBE: %v", err)
	}

	// restart: the same certificate is served (operators pinned it)
	g.Close()
	g, printed2 := start()
	if printed2 != printed {
		t.Fatalf("certificate changed across restarts:\n%s\n%s", printed, printed2)
	}
}
