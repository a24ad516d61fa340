package audit

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/internal/testtool"
	"cordon/internal/testtool/rsyslog"
)

// forwardedLog is a signed log whose lines carry node (unique per test,
// so the shared collector's file can be split by test).
func forwardedLog(t *testing.T, dir, node string, maxSize int64) *Log {
	t.Helper()
	l := &Log{Path: filepath.Join(dir, "audit.log"), MaxSizeBytes: maxSize, Logger: quietLogger(), Node: node,
		KeyPath: filepath.Join(dir, "audit-signing.key")}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func startForwarder(t *testing.T, l *Log, url, cursor string, m *ForwardMetrics) *Forwarder {
	t.Helper()
	f := &Forwarder{Log: l, URL: url, CursorPath: cursor, Logger: quietLogger(), Metrics: m, RetryMax: 500 * time.Millisecond}
	if err := f.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func appendTagged(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := range n {
		if err := l.Append(Event{Event: ViewStart, Actor: "op" + strconv.Itoa(from+i), Camera: "gate-north", Remote: "10.0.0.1", Protocol: "rtsp"}); err != nil {
			t.Fatal(err)
		}
	}
}

var syslogRe = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) cordon - (\S+) \[meta sequenceId="(\d+)"\] (\{.*\})$`)

type delivery struct {
	seqs       []uint64          // in arrival order, duplicates included
	byseq      map[uint64]string // the audit line carried
	duplicates int
}

// parseDeliveries checks every message's RFC 5424 shape and collects the
// audit lines it carried.
func parseDeliveries(t *testing.T, msgs []string) delivery {
	t.Helper()
	d := delivery{byseq: map[uint64]string{}}
	for _, m := range msgs {
		g := syslogRe.FindStringSubmatch(m)
		if g == nil {
			t.Fatalf("not an RFC 5424 message from cordon: %q", m)
		}
		rec, err := parseLine([]byte(g[6]))
		if err != nil {
			t.Fatalf("message carries a bad audit line: %v", err)
		}
		sid, _ := strconv.ParseUint(g[5], 10, 64)
		if g[1] != strconv.Itoa(13*8+6) || g[2] != rec.Time || g[3] != *rec.Node || g[4] != rec.Event || sid != rec.Seq {
			t.Fatalf("header does not match the line: %q", m)
		}
		if prev, dup := d.byseq[rec.Seq]; dup {
			if prev != g[6] {
				t.Fatalf("seq %d delivered twice with different content", rec.Seq)
			}
			d.duplicates++
		}
		d.byseq[rec.Seq] = g[6]
		d.seqs = append(d.seqs, rec.Seq)
	}
	return d
}

// inOrder: every message is either the next new line or a re-send of
// one already delivered (at-least-once, in order).
func (d delivery) inOrder() bool {
	var high uint64
	for _, s := range d.seqs {
		switch {
		case s == high+1:
			high = s
		case s > high+1:
			return false
		}
	}
	return true
}

func hasAll(n uint64) func([]string) bool {
	return func(msgs []string) bool {
		seen := map[string]bool{}
		for _, m := range msgs {
			if g := syslogRe.FindStringSubmatch(m); g != nil {
				seen[g[5]] = true
			}
		}
		for s := uint64(1); s <= n; s++ {
			if !seen[strconv.FormatUint(s, 10)] {
				return false
			}
		}
		return true
	}
}

// verifyCollectorCopy writes the collector's lines (one per seq, in
// order) to a file and checks it as an audit chain with the log's key:
// the copy off the box is complete, byte-exact and signed.
func verifyCollectorCopy(t *testing.T, d delivery, n uint64, pubkey string) {
	t.Helper()
	var b strings.Builder
	for s := uint64(1); s <= n; s++ {
		b.WriteString(d.byseq[s] + "\n")
	}
	p := filepath.Join(t.TempDir(), "collected.log")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := VerifyFileWith(p, VerifyOptions{PublicKey: pubkey}); err != nil || res.LastSeq != n {
		t.Fatalf("collector's copy: %+v %v", res, err)
	}
}

// The collector restarts in the middle: lines written while it is away
// arrive later, in order, none lost (duplicates allowed, seq marks them);
// the lag metric shows the backlog and returns to 0.
func TestForwardTCPAcrossCollectorRestart(t *testing.T) {
	c := needCollector(t)
	dir := t.TempDir()
	node := uniqueNode("fwd-tcp-restart")
	l := forwardedLog(t, dir, node, 0)
	m := NewForwardMetrics(nil)
	f := startForwarder(t, l, fmt.Sprintf("tcp://127.0.0.1:%d", c.TCP), filepath.Join(dir, "forward.cursor"), m)
	appendTagged(t, l, 0, 20)
	c.WaitFor(t, node, 20*time.Second, hasAll(20))

	c.Stop()
	t.Cleanup(func() { _ = c.EnsureRunning() }) // the other tests share it
	appendTagged(t, l, 20, 30)                  // written while the collector is away
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool {
		return testutil.ToFloat64(m.Connected) == 0 && testutil.ToFloat64(m.Lag) >= 30
	})
	if secs := testutil.ToFloat64(m.LagSeconds); secs <= 0 {
		t.Fatalf("lag seconds %v", secs)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	appendTagged(t, l, 50, 10)
	msgs := c.WaitFor(t, node, 30*time.Second, hasAll(60))
	d := parseDeliveries(t, msgs)
	if !d.inOrder() {
		t.Fatalf("out of order: %v", d.seqs)
	}
	lost := 0
	for s := uint64(1); s <= 60; s++ {
		if _, ok := d.byseq[s]; !ok {
			lost++
		}
	}
	t.Logf("collector restart: 60 lines, %d lost, %d delivered twice", lost, d.duplicates)
	verifyCollectorCopy(t, d, 60, l.PublicKey())
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool { return f.Delivered() == 60 && testutil.ToFloat64(m.Lag) == 0 })
	if testutil.ToFloat64(m.LagSeconds) != 0 || testutil.ToFloat64(m.Sent) < 60 {
		t.Fatalf("metrics after catching up: %v %v", testutil.ToFloat64(m.LagSeconds), testutil.ToFloat64(m.Sent))
	}
}

// Lines written while the collector is away survive a restart of cordon
// itself: the audit files are the queue and the cursor says where to
// resume.
func TestForwardAcrossGatewayRestart(t *testing.T) {
	c := needCollector(t)
	dir := t.TempDir()
	node := uniqueNode("fwd-gw-restart")
	cursor := filepath.Join(dir, "forward.cursor")
	url := fmt.Sprintf("tcp://127.0.0.1:%d", c.TCP)
	l := forwardedLog(t, dir, node, 900) // rotates on the way
	f := startForwarder(t, l, url, cursor, nil)
	appendTagged(t, l, 0, 10)
	c.WaitFor(t, node, 20*time.Second, hasAll(10))
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool { return f.Delivered() == 10 })
	f.Close()
	// cordon is down for forwarding; the log goes on (as across a crash)
	appendTagged(t, l, 10, 15)
	l.Close()
	if b, _ := os.ReadFile(cursor); strings.TrimSpace(string(b)) != "10" {
		t.Fatalf("cursor %q", b)
	}
	l2 := forwardedLog(t, dir, node, 900)
	f2 := startForwarder(t, l2, url, cursor, nil)
	appendTagged(t, l2, 25, 5)
	d := parseDeliveries(t, c.WaitFor(t, node, 20*time.Second, hasAll(30)))
	if !d.inOrder() || d.duplicates > 0 {
		t.Fatalf("order %v, %d duplicates", d.seqs, d.duplicates)
	}
	if len(rotatedFiles(l2.Path)) == 0 {
		t.Fatal("the log did not rotate: the test does not cover reading across files")
	}
	verifyCollectorCopy(t, d, 30, l2.PublicKey())
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool { return f2.Delivered() == 30 })
	// The README's recipe (one file per gateway, the message alone) gives a
	// file `cordon audit verify` accepts as it is.
	if res, err := VerifyFileWith(c.NodeFile(node), VerifyOptions{PublicKey: l2.PublicKey()}); err != nil || res.LastSeq != 30 {
		t.Fatalf("the collector's per-gateway file: %+v %v", res, err)
	}
}

// RFC 5425: TLS with the collector's CA and a client certificate; a
// forwarder that cannot authenticate delivers nothing and keeps the lines.
func TestForwardTLS(t *testing.T) {
	c := needCollector(t)
	dir := t.TempDir()
	node := uniqueNode("fwd-tls")
	l := forwardedLog(t, dir, node, 0)
	cfg, err := ForwardTLSConfig(c.CA, c.Cert, c.Key, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("tcp+tls://127.0.0.1:%d", c.TLS)
	// Without the client certificate the collector refuses the session.
	noCert, _ := ForwardTLSConfig(c.CA, "", "", "127.0.0.1")
	m := NewForwardMetrics(nil)
	bad := &Forwarder{Log: l, URL: url, TLSConfig: noCert, CursorPath: filepath.Join(dir, "bad.cursor"), Logger: quietLogger(), Metrics: m}
	if err := bad.Initialize(); err != nil {
		t.Fatal(err)
	}
	appendTagged(t, l, 0, 5)
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool { return testutil.ToFloat64(m.Errors) >= 1 })
	bad.Close()
	if bad.Delivered() != 0 {
		t.Fatalf("delivered %d without a client certificate", bad.Delivered())
	}
	// A collector whose certificate another CA signed is refused.
	other, err := rsyslog.WriteCertificates(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wrongCA, _ := ForwardTLSConfig(other.CA, c.Cert, c.Key, "127.0.0.1")
	m2 := NewForwardMetrics(nil)
	wrong := &Forwarder{Log: l, URL: url, TLSConfig: wrongCA, CursorPath: filepath.Join(dir, "wrong.cursor"), Logger: quietLogger(), Metrics: m2}
	if err := wrong.Initialize(); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool { return testutil.ToFloat64(m2.Errors) >= 1 })
	wrong.Close()
	if wrong.Delivered() != 0 || testutil.ToFloat64(m2.Sent) != 0 {
		t.Fatal("sent to a collector the CA does not vouch for")
	}
	if _, err := ForwardTLSConfig(filepath.Join(dir, "no-such-ca.pem"), "", "", "127.0.0.1"); err == nil {
		t.Fatal("missing CA file accepted")
	}
	if _, err := ForwardTLSConfig(c.CA, c.Cert, "", "127.0.0.1"); err == nil {
		t.Fatal("certificate without key accepted")
	}
	f := &Forwarder{Log: l, URL: url, TLSConfig: cfg, CursorPath: filepath.Join(dir, "forward.cursor"), Logger: quietLogger()}
	if err := f.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	appendTagged(t, l, 5, 5)
	d := parseDeliveries(t, c.WaitFor(t, node, 20*time.Second, hasAll(10)))
	if !d.inOrder() {
		t.Fatalf("order %v", d.seqs)
	}
	verifyCollectorCopy(t, d, 10, l.PublicKey())
}

func TestForwardUDP(t *testing.T) {
	c := needCollector(t)
	dir := t.TempDir()
	node := uniqueNode("fwd-udp")
	l := forwardedLog(t, dir, node, 0)
	f := startForwarder(t, l, fmt.Sprintf("udp://127.0.0.1:%d", c.UDP), filepath.Join(dir, "forward.cursor"), nil)
	appendTagged(t, l, 0, 10)
	d := parseDeliveries(t, c.WaitFor(t, node, 20*time.Second, hasAll(10)))
	if !d.inOrder() {
		t.Fatalf("order %v", d.seqs)
	}
	testtool.WaitFor(t, 5*time.Second, "the forwarder's state", func() bool { return f.Delivered() == 10 })
}

// Retention deletes only what the collector has: with keep_files 1 and
// a backlog, files stay until forwarded, then go.
func TestForwardLetsRetentionDeleteDeliveredFiles(t *testing.T) {
	c := needCollector(t)
	dir := t.TempDir()
	node := uniqueNode("fwd-retention")
	l := forwardedLog(t, dir, node, 700)
	l.KeepFiles = 1
	l.WaitForForwarding = true
	appendTagged(t, l, 0, 20) // nobody forwards yet: nothing may go
	before := len(rotatedFiles(l.Path))
	if before < 3 {
		t.Fatalf("%d rotated files", before)
	}
	f := startForwarder(t, l, fmt.Sprintf("tcp://127.0.0.1:%d", c.TCP), filepath.Join(dir, "forward.cursor"), nil)
	c.WaitFor(t, node, 20*time.Second, hasAll(20))
	testtool.WaitFor(t, 10*time.Second, "the forwarder's state", func() bool { return f.Delivered() == 20 && len(rotatedFiles(l.Path)) == 1 })
	if _, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()}); err != nil {
		t.Fatal(err)
	}
}

func TestForwardConfigErrors(t *testing.T) {
	l := newLog(t, filepath.Join(t.TempDir(), "audit.log"), 0)
	for _, f := range []*Forwarder{
		{URL: "tcp://x:1", CursorPath: "c"},
		{Log: l, URL: "tcp://x:1"},
		{Log: l, URL: "http://x:1", CursorPath: "c"},
		{Log: l, URL: "tcp://x:1", CursorPath: "c", ConfirmAfter: -1},
	} {
		if err := f.Initialize(); err == nil {
			f.Close()
			t.Errorf("accepted %+v", f)
		}
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	if err := os.WriteFile(cur, []byte("ten\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (&Forwarder{Log: l, URL: "tcp://x:1", CursorPath: cur}).Initialize(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged cursor: %v", err)
	}
	for in, want := range map[string]string{
		"tcp+tls://syslog.example": "syslog.example:6514",
		"tcp://10.0.0.5":           "10.0.0.5:514",
		"udp://[2001:db8::1]:1514": "[2001:db8::1]:1514",
	} {
		if got, err := ParseForwardURL(in); err != nil || got.Addr != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "tls://h:1", "tcp://", "tcp://h:0", "tcp://h:99999", "tcp://u:p@h:1", "tcp://h:1/x", "tcp://h:1?q"} {
		if _, err := ParseForwardURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The reader follows the live file across rotations while lines are being
// appended, and never returns a line beyond the acknowledged head.
func TestLineReaderFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	l := forwardedLog(t, dir, "reader", 600)
	rd, err := openLineReader(l.Path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.close()
	var got []uint64
	for i := range 40 {
		appendTagged(t, l, i, 1)
		head, _ := l.Head()
		for {
			_, rec, ok, err := rd.next(head)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, rec.Seq)
		}
	}
	if len(got) != 40 || got[0] != 1 || got[39] != 40 || len(rotatedFiles(l.Path)) < 5 {
		t.Fatalf("read %v across %d rotations", got, len(rotatedFiles(l.Path)))
	}
	// Positioned in the middle of the rotated files.
	rd2, err := openLineReader(l.Path, 17)
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.close()
	if _, rec, ok, _ := rd2.next(40); !ok || rec.Seq != 17 {
		t.Fatalf("positioned read: %d %v", rec.Seq, ok)
	}
	// A line on disk beyond the given head is held back.
	if _, rec, ok, _ := rd2.next(17); ok {
		t.Fatalf("returned seq %d beyond head 17", rec.Seq)
	}
	if _, rec, ok, _ := rd2.next(18); !ok || rec.Seq != 18 {
		t.Fatalf("held line: %d %v", rec.Seq, ok)
	}
}

var nodeCounter atomic.Int64

// uniqueNode names a test's log uniquely in the shared collector's file
// (tests may run with -count > 1).
func uniqueNode(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nodeCounter.Add(1))
}

// The reader races a writer that rotates at every line: it must never
// skip a file (nor report a gap), whatever the interleaving.
func TestLineReaderRacesRotation(t *testing.T) {
	dir := t.TempDir()
	l := forwardedLog(t, dir, "race", 300) // every line rotates
	const n = 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if err := l.Append(Event{Event: ViewStart, Actor: "op" + strconv.Itoa(i)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	rd, err := openLineReader(l.Path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.close()
	var want uint64 = 1
	for want <= n {
		changed := l.Changed()
		head, _ := l.Head()
		for {
			_, rec, ok, err := rd.next(head)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if rec.Seq != want {
				t.Fatalf("read seq %d, want %d", rec.Seq, want)
			}
			want++
		}
		if rd.gap != 0 {
			t.Fatalf("gap of %d lines reported", rd.gap)
		}
		if want > n {
			break
		}
		select {
		case <-changed:
		case <-done:
		}
	}
	<-done
}

// A backlog goes out in batches, the cursor advancing between them: the
// forwarder never has more than maxPending lines (plus the batch being
// written) out unconfirmed, so a long backlog neither waits for its last
// line to confirm its first nor piles up in memory.
func TestForwardBacklogInBatches(t *testing.T) {
	dir := t.TempDir()
	l := forwardedLog(t, dir, uniqueNode("batches"), 0)
	const backlog = 300
	appendTagged(t, l, 0, backlog)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() { // a collector that reads everything
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	m := NewForwardMetrics(nil)
	f := &Forwarder{Log: l, URL: "tcp://" + ln.Addr().String(), CursorPath: filepath.Join(dir, "cursor"), Logger: quietLogger(), Metrics: m,
		ConfirmAfter: 200 * time.Millisecond, batchLines: 10, batchBytes: 1 << 20, maxPending: 30}
	if err := f.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const bound = 30 + 10
	steps := map[uint64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for f.Delivered() < backlog {
		sent := uint64(testutil.ToFloat64(m.Sent)) // read before Delivered: sent-delivered can only be overstated
		delivered := f.Delivered()
		if sent > delivered+bound {
			t.Fatalf("%d lines sent while %d were confirmed: more than %d unconfirmed", sent, delivered, bound)
		}
		steps[delivered] = true
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d", f.Delivered(), backlog)
		}
		time.Sleep(time.Millisecond) // sampling the forwarder's progress: there is nothing to wait on
	}
	if len(steps) < backlog/bound {
		t.Fatalf("the cursor moved in %d steps", len(steps))
	}
}
