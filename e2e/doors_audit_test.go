package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"cordon/auth/audit"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
	"cordon/internal/testtool/rsyslog"
)

// dwCollected reads the collector's per-gateway file (each line the audit
// line as written): the distinct lines by seq, and how many arrived twice.
func dwCollected(t *testing.T, c *rsyslog.Collector, node string) (bySeq map[uint64]string, dups int) {
	t.Helper()
	b, err := os.ReadFile(c.NodeFile(node))
	if err != nil {
		return map[uint64]string{}, 0
	}
	bySeq = map[uint64]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		l = strings.TrimSpace(l)
		var rec struct {
			Seq  uint64 `json:"seq"`
			Node string `json:"node"`
		}
		if l == "" || json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		if rec.Node != node {
			t.Errorf("a forwarded line carries node %q, want %q: %s", rec.Node, node, l)
		}
		if _, seen := bySeq[rec.Seq]; seen {
			dups++
			continue
		}
		bySeq[rec.Seq] = l
	}
	return bySeq, dups
}

// The audit trail leaves the box and cannot be rewritten: a real gateway
// with audit.forward sends every line (node id in each) to a real
// rsyslogd; lines written while rsyslogd is stopped arrive after it is
// back, none lost; the collector's copy verifies against the gateway's
// genesis key; `cordon audit verify FILE` with no flags, run where the
// gateway keeps its state, checks the signed chain against that key and
// refuses a log with a line deleted and the rest renumbered and re-hashed.
// (Function over 80 lines: one scenario whose steps build on each other, on one fixture.)
func TestDoorsAuditForwardedAndSigned(t *testing.T) {
	c, err := rsyslog.Start()
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("no rsyslog collector: %v", err))
	}
	t.Cleanup(c.Close)
	dir := t.TempDir()
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "bob", Password: "bob-pw-1"}}, nil)
	cfg.StateDir = filepath.Join(dir, "cordon-state") // the default state_dir, seen from dir
	cfg.Audit.Path = filepath.Join(dir, "audit.log")
	node := fmt.Sprintf("e2e-doors-%d", time.Now().UnixNano()%1_000_000_000)
	cfg.Cluster.NodeID = node
	cfg.Audit.Forward = fmt.Sprintf("tcp://127.0.0.1:%d", c.TCP)
	g := drStart(t, cfg, "")
	bin := drBuildCordon(t)

	lastSeq := func() uint64 {
		lines := drAudit(t, cfg.Audit.Path)
		seq, _ := lines[len(lines)-1].Fields["seq"].(float64)
		return uint64(seq)
	}
	logins := func(n int) {
		for range n {
			e2eutil.Login(t, g.Base, "bob", "bob-pw-1") // login_ok: one line each, never aggregated
		}
	}
	allArrived := func(within time.Duration) {
		t.Helper()
		want := lastSeq()
		e2eutil.WaitFor(t, within, fmt.Sprintf("seq 1..%d at the collector", want), func() bool {
			got, _ := dwCollected(t, c, node)
			for s := uint64(1); s <= want; s++ {
				if _, ok := got[s]; !ok {
					return false
				}
			}
			return true
		})
	}

	logins(5)
	allArrived(20 * time.Second)
	c.Stop()
	logins(10) // written while the collector is away
	e2eutil.WaitFor(t, 10*time.Second, "the forward lag to show the backlog", func() bool {
		lag, _ := coreMetric(t, g.MetricsAddr(), "cordon_audit_forward_lag")
		return lag >= 10
	})
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	logins(5)
	allArrived(60 * time.Second)
	want := lastSeq()
	got, dups := dwCollected(t, c, node)
	lost := 0
	for s := uint64(1); s <= want; s++ {
		if _, ok := got[s]; !ok {
			lost++
		}
	}
	t.Logf("forwarded across a restart of rsyslogd: %d lines, %d lost, %d delivered twice (seq de-duplicates)", want, lost, dups)
	if lost != 0 {
		t.Errorf("%d lines lost", lost)
	}
	e2eutil.WaitFor(t, 10*time.Second, "the forward lag back to 0", func() bool {
		lag, _ := coreMetric(t, g.MetricsAddr(), "cordon_audit_forward_lag")
		return lag == 0
	})

	// The collector's copy, de-duplicated, verifies against the genesis key.
	key, err := audit.ReadPublicKey(filepath.Join(cfg.StateDir, audit.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]uint64, 0, len(got))
	for s := range got {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var copyLog strings.Builder
	for _, s := range seqs {
		copyLog.WriteString(got[s] + "\n")
	}
	copyPath := filepath.Join(t.TempDir(), "collected.log")
	if err := os.WriteFile(copyPath, []byte(copyLog.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := audit.VerifyFileWith(copyPath, audit.VerifyOptions{PublicKey: key, RequireSigned: true}); err != nil || res.LastSeq < want {
		t.Fatalf("the collector's copy: %+v %v", res, err)
	}

	g.Stop()
	verify := func(file string) (int, string) {
		cmd := exec.Command(bin, "audit", "verify", file)
		cmd.Dir = dir
		for _, e := range os.Environ() { // the default state_dir: ./cordon-state
			if !strings.HasPrefix(e, "CORDON_") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	code, out := verify("audit.log")
	if code != 0 || !strings.Contains(out, "from the trusted key") {
		t.Fatalf("cordon audit verify audit.log (no flags) in the gateway's directory: exit %d\n%s", code, out)
	}
	t.Logf("cordon audit verify, no flags: %s", strings.TrimSpace(out))

	// the rewrite: delete a line, renumber, recompute the chain
	lines := strings.Split(strings.TrimSuffix(string(mustRead(t, cfg.Audit.Path)), "\n"), "\n")
	seqRe, prevRe := regexp.MustCompile(`"seq":\d+`), regexp.MustCompile(`"prev":"[0-9a-f]*"`)
	var forged []string
	victim := len(lines) / 2
	for i, l := range lines {
		if i == victim {
			continue
		}
		l = seqRe.ReplaceAllString(l, fmt.Sprintf(`"seq":%d`, len(forged)+1))
		prev := ""
		if len(forged) > 0 {
			sum := sha256.Sum256([]byte(forged[len(forged)-1]))
			prev = hex.EncodeToString(sum[:])
		}
		forged = append(forged, prevRe.ReplaceAllString(l, `"prev":"`+prev+`"`))
	}
	if err := os.WriteFile(filepath.Join(dir, "forged.log"), []byte(strings.Join(forged, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := verify("forged.log"); code != 1 || !strings.Contains(out, "BROKEN") {
		t.Errorf("a log with line %d deleted, renumbered and re-hashed: exit %d %q, want exit 1 naming the line", victim+1, code, out)
	}
}
