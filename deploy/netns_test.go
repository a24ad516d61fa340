//go:build linux

package deploy

import (
	"cordon/internal/testtool"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"cordon/camnet"
)

// inNetns runs fn on an OS thread switched into the named network namespace
// (ip netns); sockets fn creates belong to that namespace for their whole
// life, so servers and clients of every side live in this one process.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: the thread stays locked and dies with this goroutine
		errc <- err
	}()
	return <-errc
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// greeter accepts TCP connections and writes a greeting, so that a client
// proves a full round trip.
type greeter struct {
	ln net.Listener
	wg sync.WaitGroup
}

func listenIn(t *testing.T, ns, addr string) *greeter {
	t.Helper()
	g := &greeter{}
	if err := inNetns(ns, func() (err error) {
		g.ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := g.ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello\n"))
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = g.ln.Close(); g.wg.Wait() })
	return g
}

// reach dials addr from ns and reads the greeting. nil = reachable.
func reach(ns, addr string, timeout time.Duration) error {
	var c net.Conn
	if err := inNetns(ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "hello\n" {
		return fmt.Errorf("unexpected greeting %q", b)
	}
	return nil
}

type path struct{ from, to string }

// reachAll tries every path concurrently; it returns the error per path.
func reachAll(paths []path, timeout time.Duration) map[path]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[path]error{}
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := reach(p.from, p.to, timeout)
			mu.Lock()
			out[p] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func dnsQuery(ns, proto, server, name string) (*dns.Msg, error) {
	var c net.Conn
	if err := inNetns(ns, func() (err error) {
		c, err = net.DialTimeout(proto, server, time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	co := &dns.Conn{Conn: c}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

func ntpQuery(ns, server string) ([]byte, error) {
	var c net.Conn
	if err := inNetns(ns, func() (err error) {
		c, err = net.Dial("udp", server)
		return err
	}); err != nil {
		return nil, err
	}
	defer c.Close()
	req := make([]byte, 48)
	req[0] = 4<<3 | 3
	copy(req[40:], "e2e-xmt!")
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 128)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	if n != 48 || buf[0]&7 != 4 || string(buf[24:32]) != "e2e-xmt!" {
		return nil, fmt.Errorf("bad NTP reply %x", buf[:n])
	}
	return buf[:n], nil
}

// rulesetFor rewrites the shipped ruleset's defines for the test topology.
func rulesetFor(t *testing.T, defines map[string]string) string {
	t.Helper()
	b, err := os.ReadFile("nftables/cordon.nft")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range defines {
		re := regexp.MustCompile(`(?m)^define ` + k + ` = .*$`)
		if !re.MatchString(s) {
			t.Fatalf("ruleset has no define %s", k)
		}
		s = re.ReplaceAllString(s, "define "+k+" = "+v)
	}
	p := filepath.Join(t.TempDir(), "cordon.nft")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCameraNetworkIsolation builds three network namespaces:
//
//	camera 192.0.2.12 --veth-- [cam0 192.0.2.1 | gateway | op0 198.51.100.1] --veth-- operator 198.51.100.2
//
// with forwarding switched ON in the gateway (worst case), checks that
// without the ruleset everything flows (so the test can fail), then loads
// deploy/nftables/cordon.nft into the gateway namespace and checks that the
// camera reaches the sinkhole (UDP and TCP) and NTP on the gateway's
// camera-side address and nothing else, that nothing is forwarded, that the
// gateway can still open RTSP connections to the camera, and that the
// operator side gets the published ports but not metrics.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestCameraNetworkIsolation(t *testing.T) {
	nft := testtool.Require(t, "nft")
	ipBin := testtool.Require(t, "ip")
	needRoot(t)

	id := os.Getpid() % 100000
	gw, cam, ops := fmt.Sprintf("cgw%d", id), fmt.Sprintf("ccam%d", id), fmt.Sprintf("cops%d", id)
	for _, ns := range []string{gw, cam, ops} {
		_ = exec.Command(ipBin, "netns", "del", ns).Run()
		run(t, ipBin, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command(ipBin, "netns", "del", ns).Run() })
		run(t, ipBin, "-n", ns, "link", "set", "lo", "up")
	}
	run(t, ipBin, "-n", gw, "link", "add", "cam0", "type", "veth", "peer", "name", "eth0", "netns", cam)
	run(t, ipBin, "-n", gw, "link", "add", "op0", "type", "veth", "peer", "name", "eth0", "netns", ops)
	run(t, ipBin, "-n", gw, "addr", "add", "192.0.2.1/24", "dev", "cam0")
	run(t, ipBin, "-n", gw, "addr", "add", "198.51.100.1/24", "dev", "op0")
	run(t, ipBin, "-n", cam, "addr", "add", "192.0.2.12/24", "dev", "eth0")
	run(t, ipBin, "-n", ops, "addr", "add", "198.51.100.2/24", "dev", "eth0")
	for _, l := range [][2]string{{gw, "cam0"}, {gw, "op0"}, {cam, "eth0"}, {ops, "eth0"}} {
		run(t, ipBin, "-n", l[0], "link", "set", l[1], "up")
	}
	run(t, ipBin, "-n", cam, "route", "add", "default", "via", "192.0.2.1")
	run(t, ipBin, "-n", ops, "route", "add", "192.0.2.0/24", "via", "198.51.100.1")
	run(t, ipBin, "netns", "exec", gw, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")

	// Servers: the camera-side services in the gateway namespace, plus
	// plain TCP greeters standing in for cordon's operator ports and for
	// the camera's RTSP and web server and an operator-side host.
	sink := &camnet.Sinkhole{Listen: "192.0.2.1:53"}
	sink.SetCameras(map[netip.Addr]string{netip.MustParseAddr("192.0.2.12"): "cam-e2e"})
	ntp := &camnet.NTPServer{Listen: "192.0.2.1:123"}
	if err := inNetns(gw, func() error {
		if err := sink.Initialize(); err != nil {
			return err
		}
		return ntp.Initialize()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	t.Cleanup(ntp.Close)
	for _, a := range []string{":8080", ":22", ":9464"} {
		listenIn(t, gw, a)
	}
	listenIn(t, cam, ":554")
	listenIn(t, cam, ":80")
	listenIn(t, ops, ":8080")

	const (
		gwCam   = "192.0.2.1"
		gwOp    = "198.51.100.1"
		camera  = "192.0.2.12"
		opsHost = "198.51.100.2"
	)
	hp := net.JoinHostPort
	blockedAfter := []path{
		{cam, hp(gwCam, "8080")},   // cordon's operator ports, via the camera side
		{cam, hp(gwCam, "22")},     // ssh from the camera side
		{cam, hp(gwCam, "9464")},   // metrics
		{cam, hp(gwOp, "8080")},    // the gateway's operator address
		{cam, hp(opsHost, "8080")}, // forwarded to the operator network
		{gw, hp(camera, "80")},     // the gateway to the camera's web UI
		{ops, hp(camera, "554")},   // forwarded to the camera network
		{ops, hp(gwOp, "9464")},    // metrics from outside MONITORING_NET
	}

	// Control: without the ruleset every path works, so the blocks below
	// come from the ruleset and nothing else.
	for p, err := range reachAll(blockedAfter, 2*time.Second) {
		if err != nil {
			t.Fatalf("control (no ruleset): %s -> %s: %v", p.from, p.to, err)
		}
	}

	rs := rulesetFor(t, map[string]string{
		"CAMERA_IF":         `"cam0"`,
		"CAMERA_NET":        "192.0.2.0/24",
		"GATEWAY_CAMERA_IP": gwCam,
		"OPERATOR_IF":       `"op0"`,
		"MONITORING_NET":    "{ 127.0.0.0/8, 203.0.113.0/24 }",
		"SSH_NET":           "{ 198.51.100.0/24 }",
	})
	for i := 0; i < 2; i++ { // loading twice: reload is idempotent
		run(t, ipBin, "netns", "exec", gw, nft, "-f", rs)
	}

	// Allowed.
	for _, proto := range []string{"udp", "tcp"} {
		r, err := dnsQuery(cam, proto, hp(gwCam, "53"), "litedev.hik-connect.com")
		if err != nil {
			t.Fatalf("camera DNS over %s to the gateway: %v", proto, err)
		}
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("camera DNS over %s: %v", proto, r)
		}
	}
	if _, err := ntpQuery(cam, hp(gwCam, "123")); err != nil {
		t.Fatalf("camera NTP to the gateway: %v", err)
	}
	allowed := []path{
		{gw, hp(camera, "554")}, // cordon's RTSP client to the camera
		{ops, hp(gwOp, "8080")}, // operators to the viewer
		{ops, hp(gwOp, "22")},   // ssh from SSH_NET
	}
	for p, err := range reachAll(allowed, 2*time.Second) {
		if err != nil {
			t.Errorf("allowed path %s -> %s blocked: %v", p.from, p.to, err)
		}
	}

	// Blocked.
	for p, err := range reachAll(blockedAfter, 500*time.Millisecond) {
		if err == nil {
			t.Errorf("path %s -> %s is open with the ruleset loaded", p.from, p.to)
		}
	}
	// The camera also cannot use another resolver or time server beyond the
	// gateway, even with forwarding on.
	if _, err := dnsQuery(cam, "tcp", hp(opsHost, "53"), "x.example"); err == nil {
		t.Error("camera reached a DNS server on the operator side")
	}

	// The sinkhole attributed the queries to the camera.
	var got camnet.CameraEgress
	for _, e := range sink.Report() {
		if e.Camera == "cam-e2e" {
			got = e
		}
	}
	if got.Queries != 2 || len(got.Vendors) != 1 || got.Vendors[0].Vendor != "hikvision_hikconnect" {
		t.Errorf("egress report for cam-e2e = %+v", got)
	}

	// The drop counters moved: the drops above were the ruleset's.
	out, err := exec.Command(ipBin, "netns", "exec", gw, nft, "list", "chain", "inet", "cordon", "camera_drop").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list chain: %v\n%s", err, out)
	}
	if regexp.MustCompile(`counter packets 0 `).Match(out) {
		t.Errorf("camera_drop counter did not move:\n%s", out)
	}
}
