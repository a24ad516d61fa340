package audit

import (
	"path/filepath"
	"testing"
)

// BenchmarkAppend: one durable (fsynced) line.
func BenchmarkAppend(b *testing.B) {
	l := &Log{Path: filepath.Join(b.TempDir(), "audit.log"), Logger: quietLogger()}
	if err := l.Initialize(); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Append(Event{Event: ViewStart, Actor: "alice", Camera: "gate-north", Remote: "10.0.0.1", Protocol: "webrtc"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify: verifying a 10,000-line chain.
func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.log")
	l := &Log{Path: path, Logger: quietLogger()}
	if err := l.Initialize(); err != nil {
		b.Fatal(err)
	}
	for range 10000 {
		if err := l.Append(Event{Event: ViewStart, Actor: "alice", Camera: "gate-north"}); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyFile(path); err != nil {
			b.Fatal(err)
		}
	}
}
