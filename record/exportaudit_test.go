package record

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cordon/auth/audit"
)

// A failure after the export's audit line (here: the rename into place
// fails) is audited as a second `export` line naming the id, and nothing
// is left behind: the trail never names an export that silently is not
// there.
func TestExportFailureAfterAuditIsAudited(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	e := newExporter(t, r)
	ma := r.Auditor.(*memAudit)
	ma.onExport = func(a ExportAudit) {
		if a.Failed == "" { // the export line is written: now make the rename fail
			blocker := filepath.Join(e.Dir, a.ID+".zip")
			if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o750); err != nil {
				t.Error(err)
			}
		}
	}
	_, err := e.Create(context.Background(), ExportRequest{Camera: "gate", Start: wall0, End: wall0.Add(5 * time.Second),
		Principal: "alice", Remote: "10.0.0.9", Reason: "incident 42"})
	if err == nil || !strings.Contains(err.Error(), "failed after it was audited") {
		t.Fatalf("Create: %v", err)
	}
	ex := ma.exports
	if len(ex) != 2 || ex[0].Failed != "" || ex[1].ID != ex[0].ID || ex[1].Failed == "" ||
		ex[1].Principal != "alice" || ex[1].Camera != "gate" {
		t.Fatalf("audit lines %+v", ex)
	}
	entries, _ := os.ReadDir(e.Dir)
	if len(entries) != 1 || entries[0].Name() != ex[0].ID+".zip" || !entries[0].IsDir() {
		t.Fatalf("left in the exports directory: %v (only the test's blocker should be)", entries)
	}
	if _, _, err := e.Open(ex[0].ID); err == nil {
		t.Fatal("the failed export opens")
	}
}

// An export interrupted by a crash after its audit line (a pending file)
// is audited as failed at the next start and removed; a temporary file
// from before the audit line is just removed; a pending file whose
// failure cannot be audited yet is kept for the next start.
func TestExportInterruptedIsAuditedAtStart(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	exports := filepath.Join(dir, "_exports")
	if err := os.MkdirAll(exports, 0o750); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("ab", 16)
	pending := filepath.Join(exports, pendingPrefix+id+".zip")
	tmp := filepath.Join(exports, tmpPrefix+strings.Repeat("cd", 16)+".zip")
	for _, p := range []string{pending, tmp} {
		if err := os.WriteFile(p, []byte("PK half a zip"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	ma := r.Auditor.(*memAudit)
	ma.fail = true
	newExporter(t, r)
	if _, err := os.Stat(pending); err != nil {
		t.Fatal("a pending export whose failure could not be audited was removed")
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("an unaudited temporary file was kept")
	}
	ma.fail = false
	newExporter(t, r)
	if len(ma.exports) != 1 || ma.exports[0].ID != id || !strings.Contains(ma.exports[0].Failed, "interrupted") {
		t.Fatalf("audit lines %+v", ma.exports)
	}
	if _, err := os.Stat(pending); !os.IsNotExist(err) {
		t.Fatal("the interrupted export's file was kept")
	}
}

type auditLine struct {
	Seq    uint64 `json:"seq"`
	Event  string `json:"event"`
	Actor  string `json:"actor"`
	Camera string `json:"camera"`
	Detail string `json:"detail"`
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// Through cordon's real audit log: exports built at once each carry, as
// audit_seq, the seq of their own `export` line (never a neighbour's, as
// reading the log's head afterwards could give); playback and failure
// lines have their shape.
func TestAuditLogSeqPerExport(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	alog := &audit.Log{Path: logPath, Node: "node-1", Logger: quietLog()}
	if err := alog.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	al := AuditLog{Trail: alog}
	r.Auditor = al
	e := &Exporter{Recorder: r, StateDir: filepath.Join(t.TempDir(), "state"), Node: "node-1", Version: "v-test", Concurrent: 4}
	if err := e.Initialize(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	infos := make([]*ExportInfo, 6)
	for i := range infos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := e.Create(context.Background(), ExportRequest{Camera: "gate", Start: wall0.Add(time.Duration(i) * time.Second),
				End: wall0.Add(time.Duration(i+4) * time.Second), Principal: fmt.Sprintf("officer-%d", i), Reason: "case " + fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
				return
			}
			infos[i] = info
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := al.Playback(PlaybackAudit{Principal: "bob", Camera: "gate", Start: wall0, End: wall0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := al.Export(ExportAudit{ID: strings.Repeat("ef", 16), Failed: "interrupted"}); err != nil {
		t.Fatal(err)
	}
	lines := readAudit(t, logPath)
	bySeq := map[uint64]auditLine{}
	for _, l := range lines {
		bySeq[l.Seq] = l
	}
	for i, info := range infos {
		l, ok := bySeq[info.Manifest.AuditSeq]
		if !ok || l.Event != "export" || l.Actor != fmt.Sprintf("officer-%d", i) || l.Camera != "gate" ||
			!strings.HasPrefix(l.Detail, "id="+info.ID+" start=") || !strings.Contains(l.Detail, `reason="case `) ||
			!strings.Contains(l.Detail, info.Manifest.Files[0].Name+":"+info.Manifest.Files[0].SHA256) {
			t.Fatalf("export %d (seq %d): line %+v", i, info.Manifest.AuditSeq, l)
		}
	}
	n := len(lines)
	if lines[n-2].Event != "playback" || lines[n-2].Actor != "bob" || !strings.HasPrefix(lines[n-2].Detail, "start=") ||
		lines[n-1].Actor != "cordon" || lines[n-1].Detail != "id="+strings.Repeat("ef", 16)+` failed="interrupted" (the export does not exist)` {
		t.Fatalf("last lines %+v", lines[n-2:])
	}
	if res, err := audit.VerifyFile(logPath); err != nil || res.Lines != n {
		t.Fatalf("audit log verify: %+v %v", res, err)
	}
}
