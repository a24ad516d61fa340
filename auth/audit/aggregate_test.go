package audit

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cordon/internal/testtool"
)

func newAggregator(t *testing.T, log Appender, mod func(*Aggregator)) *Aggregator {
	t.Helper()
	a := &Aggregator{Log: log, Interval: time.Hour, Logger: quietLogger()}
	if mod != nil {
		mod(a)
	}
	if err := a.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func parsed(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range readLinesOf(t, path) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestAggregatorFirstThenSuppressed: 1,000 failed logins from one address
// and 1,000 from 20 others become one line each plus one `suppressed` line
// per address; the chain still verifies.
func TestAggregatorFirstThenSuppressed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	a := newAggregator(t, l, nil)
	for i := range 1000 {
		a.Record("10.0.0.1", LoginFailed, Event{Event: LoginFailed, Actor: fmt.Sprintf("name%d", i), Remote: "10.0.0.1", Protocol: "rtsp"})
	}
	for i := range 1000 {
		src := fmt.Sprintf("10.0.1.%d", i%20)
		a.Record(src, LoginFailed, Event{Event: LoginFailed, Actor: "x", Remote: src, Protocol: "http"})
		if i%100 == 0 {
			a.Record(src, Denied, Event{Event: Denied, Actor: "x", Remote: src, Protocol: "rtsp"})
		}
	}
	a.Flush()
	lines := parsed(t, path)
	// 21 sources: 21 first login_failed lines, one first denied (only
	// 10.0.1.0 sends those), 21 summaries
	var first, supp int
	for _, m := range lines {
		switch m["event"] {
		case Suppressed:
			supp++
			if !strings.Contains(m["detail"].(string), "suppressed") || m["remote"] == "" {
				t.Fatalf("summary %v", m)
			}
		default:
			first++
		}
	}
	if first != 22 || supp != 21 {
		t.Fatalf("%d first lines, %d summaries; want 22, 21:\n%v", first, supp, lines)
	}
	var one map[string]any
	for _, m := range lines {
		if m["event"] == Suppressed && m["remote"] == "10.0.0.1" {
			one = m
		}
	}
	if one == nil || !strings.Contains(one["detail"].(string), "999 repeated events from 10.0.0.1") || !strings.Contains(one["detail"].(string), "login_failed 999") {
		t.Fatalf("summary of 10.0.0.1: %v", one)
	}
	if _, err := VerifyFile(path); err != nil {
		t.Fatal(err)
	}
	if w, s := a.Stats(); w != 22+21 || s != 2000+10-22 {
		t.Fatalf("stats %d written %d suppressed", w, s)
	}
}

// TestAggregatorBoundsLinesAcrossSources: 100,000 events from 10,000
// sources add at most 2*MaxLines+1 lines per interval.
func TestAggregatorBoundsLinesAcrossSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	a := newAggregator(t, l, func(a *Aggregator) { a.MaxLines = 50 })
	for i := range 100_000 {
		src := fmt.Sprintf("src-%d", i%10_000)
		a.Record(src, EgressAttempt, Event{Event: EgressAttempt, Camera: src, Protocol: "dns"})
	}
	a.Flush()
	lines := parsed(t, path)
	if len(lines) > 2*50+1 {
		t.Fatalf("%d lines for 100,000 events", len(lines))
	}
	overflow := 0
	for _, m := range lines {
		if m["event"] == Suppressed && strings.Contains(m["detail"].(string), "from 9950 other sources") {
			overflow++
		}
	}
	if overflow != 1 {
		t.Fatalf("%d overflow summaries:\n%v", overflow, lines)
	}
	t.Logf("100,000 hostile events from 10,000 sources: %d audit lines (%.2f per 1,000)", len(lines), float64(len(lines))/100)
}

// TestAggregatorNewIntervalWritesAgain: after an interval the first event
// of a source is written again.
func TestAggregatorNewIntervalWritesAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	a := newAggregator(t, l, nil)
	for range 3 {
		a.Record("camera:gate", "redirect", Event{Event: Denied, Camera: "gate", Detail: "redirect refused"})
		a.Flush()
	}
	if n := len(readLinesOf(t, path)); n != 3 {
		t.Fatalf("%d lines, want one per interval", n)
	}
	// the interval timer works on its own too
	b := newAggregator(t, l, func(a *Aggregator) { a.Interval = 20 * time.Millisecond })
	b.Record("camera:yard", "redirect", Event{Event: Denied, Camera: "yard"})
	b.Record("camera:yard", "redirect", Event{Event: Denied, Camera: "yard"})
	testtool.WaitFor(t, 5*time.Second, "a summary after the interval", func() bool { // a file: nothing to wait on
		return strings.Contains(strings.Join(readLinesOf(t, path), ""), `"suppressed"`)
	})
}

// blockingLog blocks every Append until released.
type blockingLog struct {
	release chan struct{}
	n       atomic.Int64
}

func (b *blockingLog) Append(Event) error {
	<-b.release
	b.n.Add(1)
	return nil
}

// TestAggregatorNeverBlocks: with the log stuck (a slow disk, a held
// lock), every Record returns while no line could be written, and at most
// the bounded number of lines is ever written.
func TestAggregatorNeverBlocks(t *testing.T) {
	bl := &blockingLog{release: make(chan struct{})}
	a := newAggregator(t, bl, func(a *Aggregator) { a.MaxLines = 10 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10_000 {
				src := fmt.Sprintf("10.%d.%d.%d", g, i/256%256, i%256)
				a.Record(src, LoginFailed, Event{Event: LoginFailed, Remote: src})
			}
		}()
	}
	wg.Wait() // a Record that waited for the log would never return
	if n := bl.n.Load(); n != 0 {
		t.Fatalf("%d lines written while the log was stuck", n)
	}
	close(bl.release)
	a.Flush()
	if n := bl.n.Load(); n > 2*10+1 {
		t.Fatalf("%d lines written", n)
	}
}

// countingLog is the real log as the aggregator sees it: it counts the
// hostile appends in flight, and notes for each legitimate append how many
// were in flight when it began (what it can have to wait behind).
type countingLog struct {
	*Log
	inFlight atomic.Int64
	maxAhead atomic.Int64
}

func (c *countingLog) Append(e Event) error {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	return c.Log.Append(e)
}

func (c *countingLog) legit(e Event) error {
	ahead := c.inFlight.Load()
	for {
		m := c.maxAhead.Load()
		if ahead <= m || c.maxAhead.CompareAndSwap(m, ahead) {
			break
		}
	}
	return c.Log.Append(e)
}

// TestLegitEventsNotDelayed: while 8 goroutines flood the aggregator, a
// legitimate Append on the same real log never finds more than one
// hostile line being written ahead of it (one writer goroutine, paced),
// and the flood adds at most the bounded number of lines. Latencies are
// logged, not asserted: they are the machine's.
func TestLegitEventsNotDelayed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	cl := &countingLog{Log: newLog(t, path, 0)}
	a := newAggregator(t, cl, nil)
	// baseline: one fsynced append
	t0 := time.Now()
	for range 20 {
		if err := cl.legit(Event{Event: LoginOK, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Since(t0) / 20
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flood atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				src := fmt.Sprintf("192.0.%d.%d", g, i%256)
				a.Record(src, LoginFailed, Event{Event: LoginFailed, Remote: src, Actor: "guess"})
				flood.Add(1)
			}
		}()
	}
	var worst time.Duration
	for range 50 {
		s := time.Now()
		if err := cl.legit(Event{Event: ViewStart, Actor: "alice", Camera: "gate"}); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(s))
	}
	close(stop)
	wg.Wait()
	a.Flush()
	lines := len(readLinesOf(t, path)) - 70
	t.Logf("baseline append %v; worst legitimate append during a flood of %d events: %v; hostile lines %d", base, flood.Load(), worst, lines)
	if lines > 2*DefaultMaxLinesPerInterval+1 {
		t.Fatalf("%d hostile lines", lines)
	}
	if n := cl.maxAhead.Load(); n > 1 {
		t.Fatalf("a legitimate append found %d hostile appends ahead of it", n)
	}
}
