package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/internal/testtool"
)

// TestMain stops the package's rsyslog collector (started by the first
// test that needs it) and checks for leaked goroutines.
func TestMain(m *testing.M) {
	code := m.Run()
	if rsys != nil {
		rsys.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newLog(t *testing.T, path string, maxSize int64) *Log {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))}
	l := &Log{Path: path, MaxSizeBytes: maxSize, Logger: quietLogger(), Now: clk.Now, Node: "gw1"}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		e := Event{Event: LoginOK, Actor: fmt.Sprintf("user%d", i), Remote: "10.0.0.1", Protocol: "http"}
		if i%3 == 2 {
			e = Event{Event: ViewEnd, Actor: "alice", Camera: "gate-north", Remote: "10.0.0.2", Protocol: "webrtc", DurationS: 12.5, Bytes: 1 << 20}
		}
		if err := l.Append(e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func readLinesOf(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	s := strings.Join(lines, "")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendFormatAndChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	appendN(t, l, 6)

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	lines := readLinesOf(t, path)
	if len(lines) != 6 {
		t.Fatalf("%d lines", len(lines))
	}
	wantFirst := `{"seq":1,"time":"2026-01-02T02:04:06.000000Z","node":"gw1","event":"login_ok","actor":"user0","camera":"","remote":"10.0.0.1","protocol":"http","source":"local","detail":"","prev":""}` + "\n"
	if lines[0] != wantFirst {
		t.Fatalf("first line\n got %s want %s", lines[0], wantFirst)
	}
	if !strings.Contains(lines[2], `"duration_s":12.5,"bytes":1048576,"prev":"`) {
		t.Fatalf("view_end line lacks duration/bytes: %s", lines[2])
	}
	if strings.Contains(lines[1], "duration_s") {
		t.Fatalf("non view_end line has duration: %s", lines[1])
	}
	for i := 1; i < len(lines); i++ {
		var rec struct {
			Seq  uint64
			Prev string
		}
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Seq != uint64(i+1) || rec.Prev != hashLine([]byte(strings.TrimSuffix(lines[i-1], "\n"))) {
			t.Fatalf("line %d: seq %d prev %s", i+1, rec.Seq, rec.Prev)
		}
	}
	res, err := VerifyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lines != 6 || res.FirstSeq != 1 || res.LastSeq != 6 {
		t.Fatalf("result %+v", res)
	}
	if seq, h := l.Head(); seq != 6 || h != res.LastHash {
		t.Fatalf("head %d %s vs %s", seq, h, res.LastHash)
	}
	if bad, file, err := Verify(path); err != nil || bad != 0 || file != "" {
		t.Fatalf("Verify: %d %s %v", bad, file, err)
	}
}

func TestAppendRejectsUnknownEventAndClipsFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	if err := l.Append(Event{Event: "password_dump"}); err == nil {
		t.Fatal("unknown event accepted")
	}
	long := strings.Repeat("é", 5000)
	if err := l.Append(Event{Event: Denied, Actor: long, Detail: long + "\xff"}); err != nil {
		t.Fatal(err)
	}
	line := readLinesOf(t, path)[0]
	if len(line) > 256+2048+400 {
		t.Fatalf("line not bounded: %d bytes", len(line))
	}
	if _, err := VerifyFile(path); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 1 {
		t.Fatalf("rejected event consumed a seq: %d", seq)
	}
}

func TestRestartContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	appendN(t, l, 3)
	l.Close()
	if err := l.Append(Event{Event: LoginOK}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	l2 := newLog(t, path, 0)
	appendN(t, l2, 2)
	res, err := VerifyFile(path)
	if err != nil || res.LastSeq != 5 {
		t.Fatalf("%+v %v", res, err)
	}
}

// (Function over 80 lines: cases in a table or subtests sharing one fixture.)
func TestVerifyDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.log")
	l := newLog(t, orig, 0)
	appendN(t, l, 8)
	l.Close()
	base := readLinesOf(t, orig)

	edit := func(i int, from, to string) func([]string) []string {
		return func(ls []string) []string {
			out := append([]string(nil), ls...)
			if !strings.Contains(out[i], from) {
				t.Fatalf("line %d lacks %q", i+1, from)
			}
			out[i] = strings.Replace(out[i], from, to, 1)
			return out
		}
	}
	cases := []struct {
		name    string
		mutate  func([]string) []string
		badLine int
	}{
		{"edit actor line 3 (view_end bytes)", edit(2, `"bytes":1048576`, `"bytes":1`), 3},
		{"edit actor line 4", edit(3, `"actor":"user3"`, `"actor":"mallory"`), 4},
		{"edit last-but-one line", edit(6, `"actor":"user6"`, `"actor":"eve"`), 7},
		{"edit prev of line 5", edit(4, `"prev":"`, `"prev":"0`), 5},
		{"edit seq of line 2", edit(1, `"seq":2,`, `"seq":20,`), 2},
		{"whitespace edit line 2", edit(1, `"actor":`, `"actor": `), 2},
		{"delete line 3", func(ls []string) []string { return append(append([]string{}, ls[:2]...), ls[3:]...) }, 3},
		{"delete first line", func(ls []string) []string { return ls[1:] }, 1},
		{"truncate middle (lines 4-6)", func(ls []string) []string { return append(append([]string{}, ls[:3]...), ls[6:]...) }, 4},
		{"reorder lines 5 and 6", func(ls []string) []string {
			out := append([]string(nil), ls...)
			out[4], out[5] = out[5], out[4]
			return out
		}, 5},
		{"duplicate line 2", func(ls []string) []string {
			return append(append(append([]string{}, ls[:2]...), ls[1]), ls[2:]...)
		}, 3},
		{"invalid json line 6", edit(5, `{`, `[`), 6},
		{"unknown field line 2", edit(1, `"detail":""`, `"detail":"","x":1`), 2},
		{"duplicate key line 2", edit(1, `"detail":""`, `"detail":"","actor":"x"`), 2},
		{"blank line inserted", func(ls []string) []string {
			return append(append(append([]string{}, ls[:4]...), "\n"), ls[4:]...)
		}, 5},
		{"torn last line", func(ls []string) []string {
			out := append([]string(nil), ls...)
			out[7] = out[7][:40]
			return out
		}, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".log")
			lines := tc.mutate(base)
			s := strings.Join(lines, "")
			if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := VerifyFile(p)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("not detected: %+v %v", res, err)
			}
			if ve.Line != tc.badLine || ve.File != p {
				t.Fatalf("reported %s, want line %d", ve, tc.badLine)
			}
			bad, file, err := Verify(p)
			if tc.name == "delete first line" {
				// Without the strict start Verify cannot know; the prev
				// of the new first line is unverifiable.
				if err != nil {
					t.Fatalf("Verify on partial chain: %v", err)
				}
				return
			}
			if bad != tc.badLine || file != p || err == nil {
				t.Fatalf("Verify: %d %s %v", bad, file, err)
			}
		})
	}
}

func TestRotationKeepsChain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := newLog(t, path, 600) // ~3 lines per file
	appendN(t, l, 20)
	rotated := rotatedFiles(path)
	if len(rotated) < 4 {
		t.Fatalf("expected several rotated files, got %v", rotated)
	}
	if rotated[0] != path+".1" {
		t.Fatalf("oldest rotated file is %s", rotated[0])
	}
	for _, p := range append(rotated, path) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 600 {
			t.Fatalf("%s is %d bytes > max", p, st.Size())
		}
	}
	res, err := VerifyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lines != 20 || len(res.Files) != len(rotated)+1 {
		t.Fatalf("result %+v", res)
	}
	// First line of the live file chains to the last line of the newest
	// rotated file.
	prevLines := readLinesOf(t, rotated[len(rotated)-1])
	cur := readLinesOf(t, path)
	want := hashLine([]byte(strings.TrimSuffix(prevLines[len(prevLines)-1], "\n")))
	if !strings.Contains(cur[0], `"prev":"`+want+`"`) {
		t.Fatalf("live file does not chain: %s", cur[0])
	}

	// Restart after a crash between rename and create: no live file.
	l.Close()
	if err := os.Rename(path, path+fmt.Sprintf(".%d", len(rotated)+1)); err != nil {
		t.Fatal(err)
	}
	l2 := newLog(t, path, 600)
	appendN(t, l2, 2)
	if res, err := VerifyFile(path); err != nil || res.LastSeq != 22 {
		t.Fatalf("after crash-restart: %+v %v", res, err)
	}

	// Removing a middle rotated file is detected at the next file's first line.
	if err := os.Remove(path + ".2"); err != nil {
		t.Fatal(err)
	}
	_, err = VerifyFile(path)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.File != path+".3" || ve.Line != 1 {
		t.Fatalf("missing middle file: %v", err)
	}
	// Removing the oldest file is detected too (chain must start at 1).
	if err := os.Remove(path + ".1"); err != nil {
		t.Fatal(err)
	}
	_, err = VerifyFile(path)
	if !errors.As(err, &ve) || ve.File != path+".3" || ve.Line != 1 || !strings.Contains(ve.Reason, "starts at seq") {
		t.Fatalf("missing oldest file: %v", err)
	}
}

func TestTornTailMovedAsideAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := newLog(t, path, 0)
	appendN(t, l, 3)
	l.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":4,"time":"20`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := VerifyFile(path); err == nil {
		t.Fatal("torn tail not reported by Verify")
	}
	l2 := newLog(t, path, 0)
	appendN(t, l2, 1)
	if res, err := VerifyFile(path); err != nil || res.LastSeq != 4 {
		t.Fatalf("%+v %v", res, err)
	}
	aside, _ := filepath.Glob(path + ".torn-*")
	if len(aside) != 1 {
		t.Fatalf("torn tail not preserved: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != `{"seq":4,"time":"20` {
		t.Fatalf("aside content %q", b)
	}
}

func TestInitializeRefusesDamagedLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLines(t, path, []string{"not json\n"})
	l := &Log{Path: path, Logger: quietLogger()}
	if err := l.Initialize(); err == nil {
		l.Close()
		t.Fatal("damaged log accepted")
	}
	if err := l.Healthy(); !errors.Is(err, ErrClosed) {
		t.Fatalf("healthy on uninitialized log: %v", err)
	}
	dirAsPath := t.TempDir()
	l2 := &Log{Path: dirAsPath, Logger: quietLogger()}
	if err := l2.Initialize(); err == nil {
		l2.Close()
		t.Fatal("directory accepted as log")
	}
}

// swapToDevFull makes the next write fail with ENOSPC, as a full disk.
func swapToDevFull(t *testing.T, l *Log) {
	t.Helper()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("no /dev/full (a device whose writes fail with ENOSPC): %v", err))
	}
	l.mu.Lock()
	_ = l.f.Close()
	l.f = full
	l.mu.Unlock()
}

func TestFailClosedAndRecover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var logs testtool.SyncBuffer
	l := newLog(t, path, 0)
	l.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	appendN(t, l, 2)
	if err := l.Healthy(); err != nil {
		t.Fatal(err)
	}
	swapToDevFull(t, l)
	if err := l.Append(Event{Event: ViewStart, Actor: "alice", Camera: "c1"}); err == nil {
		t.Fatal("write to a full disk reported success")
	}
	if err := l.Healthy(); err == nil {
		t.Fatal("Healthy is nil after a failed write")
	}
	if !strings.Contains(logs.String(), "audit log write failed") {
		t.Fatalf("failure not logged: %s", logs.String())
	}
	// The disk has room again: the next Append reopens and succeeds, and
	// the failed event did not consume a seq.
	if err := l.Append(Event{Event: ViewStart, Actor: "alice", Camera: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Healthy(); err != nil {
		t.Fatal(err)
	}
	if res, err := VerifyFile(path); err != nil || res.LastSeq != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestFailClosedPersistent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	appendN(t, l, 1)
	swapToDevFull(t, l)
	// The file is replaced by a directory: reopening fails too.
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := l.Append(Event{Event: ViewStart}); err == nil {
			t.Fatal("append succeeded")
		}
		if l.Healthy() == nil {
			t.Fatal("healthy while unwritable")
		}
	}
}

func TestPartialWriteCutOnRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	appendN(t, l, 2)
	// Simulate a failed write that left half a line behind.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"seq":3,"ti`)
	_ = f.Close()
	_ = l.fail("writing", errors.New("simulated"))
	if err := l.Append(Event{Event: Logout, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	if res, err := VerifyFile(path); err != nil || res.LastSeq != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 4096)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := l.Append(Event{Event: ViewStart, Actor: fmt.Sprintf("g%d", g), Detail: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if res, err := VerifyFile(path); err != nil || res.Lines != 200 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestParseLineShape(t *testing.T) {
	ok := `{"seq":1,"time":"2026-01-02T03:04:05.000000Z","event":"denied","actor":"","camera":"","remote":"","protocol":"","detail":"","prev":""}`
	if _, err := parseLine([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		strings.Replace(ok, `"seq":1`, `"seq":0`, 1),
		strings.Replace(ok, `"seq":1`, `"seq":1.5`, 1),
		strings.Replace(ok, `"seq":1`, `"seq":"1"`, 1),
		strings.Replace(ok, `05.000000Z`, `05+01:00`, 1),
		strings.Replace(ok, `"event":"denied"`, `"event":"other"`, 1),
		strings.Replace(ok, `"prev":""`, `"prev":"ABC"`, 1),
		strings.Replace(ok, `"actor":""`, `"actor":null`, 1),
		strings.Replace(ok, `"actor":""`, `"actor":{}`, 1),
		strings.Replace(ok, `,"actor":""`, ``, 1),
		strings.Replace(ok, `"event":"denied"`, `"event":"view_end"`, 1),
		strings.Replace(ok, `"prev":""`, `"prev":"","duration_s":1,"bytes":2`, 1),
		ok + " x",
		ok + "{}",
	}
	for _, b := range bad {
		if _, err := parseLine([]byte(b)); err == nil {
			t.Errorf("accepted %s", b)
		}
	}
	ve := strings.Replace(strings.Replace(ok, `"event":"denied"`, `"event":"view_end"`, 1), `"prev":""`, `"prev":"","duration_s":1.25,"bytes":2`, 1)
	if _, err := parseLine([]byte(ve)); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{
		strings.Replace(ve, `"bytes":2`, `"bytes":-2`, 1),
		strings.Replace(ve, `"duration_s":1.25`, `"duration_s":-1`, 1),
		strings.Replace(ve, `"bytes":2`, `"bytes":2.5`, 1),
	} {
		if _, err := parseLine([]byte(b)); err == nil {
			t.Errorf("accepted %s", b)
		}
	}
}

func TestRemovedFileIsNoticed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var logs testtool.SyncBuffer
	l := newLog(t, path, 0)
	l.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	appendN(t, l, 3)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Event{Event: ViewStart, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "removed or replaced") {
		t.Fatalf("not logged: %s", logs.String())
	}
	lines := readLinesOf(t, path)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"seq":4,`) {
		t.Fatalf("event not written to a new file at the path: %v", lines)
	}
	_, err := VerifyFile(path)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 1 || !strings.Contains(ve.Reason, "starts at seq 4") {
		t.Fatalf("gap not reported: %v", err)
	}
}

func TestHardeningEventsAccepted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	for _, ev := range []string{HardeningDrift, CameraHardened} {
		if err := l.Append(Event{Event: ev, Camera: "gate", Detail: "cloud.easy4ip"}); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	if res, err := VerifyFile(path); err != nil || res.Lines != 2 {
		t.Fatalf("VerifyFile: %d lines, %v", res.Lines, err)
	}
}
