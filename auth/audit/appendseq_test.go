package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestAppendSeqConcurrent: every concurrent caller gets the seq of its own
// line (the line with that seq carries the caller's detail), never a
// neighbour's, and no two callers get the same seq.
func TestAppendSeqConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := newLog(t, path, 0)
	const goroutines, each = 8, 40
	var (
		mu  sync.Mutex
		got = map[uint64]string{}
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				detail := fmt.Sprintf("g%d-%d", g, i)
				seq, err := l.AppendSeq(Event{Event: Export, Actor: "alice", Detail: detail})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := got[seq]; dup {
					t.Errorf("seq %d returned to %s and %s", seq, prev, detail)
				}
				got[seq] = detail
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(got) != goroutines*each {
		t.Fatalf("%d distinct seqs, want %d", len(got), goroutines*each)
	}
	for _, line := range readLinesOf(t, path) {
		rec, err := parseLine([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := got[rec.Seq]; !ok || rec.Detail != want {
			t.Fatalf("line seq %d has detail %q; AppendSeq returned that seq to %q", rec.Seq, rec.Detail, want)
		}
	}
	if head, _ := l.Head(); head != goroutines*each {
		t.Fatalf("head %d", head)
	}
}

// TestAppendSeqErrors: a refused append returns seq 0 and the error.
func TestAppendSeqErrors(t *testing.T) {
	l := newLog(t, filepath.Join(t.TempDir(), "audit.log"), 0)
	if seq, err := l.AppendSeq(Event{Event: "no_such_event"}); err == nil || seq != 0 {
		t.Fatalf("unknown event: seq %d err %v", seq, err)
	}
	if seq, err := l.AppendSeq(Event{Event: Export}); err != nil || seq != 1 {
		t.Fatalf("first line: seq %d err %v", seq, err)
	}
	l.Close()
	if seq, err := l.AppendSeq(Event{Event: Export}); !errors.Is(err, ErrClosed) || seq != 0 {
		t.Fatalf("closed: seq %d err %v", seq, err)
	}
}
