package e2e

// Helpers of the ONVIF device face and hardening tests (onvif_test.go,
// harden_test.go). Names carry an "ov" prefix so they do not collide with
// other files of this package. Hosts of these tests: 127.0.0.150-179.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cordon/internal/soap"
	"cordon/internal/testtool"
	"cordon/internal/testtool/onvifnode"
)

// ovNodeClient is the npm onvif client's folder (internal/testtool/onvifnode).
const ovNodeClient = "../relay/onvifserve/testdata/nodeclient"

// ovNode drives the gateway's ONVIF face at addr with the npm `onvif`
// client (relay/onvifserve/testdata/nodeclient, installed by
// scripts/install-test-deps.sh) as user/password, and returns one result
// per step.
func ovNode(t *testing.T, addr, user, password string, steps ...onvifnode.Step) []onvifnode.Result {
	t.Helper()
	return onvifnode.Run(t, ovNodeClient, addr, map[string]any{"username": user, "password": password}, steps...)
}

// ovWithCredentials puts user and password into an RTSP URI.
func ovWithCredentials(t *testing.T, uri, user, password string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(uri, "rtsp://")
	if !ok {
		t.Fatalf("stream URI %q is not rtsp://", uri)
	}
	return "rtsp://" + user + ":" + password + "@" + rest
}

// ovSOAP posts one ONVIF request from src (a loopback address) to the
// face, signed with a WS-Security digest of password ("" = unsigned),
// and returns the HTTP status, Retry-After and the parsed answer (nil for
// a non-SOAP body).
func ovSOAP(t *testing.T, src, addr, user, password string, op soap.Node) (int, string, *soap.Envelope) {
	t.Helper()
	m := &soap.Message{Version: soap.SOAP12, Body: []soap.Node{op}}
	if user != "" {
		tok, err := soap.NewUsernameToken(user, password, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m.Header = []soap.Node{tok.Node()}
	}
	hc := testtool.HTTPClientFrom(src, nil, 30*time.Second)
	resp, err := hc.Post("http://"+addr+"/onvif/device_service", soap.SOAP12.ContentType(), bytes.NewReader(m.Bytes()))
	if err != nil {
		t.Fatalf("ONVIF request from %s: %v", src, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	env, err := soap.ParseEnvelopeBytes(b, soap.Limits{})
	if err != nil {
		env = nil
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), env
}

// ovAudit is one audit line (the fields these tests read).
type ovAudit struct {
	Event    string `json:"event"`
	Actor    string `json:"actor"`
	Camera   string `json:"camera"`
	Remote   string `json:"remote"`
	Protocol string `json:"protocol"`
	Detail   string `json:"detail"`
}

// ovAuditLines returns the audit log's complete lines matching keep (a
// line being written, without its newline yet, is left for the next read).
func ovAuditLines(t *testing.T, path string, keep func(ovAudit) bool) []ovAudit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []ovAudit
	complete := string(b[:bytes.LastIndexByte(b, '\n')+1])
	for line := range strings.SplitSeq(strings.TrimSpace(complete), "\n") {
		if line == "" {
			continue
		}
		var e ovAudit
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// ovSecretFile writes an ONVIF password file (0600) and returns its path.
func ovSecretFile(t *testing.T, name, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ovFFprobeErr plays an RTSP URI with ffprobe and returns its error
// (for URIs that must not play).
func ovFFprobeErr(uri string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", uri).CombinedOutput()
	return string(out), err
}

// ovNodeTLS is ovNode over HTTPS, trusting caPEM.
func ovNodeTLS(t *testing.T, addr, user, password, caPEM string, steps ...onvifnode.Step) []onvifnode.Result {
	t.Helper()
	return onvifnode.Run(t, ovNodeClient, addr, map[string]any{"username": user, "password": password, "useSecure": true, "ca": caPEM}, steps...)
}
