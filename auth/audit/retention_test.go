package audit

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Without a policy nothing is ever deleted; with one and without
// forwarding, the oldest rotated files go, each logged; the chain stays
// verifiable from seq 1 through the anchor file.
func TestRetentionByCountKeepsChainVerifiable(t *testing.T) {
	dir := t.TempDir()
	var logbuf bytes.Buffer
	l := signedLog(t, dir, 600, time.Hour)
	l.Logger = slog.New(slog.NewTextHandler(&logbuf, nil))
	appendN(t, l, 20)
	if n := len(rotatedFiles(l.Path)); n < 4 {
		t.Fatalf("%d rotated files", n)
	}
	all := len(rotatedFiles(l.Path))
	l.KeepFiles = 2 // set before the next rotation (tests only: not concurrent)
	appendN(t, l, 4)
	rotated := rotatedFiles(l.Path)
	if len(rotated) != 2 {
		t.Fatalf("%d rotated files kept (had %d)", len(rotated), all)
	}
	if !strings.Contains(logbuf.String(), "deleted the oldest rotated file") {
		t.Fatal("deletion not logged")
	}
	res, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()})
	if err != nil || res.FirstSeq != 1 || res.LastSeq != 24 || res.Files[0] != l.Path+AnchorSuffix {
		t.Fatalf("%+v %v", res, err)
	}
	// The anchor is evidence too: editing it is detected.
	anchor := l.Path + AnchorSuffix
	b, _ := os.ReadFile(anchor)
	if err := os.WriteFile(anchor, bytes.Replace(b, []byte(`"actor":"user`), []byte(`"actor":"uzer`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()}); err == nil {
		t.Fatal("edited anchor accepted")
	}
	if err := os.WriteFile(anchor, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Deleting the anchor (or a kept file) shows as missing records.
	if err := os.Remove(anchor); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFile(l.Path); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing anchor: %v", err)
	}
}

// With forwarding on, a rotated file is never deleted before the
// collector has its last line, whatever the policy says.
func TestRetentionWaitsForForwarding(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 600, time.Hour)
	var forwarded atomic.Uint64
	l.SetForwarded(forwarded.Load)
	l.KeepFiles = 1
	appendN(t, l, 20)
	rotated := rotatedFiles(l.Path)
	if len(rotated) < 3 {
		t.Fatalf("%d rotated files: nothing forwarded, nothing may go", len(rotated))
	}
	first, last, _, err := anchorLines(rotated[0])
	if err != nil || first != 1 {
		t.Fatal(first, err)
	}
	forwarded.Store(last - 1) // one line short of the oldest file
	l.mu.Lock()
	l.pruneScans = 0
	l.mu.Unlock()
	for range 10 { // as the forwarder does at every cursor save
		l.Prune()
	}
	if len(rotatedFiles(l.Path)) != len(rotated) {
		t.Fatal("a file was deleted before its last line was forwarded")
	}
	// Deciding that cost a read of the file's end, never of the file.
	l.mu.Lock()
	scans := l.pruneScans
	l.mu.Unlock()
	if scans != 0 {
		t.Fatalf("%d whole-file reads to keep a file that is not forwarded", scans)
	}
	forwarded.Store(last)
	l.Prune()
	if got := rotatedFiles(l.Path); len(got) != len(rotated)-1 || got[0] != rotated[1] {
		t.Fatalf("after forwarding the oldest file: %v", got)
	}
	seq, _ := l.Head()
	forwarded.Store(seq)
	l.Prune()
	if got := rotatedFiles(l.Path); len(got) != 1 {
		t.Fatalf("all forwarded: %v", got)
	}
	if _, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()}); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionBySize(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 600, time.Hour)
	l.KeepBytes = 1300
	appendN(t, l, 30)
	var total int64
	for _, f := range rotatedFiles(l.Path) {
		st, _ := os.Stat(f)
		total += st.Size()
	}
	if total > 1300 {
		t.Fatalf("rotated files hold %d bytes", total)
	}
	if _, err := VerifyFile(l.Path); err != nil {
		t.Fatal(err)
	}
}

// A prune reads and deletes the oldest file without holding the log: an
// Append completes while it is under way.
func TestPruneDoesNotHoldTheLog(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 600, time.Hour)
	appendN(t, l, 20)
	l.mu.Lock()
	l.MaxSizeBytes = 0 // no rotation (and so no prune) from the Append below
	l.KeepFiles = 1
	appended := make(chan error, 1)
	l.pruneHook = func() {
		go func() { appended <- l.Append(Event{Event: LoginOK, Actor: "during-prune"}) }()
		select {
		case err := <-appended:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second): // only a deadlock gets here
			t.Error("an Append waited for the prune")
		}
	}
	l.mu.Unlock()
	l.Prune()
	if n := len(rotatedFiles(l.Path)); n != 1 {
		t.Fatalf("%d rotated files after the prune", n)
	}
	if _, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()}); err != nil {
		t.Fatal(err)
	}
}
