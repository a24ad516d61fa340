package record

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cordon/democam"
)

// signedSEI is an SEI NAL unit of type user-data-unregistered with the
// Axis signed-video UUID, as the sanitizer lets it through when allowed.
var signedSEI = append(append([]byte{0x06, 0x05, 0x18},
	0x53, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x20, 0x56, 0x69, 0x64, 0x65, 0x6f, 0x2e, 0x2e, 0x2e, 0x30),
	[]byte("sig-4711\x80")...) // 16-byte UUID + 8 bytes = payload size 0x18, then the RBSP stop bit

// recordSigned records 20 s whose keyframes carry a signed-video SEI.
func recordSigned(t testing.TB, dir string) *Recorder {
	t.Helper()
	r, vc := newTestRecorder(t, dir, wall0)
	src := newClipSource(t, democam.ClipMain, 300, true, vc)
	for i, au := range src.clip.AUs {
		if au.Key {
			nalus := append([][]byte{}, au.NALUs[:2]...)
			nalus = append(nalus, signedSEI)
			src.clip.AUs[i].NALUs = append(nalus, au.NALUs[2:]...)
		}
	}
	if err := r.StartCamera("gate", src); err != nil {
		t.Fatal(err)
	}
	src.waitDone(t, 30*time.Second)
	r.StopCamera("gate")
	return r
}

func newExporter(t testing.TB, r *Recorder) *Exporter {
	t.Helper()
	e := &Exporter{Recorder: r, StateDir: filepath.Join(t.TempDir(), "state"), Node: "node-1", Version: "v-test"}
	if err := e.Initialize(); err != nil {
		t.Fatal(err)
	}
	return e
}

func openZip(t testing.TB, path string) *zip.Reader {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func verifyFile(t testing.TB, path string, pub ed25519.PublicKey) *VerifyReport {
	t.Helper()
	rep, err := VerifyExport(openZip(t, path), pub)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestExportAndVerify(t *testing.T) {
	dir := t.TempDir()
	r := recordSigned(t, dir)
	e := newExporter(t, r)
	first := wall0.Add(50 * time.Millisecond)
	req := ExportRequest{Camera: "gate", CameraName: "Gate north", Start: first.Add(3 * time.Second), End: first.Add(15 * time.Second),
		Principal: "alice", Remote: "10.0.0.9", Reason: "incident 4711"}
	info, err := e.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// the key: created on first use, 0600
	fi, err := os.Stat(filepath.Join(e.StateDir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export key: %v %v", err, fi)
	}
	key, _ := e.Key()
	pub := key.Public().(ed25519.PublicKey)

	rep := verifyFile(t, info.Path, pub)
	if !rep.OK() || !rep.SignatureOK || rep.Fingerprint != Fingerprint(pub) {
		t.Fatalf("fresh export does not verify: %+v", rep)
	}
	m := rep.Manifest
	if m.Camera != (ManifestCamera{ID: "gate", Name: "Gate north"}) || m.Start != FormatTime(req.Start) || m.End != FormatTime(req.End) ||
		m.Principal != "alice" || m.Reason != "incident 4711" || m.Node != "node-1" || m.AuditSeq != 101 || m.CordonVersion != "v-test" ||
		len(m.Files) != 2 || m.Files[1].Name != SignerName {
		t.Fatalf("manifest %+v", m)
	}
	// manifest.json has exactly the contract's keys
	raw := zipFile(t, info.Path, ManifestName)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || len(keys) != 9 {
		t.Fatalf("manifest keys %v %v", keys, err)
	}
	// the audit line came first and carries the hashes
	a := r.Auditor.(*memAudit).exports
	if len(a) != 1 || a[0].ID != info.ID || a[0].Files[0] != m.Files[0] || a[0].Remote != "10.0.0.9" {
		t.Fatalf("audit %+v", a)
	}
	// the clip: native H.264 + G.711, starting at the keyframe at or before start, signed SEI kept
	clip := zipFile(t, info.Path, m.Files[0].Name)
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, clip, 0o600); err != nil {
		t.Fatal(err)
	}
	streams := ffprobe(t, path)
	if len(streams) != 2 || streams[0].CodecName != "h264" || streams[1].CodecName != "pcm_mulaw" || streams[0].frames(t) != 196 { // 2 s (the keyframe before 3 s) to 15 s
		t.Fatalf("clip streams %+v", streams)
	}
	ffmpegDecode(t, path)
	if n := bytes.Count(clip, signedSEI); n != 7 {
		t.Fatalf("signed-video SEI found %d times in the clip, want 7 (one per keyframe)", n)
	}
	// Open serves it with its manifest
	f, om, err := e.Open(info.ID)
	if err != nil || om.Camera.ID != "gate" {
		t.Fatalf("open: %v %+v", err, om)
	}
	f.Close()
	if _, _, err := e.Open("../../etc/passwd"); err == nil {
		t.Fatal("opened a path outside the exports")
	}
	// retention never removes exports
	r.SetRetention(time.Nanosecond, 1)
	r.enforce()
	if _, err := os.Stat(info.Path); err != nil {
		t.Fatalf("retention removed an export: %v", err)
	}
	if len(segmentFiles(t, dir, "gate")) != 0 {
		t.Fatal("retention kept segments")
	}
}

func zipFile(t testing.TB, zipPath, name string) []byte {
	t.Helper()
	for _, f := range openZip(t, zipPath).File {
		if f.Name == name {
			rc, _ := f.Open()
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%s not in %s", name, zipPath)
	return nil
}

// One changed byte anywhere makes verification fail, naming what differs.
func TestVerifyDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	e := newExporter(t, r)
	info, err := e.Create(context.Background(), ExportRequest{Camera: "gate", Start: wall0, End: wall0.Add(10 * time.Second), Principal: "alice", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	clipName := info.Manifest.Files[0].Name
	orig, _ := os.ReadFile(info.Path)
	zr := openZip(t, info.Path)
	for _, tc := range []struct{ entry, names string }{
		{clipName, clipName},
		{ManifestName, ManifestName},
		{SignatureName, SignatureName},
	} {
		// flip one byte of the entry's stored data in place
		var off int64
		for _, f := range zr.File {
			if f.Name == tc.entry {
				off, _ = f.DataOffset()
				off += int64(f.CompressedSize64 / 2)
			}
		}
		bad := bytes.Clone(orig)
		bad[off] ^= 0x01
		p := filepath.Join(t.TempDir(), "bad.zip")
		os.WriteFile(p, bad, 0o600)
		rep := verifyFile(t, p, nil)
		if rep.OK() || !strings.HasPrefix(rep.Problems[0], tc.names+":") {
			t.Fatalf("one byte of %s changed: %v", tc.entry, rep.Problems)
		}
	}
	// a careful forger rewrites the ZIP with valid checksums
	rewrite := func(change func(name string, b []byte) []byte) *VerifyReport {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, f := range zr.File {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
			w.Write(change(f.Name, b))
		}
		zw.Close()
		p := filepath.Join(t.TempDir(), "forged.zip")
		os.WriteFile(p, buf.Bytes(), 0o600)
		return verifyFile(t, p, nil)
	}
	flip := func(target string) func(string, []byte) []byte {
		return func(name string, b []byte) []byte {
			if name == target {
				b = bytes.Clone(b)
				b[len(b)/2] ^= 0x01
			}
			return b
		}
	}
	if rep := rewrite(flip(clipName)); rep.OK() || !strings.Contains(rep.Problems[0], clipName+": SHA-256") {
		t.Fatalf("forged clip: %v", rep.Problems)
	}
	for _, target := range []string{ManifestName, SignatureName} {
		rep := rewrite(flip(target))
		if rep.OK() || rep.SignatureOK || !strings.Contains(strings.Join(rep.Problems, "\n"), SignatureName+": the signature does not match") {
			t.Fatalf("forged %s: %v", target, rep.Problems)
		}
	}
	if rep := rewrite(func(_ string, b []byte) []byte { return b }); !rep.OK() {
		t.Fatalf("an honest rewrite fails: %v", rep.Problems)
	}
	// signed by another key than the one given
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if rep := verifyFile(t, info.Path, other); rep.OK() || !strings.HasPrefix(rep.Problems[0], SignerName+":") {
		t.Fatalf("--pubkey of another key: %v", rep.Problems)
	}
}

func TestExportRefusals(t *testing.T) {
	dir := t.TempDir()
	r := record20s(t, dir, wall0)
	e := newExporter(t, r)
	ctx := context.Background()
	ok := ExportRequest{Camera: "gate", Start: wall0, End: wall0.Add(10 * time.Second), Principal: "alice", Reason: "r"}
	bad := []struct {
		change func(*ExportRequest)
		want   error
	}{
		{func(q *ExportRequest) { q.Camera = "nope" }, ErrUnknownCamera},
		{func(q *ExportRequest) { q.End = q.Start.Add(25 * time.Hour) }, ErrBadSpan},
		{func(q *ExportRequest) { q.End = q.Start }, ErrBadSpan},
		{func(q *ExportRequest) { q.Reason = " " }, ErrBadSpan},
		{func(q *ExportRequest) { q.Start, q.End = wall0.Add(-2*time.Hour), wall0.Add(-time.Hour) }, ErrNoRecording},
	}
	for i, tc := range bad {
		q := ok
		tc.change(&q)
		if _, err := e.Create(ctx, q); !errors.Is(err, tc.want) {
			t.Errorf("case %d: %v, want %v", i, err, tc.want)
		}
	}
	// a segment whose bytes changed on disk: refused, naming the file
	files := segmentFiles(t, dir, "gate")
	data, _ := os.ReadFile(files[0])
	data[len(data)-100] ^= 0xff // inside media data: only the hash can tell
	os.WriteFile(files[0], data, 0o640)
	_, err := e.Create(ctx, ok)
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.HasSuffix(ce.File, filepath.Base(files[0])) || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("damaged segment: %v", err)
	}
	// the audit log cannot be written: no export, nothing left behind
	q := ok
	q.Start, q.End = wall0.Add(8*time.Second), wall0.Add(12*time.Second)
	r.Auditor.(*memAudit).fail = true
	if _, err := e.Create(ctx, q); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("export without audit: %v", err)
	}
	left, _ := os.ReadDir(e.Dir)
	if len(left) != 0 {
		t.Fatalf("left in the exports directory: %v", left)
	}
}
