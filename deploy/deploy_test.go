package deploy

import (
	"bufio"
	"cordon/internal/testtool"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// needRoot skips (fails under CI=true) when not root: nft and network
// namespaces need CAP_NET_ADMIN.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testtool.Missing(t, "this test needs root (CAP_NET_ADMIN for nft and network namespaces)")
	}
}

func TestNftRulesetSyntax(t *testing.T) {
	nft := testtool.Require(t, "nft")
	needRoot(t)
	// nft -c talks to the kernel; do it in a throw-away network namespace
	// so that nothing on the host is touched even by mistake.
	var cmd *exec.Cmd
	if unshare, err := exec.LookPath("unshare"); err == nil {
		cmd = exec.Command(unshare, "-n", nft, "-c", "-f", "nftables/cordon.nft")
	} else {
		cmd = exec.Command(nft, "-c", "-f", "nftables/cordon.nft")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -c -f nftables/cordon.nft: %v\n%s", err, out)
	}
	// The check must be able to fail.
	bad := filepath.Join(t.TempDir(), "bad.nft")
	if err := os.WriteFile(bad, []byte("table inet cordon { chain input { type filter hook input priority filter; policy maybe; } }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "-n", nft, "-c", "-f", bad).CombinedOutput(); err == nil {
		t.Fatalf("nft accepted a broken ruleset: %s", out)
	}
}

func TestNftRulesetPolicy(t *testing.T) {
	b, err := os.ReadFile("nftables/cordon.nft")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"type filter hook forward priority filter; policy drop;",
		"type filter hook input priority filter; policy drop;",
		"ip daddr $GATEWAY_CAMERA_IP udp dport 53",
		"ip daddr $GATEWAY_CAMERA_IP tcp dport 53",
		"ip daddr $GATEWAY_CAMERA_IP udp dport 123",
		"ip saddr $MONITORING_NET tcp dport 9464",
		"tcp dport 8080", "tcp dport 8554", "udp dport 8189", "tcp dport 8189",
		`log prefix "cordon drop camera: "`,
		"define CAMERA_IF", "define CAMERA_NET", "define GATEWAY_CAMERA_IP", "define OPERATOR_IF",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
}

// unitDirectives parses a systemd unit into section.key -> values.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		out[section+"."+k] = append(out[section+"."+k], v)
	}
	return out
}

func TestSystemdUnitHardening(t *testing.T) {
	d := unitDirectives(t, "systemd/cordon.service")
	want := map[string]string{
		"Service.User":                       "cordon",
		"Service.ProtectSystem":              "strict",
		"Service.ProtectHome":                "yes",
		"Service.PrivateTmp":                 "yes",
		"Service.NoNewPrivileges":            "yes",
		"Service.CapabilityBoundingSet":      "CAP_NET_BIND_SERVICE",
		"Service.AmbientCapabilities":        "CAP_NET_BIND_SERVICE",
		"Service.RestrictAddressFamilies":    "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"Service.StateDirectory":             "cordon",
		"Service.StateDirectoryMode":         "0700",
		"Service.LogsDirectory":              "cordon",
		"Service.MemoryDenyWriteExecute":     "yes",
		"Service.ExecReload":                 "/bin/kill -HUP $MAINPID",
		"Service.ExecStart":                  "/usr/local/bin/cordon serve --config /etc/cordon/cordon.yaml",
		"Install.WantedBy":                   "multi-user.target",
		"Service.SystemCallArchitectures":    "native",
		"Service.RestrictNamespaces":         "yes",
		"Service.ProtectKernelTunables":      "yes",
		"Service.UMask":                      "0077",
		"Service.ConfigurationDirectoryMode": "0750",
	}
	for k, v := range want {
		got := d[k]
		if len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("%s = %v, want %q", k, got, v)
		}
	}
	if f := d["Service.SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter = %v, want @system-service first", f)
	}
}

func TestSystemdUnitVerify(t *testing.T) {
	sa := testtool.Require(t, "systemd-analyze")
	// verify wants the executables to exist: check a copy that points at
	// /bin/true, which is enough to validate every directive.
	b, err := os.ReadFile("systemd/cordon.service")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "cordon.service")
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/cordon", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", tmp).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Unknown key") || strings.Contains(string(out), "Failed to parse") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerfileSanity: no Docker engine here, so the Dockerfile is only
// parsed: a build stage on golang:1.26 with a static CGO_ENABLED=0 build,
// and a distroless/scratch final stage running as a non-root user.
func TestDockerfileSanity(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	type stage struct {
		from string
		user string
		body []string
	}
	var stages []*stage
	// Join continuation lines first.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			stages = append(stages, &stage{from: strings.TrimSpace(rest)})
			continue
		case "USER":
			if len(stages) > 0 {
				stages[len(stages)-1].user = strings.TrimSpace(rest)
			}
		}
		if len(stages) == 0 && strings.ToUpper(instr) != "ARG" {
			t.Fatalf("instruction before FROM: %q", line)
		}
		if len(stages) > 0 {
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:1.26") || !strings.HasSuffix(build.from, " AS build") {
		t.Errorf("build stage FROM %q, want golang:1.26 AS build", build.from)
	}
	if !strings.Contains(strings.Join(build.body, "\n"), "CGO_ENABLED=0") {
		t.Error("build is not static (CGO_ENABLED=0)")
	}
	if !strings.Contains(final.from, "distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %q, want distroless/static or scratch", final.from)
	}
	uid, _, _ := strings.Cut(final.user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage USER %q, want non-root", final.user)
	}
	if uid != "65532" {
		t.Errorf("final stage USER %q, want 65532", final.user)
	}
	joined := strings.Join(final.body, "\n")
	for _, want := range []string{"COPY --from=build /out/cordon", "ENTRYPOINT"} {
		if !strings.Contains(joined, want) {
			t.Errorf("final stage lacks %q", want)
		}
	}
}
