package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/config"
)

// run executes the CLI in-process and returns stdout, stderr and the exit
// status main would use.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(stdin), &out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	var ee exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

func TestHashPassword(t *testing.T) {
	out, _, code := run(t, "correct horse\n", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	h := strings.TrimSpace(out)
	if ok, err := auth.VerifySecret(h, []byte("correct horse")); !ok || err != nil {
		t.Fatalf("printed hash %q does not verify the secret: %v", h, err)
	}
	if ok, _ := auth.VerifySecret(h, []byte("correct horse\n")); ok {
		t.Fatal("the line ending became part of the secret")
	}
	if _, _, code := run(t, "", "hash-password"); code == 0 {
		t.Fatal("empty stdin accepted")
	}
}

// --rtsp-digest generates a separate random RTSP-only secret (never the
// login password, which is not even read), prints it once with its HA1.
func TestHashPasswordRTSPDigest(t *testing.T) {
	out1, _, code := run(t, "the-login-password\n", "hash-password", "--rtsp-digest", "vms-1")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	secret, ha1 := digestOutput(t, out1)
	if len(secret) != 32 || ha1 != auth.DigestHA1("vms-1", secret) || strings.Contains(out1, "the-login-password") ||
		ha1 == auth.DigestHA1("vms-1", "the-login-password") {
		t.Fatalf("output %q", out1)
	}
	out2, _, _ := run(t, "", "hash-password", "--rtsp-digest", "vms-1")
	if s2, _ := digestOutput(t, out2); s2 == secret {
		t.Fatal("the same secret twice")
	}
	// The printed line is valid config.
	c := config.Default()
	c.Auth.APIKeys = []config.APIKey{{Name: "vms-1", KeyHash: "$argon2id$v=19$m=65536,t=3,p=2$Y29yZG9uLWV4YW1wbGUtcw$AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o", RTSPDigestHA1: ha1}}
	if errs := c.Validate(); errs != nil {
		t.Fatal(config.FieldErrors(errs))
	}
	if _, _, code := run(t, "", "hash-password", "--rtsp-digest", "bad:name"); code == 0 {
		t.Fatal("bad name accepted")
	}
}

func digestOutput(t *testing.T, out string) (secret, ha1 string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "secret: "); ok {
			secret = v
		}
		if v, ok := strings.CutPrefix(l, "rtsp_digest_ha1: "); ok {
			ha1 = strings.Trim(v, `"`)
		}
	}
	if secret == "" || len(ha1) != 32 {
		t.Fatalf("output %q", out)
	}
	return secret, ha1
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	h, err := auth.HashSecret([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, good, `auth:
  users:
    - name: alice
      password_hash: "`+h+`"
      cameras: ["*"]
cameras:
  - id: gate
    url: rtsp://10.20.0.12/stream
state_dir: `+filepath.Join(dir, "state")+`
`)
	out, _, code := run(t, "", "check", "--config", good)
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("valid config: exit %d, %q", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `auth:
  users:
    - name: alice
      password_hash: "plain"
      cameras: ["[x"]
cameras:
  - id: "Gate North"
    url: "http://camera/x"
    password: "hunter2-camera"
`)
	out, _, code = run(t, "", "check", "--config", bad)
	if code != 1 {
		t.Fatalf("invalid config: exit %d", code)
	}
	for _, field := range []string{"auth.users[0].password_hash:", "auth.users[0].cameras[0]:", "cameras[0].id:", "cameras[0].url:"} {
		if !strings.Contains(out, field) {
			t.Errorf("no line for %s in:\n%s", field, out)
		}
	}
	if strings.Contains(out, "hunter2-camera") {
		t.Error("check printed a camera secret")
	}
	if _, _, code := run(t, "", "check", "--config", filepath.Join(dir, "missing.yaml")); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "cordon ") || !strings.Contains(out, "go: go1.") {
		t.Fatalf("version: exit %d %q", code, out)
	}
}

func TestAuditVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := &audit.Log{Path: path}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{audit.ConfigLoaded, audit.LoginOK, audit.Logout} {
		if err := l.Append(audit.Event{Event: e, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// No signing key here: an unsigned log is a hash chain, said so;
	// --require-signed refuses it.
	t.Setenv("CORDON_STATE_DIR", t.TempDir())
	out, _, code := run(t, "", "audit", "verify", path)
	if code != 0 || !strings.HasPrefix(out, "OK 3 lines") || !strings.Contains(out, "hash chain only") {
		t.Fatalf("intact log: exit %d %q", code, out)
	}
	out, _, code = run(t, "", "audit", "verify", "--require-signed", path)
	if code != 1 || !strings.Contains(out, "no line is signed") {
		t.Fatalf("unsigned log with --require-signed: exit %d %q", code, out)
	}
	b, _ := os.ReadFile(path)
	writeFile(t, path, strings.Replace(string(b), `"actor":"alice","camera":"","remote":"","protocol":"","detail":"","prev"`, `"actor":"mallory","camera":"","remote":"","protocol":"","detail":"","prev"`, 1))
	out, _, code = run(t, "", "audit", "verify", path)
	if code != 1 || !strings.Contains(out, "line 1") {
		t.Fatalf("edited log: exit %d %q", code, out)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestAuditSignedVerifyAndPubkey(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	l := &audit.Log{Path: path, KeyPath: filepath.Join(state, audit.KeyFileName)}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{audit.ConfigLoaded, audit.LoginOK, audit.SessionKilled} {
		if err := l.Append(audit.Event{Event: e, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	cfgPath := filepath.Join(dir, "cordon.yaml")
	writeFile(t, cfgPath, "state_dir: "+state+"\n")
	out, errOut, code := run(t, "", "audit", "pubkey", "--config", cfgPath)
	pk := strings.TrimSpace(out)
	if code != 0 || pk != l.PublicKey() || !strings.Contains(errOut, "fingerprint "+audit.KeyFingerprint(pk)) {
		t.Fatalf("pubkey: exit %d %q %q", code, out, errOut)
	}
	if out2, _, _ := run(t, "", "audit", "pubkey", "--key", filepath.Join(state, audit.KeyFileName)); strings.TrimSpace(out2) != pk {
		t.Fatal("--key differs from --config")
	}
	if _, _, code := run(t, "", "audit", "pubkey"); code == 0 {
		t.Fatal("pubkey without a source")
	}
	out, _, code = run(t, "", "audit", "verify", path, "--pubkey", pk)
	if code != 0 || !strings.HasPrefix(out, "OK 3 lines") || !strings.Contains(out, "from the trusted key") {
		t.Fatalf("verify with the key: exit %d %q", code, out)
	}
	keyFile := filepath.Join(dir, "audit.pub")
	writeFile(t, keyFile, pk+"\n")
	if _, _, code := run(t, "", "audit", "verify", path, "--pubkey", "@"+keyFile); code != 0 {
		t.Fatal("--pubkey @FILE")
	}
	out, _, _ = run(t, "", "audit", "verify", path)
	if !strings.Contains(out, "genesis key fingerprint "+audit.KeyFingerprint(pk)) {
		t.Fatalf("verify without a key does not show the fingerprint: %q", out)
	}
	// The gateway's key file is a trusted key too: --config or --key.
	for _, args := range [][]string{{"--config", cfgPath}, {"--key", filepath.Join(state, audit.KeyFileName)}} {
		out, _, code := run(t, "", append([]string{"audit", "verify", path}, args...)...)
		if code != 0 || !strings.Contains(out, "from the trusted key "+audit.KeyFingerprint(pk)) {
			t.Fatalf("verify %v: exit %d %q", args, code, out)
		}
	}
	if _, _, code := run(t, "", "audit", "verify", path, "--pubkey", pk, "--config", cfgPath); code == 0 {
		t.Fatal("two trusted keys accepted")
	}
	// Stripped of its signatures and re-hashed, the log is a well-formed
	// unsigned chain: where the gateway's key file is known (--config,
	// --key, or found in the default state_dir), verify refuses it.
	stripped := filepath.Join(dir, "stripped.log")
	writeFile(t, stripped, stripSignatures(t, path))
	for _, args := range [][]string{{"--config", cfgPath}, {"--key", filepath.Join(state, audit.KeyFileName)}, {"--pubkey", pk}, {"--require-signed"}} {
		out, _, code := run(t, "", append([]string{"audit", "verify", stripped}, args...)...)
		if code != 1 || !strings.Contains(out, "no line is signed") {
			t.Fatalf("stripped log, verify %v: exit %d %q", args, code, out)
		}
	}
	t.Setenv("CORDON_STATE_DIR", t.TempDir()) // no key file: only a chain
	if out, _, code := run(t, "", "audit", "verify", stripped); code != 0 || !strings.Contains(out, "not signed") {
		t.Fatalf("the stripped log is a well-formed unsigned chain (what the attack relies on): exit %d %q", code, out)
	}
	t.Setenv("CORDON_STATE_DIR", state) // the gateway's state_dir: found by default
	if out, _, code := run(t, "", "audit", "verify", stripped); code != 1 || !strings.Contains(out, "the gateway signs with "+filepath.Join(state, audit.KeyFileName)) {
		t.Fatalf("stripped log on the gateway, no flags: exit %d %q", code, out)
	}
	if out, _, code := run(t, "", "audit", "verify", path); code != 0 || !strings.Contains(out, "from the trusted key "+audit.KeyFingerprint(pk)) {
		t.Fatalf("intact log on the gateway, no flags: exit %d %q", code, out)
	}
	// Another key: refused, naming line 1.
	other := filepath.Join(t.TempDir(), "other.log")
	o := &audit.Log{Path: other, KeyPath: filepath.Join(t.TempDir(), "k")}
	if err := o.Initialize(); err != nil {
		t.Fatal(err)
	}
	o.Close()
	out, _, code = run(t, "", "audit", "verify", path, "--pubkey", o.PublicKey())
	if code != 1 || !strings.Contains(out, "BROKEN") || !strings.Contains(out, "line 1") {
		t.Fatalf("wrong key: exit %d %q", code, out)
	}
	// An edited signed line is named.
	b, _ := os.ReadFile(path)
	writeFile(t, path, strings.Replace(string(b), `"event":"session_killed","actor":"alice"`, `"event":"session_killed","actor":"alicf"`, 1))
	out, _, code = run(t, "", "audit", "verify", path, "--pubkey", pk)
	if code != 1 || !strings.Contains(out, "line 3") || !strings.Contains(out, "signature") {
		t.Fatalf("edited line: exit %d %q", code, out)
	}
}

// stripSignatures rewrites a signed log as an attacker with write access
// would: signatures and key fields removed, prev hashes recomputed.
func stripSignatures(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	prev := ""
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		var rebuilt strings.Builder
		rebuilt.WriteString("{")
		for i, k := range []string{"seq", "time", "event", "actor", "camera", "remote", "protocol", "detail"} {
			if i > 0 {
				rebuilt.WriteString(",")
			}
			v, _ := json.Marshal(m[k])
			fmt.Fprintf(&rebuilt, "%q:%s", k, v)
		}
		fmt.Fprintf(&rebuilt, ",\"prev\":%q}", prev)
		sum := sha256.Sum256([]byte(rebuilt.String()))
		prev = hex.EncodeToString(sum[:])
		out.WriteString(rebuilt.String() + "\n")
	}
	return out.String()
}
