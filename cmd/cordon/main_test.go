package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cordon/auth"
	"cordon/auth/audit"
	"cordon/relay/rtspserve"
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
	out, _, _ = run(t, "s3cret", "hash-password", "--rtsp-digest", "vms-1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[1] != rtspserve.HA1("vms-1", "s3cret") {
		t.Fatalf("--rtsp-digest output %q", out)
	}
	if _, _, code := run(t, "", "hash-password"); code == 0 {
		t.Fatal("empty stdin accepted")
	}
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
	out, _, code := run(t, "", "audit", "verify", path)
	if code != 0 || !strings.HasPrefix(out, "OK 3 lines") {
		t.Fatalf("intact log: exit %d %q", code, out)
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
