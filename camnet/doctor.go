package camnet

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is a doctor check's outcome.
type Status string

// Check outcomes. Only StatusFail makes RunDoctor report not-OK.
const (
	StatusPass Status = "pass"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// CheckResult is one doctor check.
type CheckResult struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// DoctorOptions configures RunDoctor. Every path is injectable so tests can
// use a fake /proc.
type DoctorOptions struct {
	// ProcRoot is the proc filesystem; "" = "/proc".
	ProcRoot string
	// CameraInterface is the interface facing the cameras (e.g. "eth1").
	CameraInterface string
	// CameraSubnet is the camera network; used to find the camera interface
	// from the routing table when CameraInterface is empty, and to spot a
	// default gateway inside it.
	CameraSubnet netip.Prefix
	// AuditPath is the audit log (config audit.path); "" skips the check.
	AuditPath string
	// StateDir is the state directory (config state_dir); "" skips the check.
	StateDir string
	// NftTable is the table that must be loaded; "" = "inet cordon".
	NftTable string
	// Command runs an external command and returns its combined output;
	// nil = os/exec. A missing binary must yield an error wrapping
	// exec.ErrNotFound.
	Command func(ctx context.Context, name string, args ...string) ([]byte, error)
	// ClockSynchronised reports the host clock state; nil = adjtimex, then
	// `timedatectl show` as a fallback.
	ClockSynchronised func() (bool, error)
	// Timeout bounds each external command; 0 = 5 s.
	Timeout time.Duration
}

// RunDoctor runs every host check and returns the results and whether none
// failed (warnings do not fail).
func RunDoctor(opts DoctorOptions) ([]CheckResult, bool) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.NftTable == "" {
		opts.NftTable = "inet cordon"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Command == nil {
		opts.Command = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	if opts.ClockSynchronised == nil {
		opts.ClockSynchronised = func() (bool, error) { return clockSynchronised(opts) }
	}
	results := []CheckResult{
		checkIPv4Forwarding(opts),
		checkIPv6Forwarding(opts),
		checkDefaultRoute(opts),
		checkNftables(opts),
		checkAuditPath(opts),
		checkClock(opts),
		checkStateDir(opts),
	}
	ok := true
	for _, r := range results {
		if r.Status == StatusFail {
			ok = false
		}
	}
	return results, ok
}

// PrintTable writes results as an aligned table.
func PrintTable(w io.Writer, results []CheckResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tDETAIL")
	for _, r := range results {
		detail := strings.Join(strings.Fields(r.Detail), " ") // one line per check
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(r.Status)), r.Name, detail)
	}
	return tw.Flush()
}

func readProcValue(opts DoctorOptions, rel string) (string, error) {
	b, err := os.ReadFile(filepath.Join(opts.ProcRoot, rel))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func checkIPv4Forwarding(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "ipv4_forwarding"}
	v, err := readProcValue(opts, "sys/net/ipv4/ip_forward")
	switch {
	case err != nil:
		r.Status, r.Detail = StatusFail, "cannot read net.ipv4.ip_forward: "+err.Error()
	case v == "0":
		r.Status, r.Detail = StatusPass, "net.ipv4.ip_forward = 0"
	default:
		r.Status, r.Detail = StatusFail, "net.ipv4.ip_forward = "+v+": the host routes packets; set it to 0 (the camera side must never be forwarded)"
	}
	return r
}

func checkIPv6Forwarding(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "ipv6_forwarding"}
	v, err := readProcValue(opts, "sys/net/ipv6/conf/all/forwarding")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status, r.Detail = StatusPass, "IPv6 is disabled"
	case err != nil:
		r.Status, r.Detail = StatusFail, "cannot read net.ipv6.conf.all.forwarding: "+err.Error()
	case v == "0":
		r.Status, r.Detail = StatusPass, "net.ipv6.conf.all.forwarding = 0"
	default:
		r.Status, r.Detail = StatusFail, "net.ipv6.conf.all.forwarding = "+v+": set it to 0"
	}
	return r
}

type route4 struct {
	iface         string
	dest, gateway netip.Addr
	mask          netip.Addr
}

// readRoutes4 parses /proc/net/route (addresses little-endian hex).
func readRoutes4(opts DoctorOptions) ([]route4, error) {
	f, err := os.Open(filepath.Join(opts.ProcRoot, "net/route"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []route4
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		d, err1 := procHexAddr(fl[1])
		g, err2 := procHexAddr(fl[2])
		m, err3 := procHexAddr(fl[7])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("net/route: bad line %q", sc.Text())
		}
		out = append(out, route4{iface: fl[0], dest: d, gateway: g, mask: m})
	}
	return out, sc.Err()
}

func procHexAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), nil
}

// readDefaultRoutes6 returns the interfaces of IPv6 default routes
// (/proc/net/ipv6_route: dest, plen, src, splen, next hop, metric, refcnt,
// use, flags, iface).
func readDefaultRoutes6(opts DoctorOptions) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(opts.ProcRoot, "net/ipv6_route"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fl := strings.Fields(line)
		if len(fl) < 10 {
			continue
		}
		if fl[0] == strings.Repeat("0", 32) && fl[1] == "00" && fl[9] != "lo" {
			out = append(out, fl[9])
		}
	}
	return out, nil
}

func checkDefaultRoute(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "default_route"}
	routes, err := readRoutes4(opts)
	if err != nil {
		r.Status, r.Detail = StatusFail, "cannot read the routing table: "+err.Error()
		return r
	}
	camIf := opts.CameraInterface
	if camIf == "" && opts.CameraSubnet.IsValid() {
		for _, rt := range routes {
			bits := maskBits(rt.mask)
			if bits > 0 && rt.dest.Is4() && netip.PrefixFrom(rt.dest, bits).Overlaps(opts.CameraSubnet) {
				camIf = rt.iface
				break
			}
		}
	}
	if camIf == "" {
		r.Status, r.Detail = StatusWarn, "camera interface unknown (give --camera-interface or --camera-subnet); default route not checked"
		return r
	}
	var defaults []string
	for _, rt := range routes {
		if rt.dest != netip.IPv4Unspecified() || rt.mask != netip.IPv4Unspecified() {
			continue
		}
		defaults = append(defaults, rt.iface+" via "+rt.gateway.String())
		if rt.iface == camIf || (opts.CameraSubnet.IsValid() && opts.CameraSubnet.Contains(rt.gateway)) {
			r.Status = StatusFail
			r.Detail = fmt.Sprintf("IPv4 default route via the camera side (%s via %s): remove it; cameras must have no way out", rt.iface, rt.gateway)
			return r
		}
	}
	v6, err := readDefaultRoutes6(opts)
	if err == nil {
		for _, ifc := range v6 {
			if ifc == camIf {
				r.Status, r.Detail = StatusFail, "IPv6 default route via the camera interface "+ifc+": remove it (or disable IPv6 there)"
				return r
			}
		}
	}
	r.Status = StatusPass
	if len(defaults) == 0 {
		r.Detail = "no IPv4 default route; camera interface " + camIf
	} else {
		r.Detail = "default route " + strings.Join(defaults, ", ") + "; camera interface " + camIf + " is not on it"
	}
	return r
}

func maskBits(m netip.Addr) int {
	b := m.As4()
	n := 0
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}

func checkNftables(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "nftables"}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	args := append([]string{"list", "table"}, strings.Fields(opts.NftTable)...)
	out, err := opts.Command(ctx, "nft", args...)
	switch {
	case errors.Is(err, exec.ErrNotFound):
		r.Status, r.Detail = StatusFail, "nft (nftables) is not installed; install it and load deploy/nftables/cordon.nft"
	case err != nil:
		msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if len(msg) > 200 {
			msg = msg[:200]
		}
		r.Status, r.Detail = StatusFail, fmt.Sprintf("table %s is not loaded (%v %s); load deploy/nftables/cordon.nft", opts.NftTable, err, msg)
	default:
		r.Status, r.Detail = StatusPass, "table "+opts.NftTable+" is loaded"
		if !strings.Contains(string(out), "policy drop") {
			r.Status, r.Detail = StatusWarn, "table "+opts.NftTable+" is loaded but has no chain with policy drop"
		}
	}
	return r
}

func checkAuditPath(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "audit_log"}
	if opts.AuditPath == "" {
		r.Status, r.Detail = StatusWarn, "no audit path given; not checked"
		return r
	}
	f, err := os.OpenFile(opts.AuditPath, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_ = f.Close()
		r.Status, r.Detail = StatusPass, opts.AuditPath+" is writable"
		return r
	}
	if !errors.Is(err, fs.ErrNotExist) {
		r.Status, r.Detail = StatusFail, opts.AuditPath+" is not writable: "+err.Error()
		return r
	}
	dir := filepath.Dir(opts.AuditPath)
	tf, err := os.CreateTemp(dir, ".cordon-doctor-*")
	if err != nil {
		r.Status, r.Detail = StatusFail, "cannot create "+opts.AuditPath+": directory "+dir+" is not writable: "+err.Error()
		return r
	}
	name := tf.Name()
	_ = tf.Close()
	_ = os.Remove(name)
	r.Status, r.Detail = StatusPass, opts.AuditPath+" does not exist yet; "+dir+" is writable"
	return r
}

func checkClock(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "clock_synchronised"}
	ok, err := opts.ClockSynchronised()
	switch {
	case err != nil:
		r.Status, r.Detail = StatusWarn, "cannot tell whether the clock is synchronised: "+err.Error()
	case ok:
		r.Status, r.Detail = StatusPass, "the kernel reports the clock synchronised"
	default:
		r.Status, r.Detail = StatusWarn, "the clock is not synchronised: cordon serves this clock to the cameras (NTP) and stamps the audit log with it; configure chrony or systemd-timesyncd towards an operator-side NTP server"
	}
	return r
}

func clockSynchronised(opts DoctorOptions) (bool, error) {
	ok, err := ClockSynchronised()
	if err == nil {
		return ok, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	out, err2 := opts.Command(ctx, "timedatectl", "show", "-p", "NTPSynchronized", "--value")
	if err2 != nil {
		return false, fmt.Errorf("adjtimex: %v; timedatectl: %v", err, err2)
	}
	return strings.TrimSpace(string(out)) == "yes", nil
}

func checkStateDir(opts DoctorOptions) CheckResult {
	r := CheckResult{Name: "state_dir"}
	if opts.StateDir == "" {
		r.Status, r.Detail = StatusWarn, "no state_dir given; not checked"
		return r
	}
	fi, err := os.Stat(opts.StateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status, r.Detail = StatusWarn, opts.StateDir+" does not exist yet; cordon creates it 0700 at start"
	case err != nil:
		r.Status, r.Detail = StatusFail, "cannot stat "+opts.StateDir+": "+err.Error()
	case !fi.IsDir():
		r.Status, r.Detail = StatusFail, opts.StateDir+" is not a directory"
	case fi.Mode().Perm()&0o077 != 0:
		r.Status, r.Detail = StatusFail, fmt.Sprintf("%s has mode %04o; it holds the signing key: chmod 0700", opts.StateDir, fi.Mode().Perm())
	default:
		r.Status, r.Detail = StatusPass, fmt.Sprintf("%s has mode %04o", opts.StateDir, fi.Mode().Perm())
	}
	return r
}
