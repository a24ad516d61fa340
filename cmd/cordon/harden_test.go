package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cordon/democam"
	"cordon/internal/testtool/testca"
)

const hardenPass = "Adm1n-Cam-Pass"

func startVendorAPI(t *testing.T, v *democam.VendorAPI, host string) *democam.VendorAPI {
	t.Helper()
	v.Listen, v.Username, v.Password = host+":0", "admin", hardenPass
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// hardenConfig writes a config with the given cameras (id -> admin URL).
func hardenConfig(t *testing.T, cameraNetwork string, cams ...[2]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("state_dir: " + filepath.Join(t.TempDir(), "state") + "\n")
	b.WriteString("auth:\n  users:\n    - name: alice\n      password_hash: \"$argon2id$v=19$m=65536,t=3,p=2$Y29yZG9uLWV4YW1wbGUtcw$AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o\"\n      cameras: [\"*\"]\n")
	b.WriteString("camera_network:\n" + cameraNetwork + "cameras:\n")
	for _, c := range cams {
		host, _, _ := net.SplitHostPort(strings.TrimPrefix(c[1], "http://"))
		fmt.Fprintf(&b, "  - id: %s\n    url: rtsp://%s:554/stream\n    admin_url: %s\n    username: admin\n    password: %q\n",
			c[0], host, c[1], hardenPass)
	}
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	writeFile(t, path, b.String())
	return path
}

const hardenNet = "  dns_listen: \"127.0.0.1:53\"\n  ntp_listen: \"127.0.0.1:10123\"\n"

// row matches one table line: camera, setting, want, have, status.
func row(out, camera, setting, want, have, status string) bool {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(camera) + `\s+` + regexp.QuoteMeta(setting) + `\s+` +
		regexp.QuoteMeta(want) + `\s+` + regexp.QuoteMeta(have) + `\s+` + regexp.QuoteMeta(status) + `\s*$`)
	return re.MatchString(out)
}

func TestHardenDryApplyDry(t *testing.T) {
	hik := startVendorAPI(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.71")
	dah := startVendorAPI(t, &democam.VendorAPI{Vendor: democam.VendorDahua}, "127.0.0.72")
	cfg := hardenConfig(t, hardenNet, [2]string{"gate-north", hik.URL()}, [2]string{"yard", dah.URL()})

	out, errOut, code := run(t, "", "harden", "--config", cfg)
	if code != 1 {
		t.Fatalf("dry run on factory cameras: exit %d\n%s%s", code, out, errOut)
	}
	for _, r := range [][5]string{
		{"gate-north", "cloud.hik-connect", "off", "on", "drift"},
		{"gate-north", "ntp", "127.0.0.1:10123", "time.windows.com:123", "drift"},
		{"gate-north", "dns", "127.0.0.1", "8.8.8.8, 8.8.4.4", "drift"},
		{"gate-north", "gateway", "none", "127.255.255.254", "drift"},
		{"gate-north", "bonjour", "off", "absent", "absent"},
		{"yard", "cloud.easy4ip", "off", "on", "drift"},
		{"yard", "cloud.paas", "off", "on", "drift"},
		{"yard", "ftp", "off", "off", "ok"},
	} {
		if !row(out, r[0], r[1], r[2], r[3], r[4]) {
			t.Errorf("no row %v in:\n%s", r, out)
		}
	}
	if !strings.HasPrefix(out, "CAMERA") || !strings.Contains(out, "0 of 2 cameras as wanted") {
		t.Fatalf("table:\n%s", out)
	}
	if hik.Setting("EZVIZ.enabled") != "true" || len(hik.Requests()) == 0 {
		t.Fatal("a dry run changed the camera, or never asked it")
	}
	for _, r := range hik.Requests() {
		if strings.HasPrefix(r, "PUT") {
			t.Fatalf("dry run wrote: %s", r)
		}
	}

	out, _, code = run(t, "", "harden", "--config", cfg, "--apply")
	if code != 0 || !row(out, "gate-north", "cloud.hik-connect", "off", "off", "set") ||
		!row(out, "yard", "ntp", "127.0.0.1:10123", "127.0.0.1:10123", "set") || !strings.Contains(out, "2 of 2 cameras as wanted") {
		t.Fatalf("--apply: exit %d\n%s", code, out)
	}
	out, _, code = run(t, "", "harden", "--config", cfg)
	if code != 0 || !row(out, "yard", "cloud.easy4ip", "off", "off", "ok") || strings.Contains(out, "drift") {
		t.Fatalf("second dry run: exit %d\n%s", code, out)
	}
	hik.FactoryReset()
	out, _, code = run(t, "", "harden", "--config", cfg, "--camera", "gate-north")
	if code != 1 || !row(out, "gate-north", "upnp", "off", "on", "drift") || strings.Contains(out, "yard") {
		t.Fatalf("--camera after a factory reset: exit %d\n%s", code, out)
	}
	if hik.Reboots() != 0 || dah.Reboots() != 0 {
		t.Fatal("a camera was rebooted without --reboot")
	}
}

func TestHardenNeedsReboot(t *testing.T) {
	dah := startVendorAPI(t, &democam.VendorAPI{Vendor: democam.VendorDahua, NeedsReboot: true, CGIDisabled: true,
		RebootDowntime: time.Second}, "127.0.0.73")
	cfg := hardenConfig(t, hardenNet, [2]string{"yard", dah.URL()})
	out, _, code := run(t, "", "harden", "--config", cfg, "--apply")
	if code != 1 || !row(out, "yard", "cloud.easy4ip", "off", "on", "needs reboot") || !strings.Contains(out, "run with --reboot") {
		t.Fatalf("--apply on a camera needing a reboot: exit %d\n%s", code, out)
	}
	if dah.Reboots() != 0 {
		t.Fatal("rebooted without --reboot")
	}
	out, _, code = run(t, "", "harden", "--config", cfg, "--apply", "--reboot")
	if code != 0 || !row(out, "yard", "cloud.easy4ip", "off", "off", "set") || !strings.Contains(out, "rebooted by cordon") || dah.Reboots() != 1 {
		t.Fatalf("--apply --reboot: exit %d, %d reboots\n%s", code, dah.Reboots(), out)
	}
	if _, errOut, code := run(t, "", "harden", "--config", cfg, "--reboot"); code != 1 || !strings.Contains(errOut, "--reboot needs --apply") {
		t.Fatalf("--reboot alone: %d %s", code, errOut)
	}
}

func TestHardenHostileAndConfigErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.74:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.75:80/", http.StatusFound)
	}), ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	cfg := hardenConfig(t, hardenNet, [2]string{"evil", "http://" + ln.Addr().String()})
	out, errOut, code := run(t, "", "harden", "--config", cfg, "--apply")
	if code != 1 || !row(out, "evil", "-", "-", "-", "error") ||
		!strings.Contains(out, "camera evil: GET /ISAPI/System/deviceInfo: camera answered with a redirect, which cordon never follows") {
		t.Fatalf("redirecting camera: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, hardenPass) {
		t.Fatal("camera password in the output")
	}

	cfg = hardenConfig(t, "  ntp_listen: \":123\"\n", [2]string{"cam", "http://127.0.0.76:80"})
	out, _, code = run(t, "", "harden", "--config", cfg)
	if code != 1 || !strings.HasPrefix(out, "camera_network.ntp_listen: ") {
		t.Fatalf("unusable ntp_listen: exit %d %q", code, out)
	}
	if _, errOut, code := run(t, "", "harden", "--config", hardenConfig(t, hardenNet, [2]string{"cam", "http://127.0.0.76:80"}),
		"--camera", "other"); code != 1 || !strings.Contains(errOut, `no camera "other"`) {
		t.Fatalf("unknown --camera: %d %s", code, errOut)
	}
}

// hardenConfigRaw writes a config whose cameras are given as YAML lines.
func hardenConfigRaw(t *testing.T, cameras string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("state_dir: " + filepath.Join(t.TempDir(), "state") + "\n")
	b.WriteString("auth:\n  users:\n    - name: alice\n      password_hash: \"$argon2id$v=19$m=65536,t=3,p=2$Y29yZG9uLWV4YW1wbGUtcw$AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o\"\n      cameras: [\"*\"]\n")
	b.WriteString("camera_network:\n" + hardenNet + "cameras:\n" + cameras)
	path := filepath.Join(t.TempDir(), "cordon.yaml")
	writeFile(t, path, b.String())
	return path
}

// An admin_url on another host than url: `cordon check` warns, and harden
// sends the camera's credentials there only with admin_other_host: true.
func TestHardenAdminOtherHost(t *testing.T) {
	hik := startVendorAPI(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.77")
	cam := fmt.Sprintf("  - id: gate\n    url: rtsp://127.0.0.78:554/stream\n    admin_url: %s\n    username: admin\n    password: %q\n",
		hik.URL(), hardenPass)
	cfg := hardenConfigRaw(t, cam)
	out, _, code := run(t, "", "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "warning: cameras[0].admin_url: names another host than url") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	out, _, code = run(t, "", "harden", "--config", cfg, "--apply")
	if code != 1 || !row(out, "gate", "-", "-", "-", "error") ||
		!strings.Contains(out, "camera gate: admin_url names another host than url: the camera's credentials are not sent there") {
		t.Fatalf("harden to another host: exit %d\n%s", code, out)
	}
	if n := len(hik.Requests()); n != 0 {
		t.Fatalf("%d authenticated requests reached the other host", n)
	}

	cfg = hardenConfigRaw(t, cam+"    admin_other_host: true\n")
	out, _, code = run(t, "", "check", "--config", cfg)
	if code != 0 || strings.Contains(out, "warning: cameras[0].admin_url") {
		t.Fatalf("check with admin_other_host: exit %d\n%s", code, out)
	}
	out, _, code = run(t, "", "harden", "--config", cfg, "--apply")
	if code != 0 || !row(out, "gate", "cloud.hik-connect", "off", "off", "set") {
		t.Fatalf("harden with admin_other_host: exit %d\n%s", code, out)
	}
}

// A Basic-only https camera is hardened when admin_cert_sha256 pins its
// certificate (and refused, naming the camera and the fix, without it).
func TestHardenBasicOnlyPinned(t *testing.T) {
	ca, err := testca.New(t.TempDir(), "cams")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("cam", "127.0.0.79")
	if err != nil {
		t.Fatal(err)
	}
	hik := startVendorAPI(t, &democam.VendorAPI{Vendor: democam.VendorHikvision, BasicOnly: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}}, "127.0.0.79")
	cam := fmt.Sprintf("  - id: dome\n    url: rtsp://127.0.0.79:554/stream\n    admin_url: %s\n    vendor: hikvision\n    username: admin\n    password: %q\n",
		hik.URL(), hardenPass)
	out, _, code := run(t, "", "harden", "--config", hardenConfigRaw(t, cam), "--apply")
	if code != 1 || !strings.Contains(out, "camera dome: ") || !strings.Contains(out, "admin_cert_sha256") || len(hik.Requests()) != 0 {
		t.Fatalf("unpinned Basic-only camera: exit %d, %d requests\n%s", code, len(hik.Requests()), out)
	}
	sum := sha256.Sum256(leaf.TLS.Certificate[0])
	out, _, code = run(t, "", "harden", "--config", hardenConfigRaw(t, cam+"    admin_cert_sha256: \""+hex.EncodeToString(sum[:])+"\"\n"), "--apply")
	if code != 0 || !row(out, "dome", "cloud.hik-connect", "off", "off", "set") {
		t.Fatalf("pinned Basic-only camera: exit %d\n%s", code, out)
	}
}
