package main

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cordon/auth"
	"cordon/democam"
	"cordon/record"
)

// clipSource feeds the recorder democam's clip as fast as it reads.
type clipSource struct {
	clip   *democam.Clip
	n      int
	done   chan struct{}
	opened atomic.Bool
}

func (s *clipSource) Open(ctx context.Context) (record.Feed, error) {
	if !s.opened.Swap(true) {
		return &clipFeed{s: s}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

type clipFeed struct {
	s *clipSource
	i int
}

func (f *clipFeed) Tracks() []record.Track {
	return []record.Track{{Codec: record.CodecH264, ParamSets: [][]byte{f.s.clip.SPS, f.s.clip.PPS}}}
}
func (f *clipFeed) Close() {}
func (f *clipFeed) Next(ctx context.Context) (record.Sample, error) {
	if f.i == f.s.n {
		close(f.s.done)
		<-ctx.Done()
		return record.Sample{}, ctx.Err()
	}
	au := f.s.clip.AUs[f.i]
	pts := time.Duration(f.i) * time.Second / democam.FPS
	f.i++
	return record.Sample{Key: au.Key, PTS: pts, DTS: pts, Data: au.NALUs}, nil
}

type okAudit struct{}

func (okAudit) Playback(record.PlaybackAudit) error       { return nil }
func (okAudit) Export(record.ExportAudit) (uint64, error) { return 7, nil }

// makeExport records a few seconds of the clip in real time and exports
// them with the key in stateDir.
func makeExport(t *testing.T, stateDir string) string {
	t.Helper()
	clip, err := democam.LoadClip(democam.ClipMain)
	if err != nil {
		t.Fatal(err)
	}
	r := &record.Recorder{Path: t.TempDir(), Auditor: okAudit{}, QueueSamples: 4096, Log: slog.New(slog.DiscardHandler)}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	// 25 frames delivered at once: under the 2 s a recording may run ahead
	// of its arrival times before the recorder starts a new segment
	src := &clipSource{clip: clip, n: 25, done: make(chan struct{})}
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	<-src.done
	r.StopCamera("gate")
	e := &record.Exporter{Recorder: r, StateDir: stateDir, Node: "n1", Version: "test"}
	if err := e.Initialize(); err != nil {
		t.Fatal(err)
	}
	info, err := e.Create(context.Background(), record.ExportRequest{Camera: "gate", Start: start.Add(-time.Second),
		End: time.Now().Add(time.Second), Principal: "alice", Reason: "incident 1"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "evidence.zip")
	data, _ := os.ReadFile(info.Path)
	writeFile(t, out, string(data))
	return out
}

func TestExportVerifyAndPubkey(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	h, _ := auth.HashSecret([]byte("pw"))
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, "auth:\n  users:\n    - name: alice\n      password_hash: \""+h+"\"\n      cameras: [\"*\"]\nstate_dir: "+state+"\n")
	// pubkey before any export creates the key
	pem, stderr, code := run(t, "", "export", "pubkey", "--config", cfg)
	if code != 0 || !strings.HasPrefix(pem, "-----BEGIN PUBLIC KEY-----") || !strings.HasPrefix(stderr, "fingerprint: SHA256:") {
		t.Fatalf("pubkey: exit %d %q %q", code, pem, stderr)
	}
	pubFile := filepath.Join(dir, "export.pub")
	writeFile(t, pubFile, pem)
	zipPath := makeExport(t, state)

	out, _, code := run(t, "", "export", "verify", zipPath, "--pubkey", pubFile)
	if code != 0 || !strings.Contains(out, "VERIFIED") || !strings.Contains(out, strings.TrimPrefix(strings.TrimSpace(stderr), "fingerprint: ")) ||
		!strings.Contains(out, "camera: gate") || !strings.Contains(out, "audit seq: 7") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "UNPINNED") {
		t.Fatalf("--pubkey given, yet reported unpinned:\n%s", out)
	}
	// another key
	other := filepath.Join(dir, "other")
	otherPEM, _, _ := run(t, "", "export", "pubkey", "--config", writeConfigWithState(t, dir, h, other))
	otherFile := filepath.Join(dir, "other.pub")
	writeFile(t, otherFile, otherPEM)
	if out, _, code := run(t, "", "export", "verify", zipPath, "--pubkey", otherFile); code != 1 || !strings.Contains(out, "DIFFERS  signer.pub") {
		t.Fatalf("verify with another key: exit %d\n%s", code, out)
	}
	// one byte of the signature changed
	data, _ := os.ReadFile(zipPath)
	i := strings.LastIndex(string(data), record.SignatureName) // local header name, data follows
	for strings.LastIndex(string(data[:i]), record.SignatureName) > 0 {
		i = strings.LastIndex(string(data[:i]), record.SignatureName)
	}
	data[i+len(record.SignatureName)+10] ^= 1
	bad := filepath.Join(dir, "bad.zip")
	writeFile(t, bad, string(data))
	if out, _, code := run(t, "", "export", "verify", bad); code != 1 || !strings.Contains(out, "DIFFERS  manifest.sig") || !strings.Contains(out, "NOT VERIFIED") {
		t.Fatalf("tampered signature: exit %d\n%s", code, out)
	}
	if out, _, code := run(t, "", "export", "verify", cfg); code != 1 || !strings.Contains(out, "not a readable ZIP") {
		t.Fatalf("not a zip: exit %d %s", code, out)
	}
}

// Without --pubkey, an export re-signed with anyone's key still checks
// out against its own signer.pub: the exit status says the files and the
// signature are consistent (0), but the output must say plainly that the
// key is not pinned and give the fingerprint to compare.
func TestExportVerifyUnpinned(t *testing.T) {
	forger := filepath.Join(t.TempDir(), "forger-state")
	zipPath := makeExport(t, forger)
	key, err := record.LoadOrCreateKey(forger)
	if err != nil {
		t.Fatal(err)
	}
	fp := record.Fingerprint(key.Public().(ed25519.PublicKey))
	out, _, code := run(t, "", "export", "verify", zipPath)
	if code != 0 || !strings.Contains(out, "VERIFIED WITH AN UNPINNED KEY") || !strings.Contains(out, fp) ||
		!strings.Contains(out, "cordon export pubkey") || !strings.Contains(out, "--pubkey") {
		t.Fatalf("unpinned verify: exit %d\n%s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "VERIFIED:") {
			t.Fatalf("plain VERIFIED line without a pinned key: %q", line)
		}
	}
}

func writeConfigWithState(t *testing.T, dir, hash, state string) string {
	p := filepath.Join(dir, "c2.yaml")
	writeFile(t, p, "auth:\n  users:\n    - name: alice\n      password_hash: \""+hash+"\"\n      cameras: [\"*\"]\nstate_dir: "+state+"\n")
	return p
}
