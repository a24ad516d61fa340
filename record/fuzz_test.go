package record

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cordon/democam"
)

// seedRecording records 2 frames of clip with audio and exports it, for fuzz
// seeds: a real segment and a real export. Slices are cut to a few bytes
// (the recorder never decodes them) to keep the seeds small: the fuzzer
// minimizes every input that finds new coverage, by default for up to a
// minute each, which on inputs of kilobytes is what made `go test -fuzz`
// of these targets run a few execs per second (each exec takes ~0.1 ms).
// scripts/fuzz.sh bounds minimization (-fuzzminimizetime=1000x); do the
// same when fuzzing them by hand.
func seedRecording(f testing.TB) (segment, export []byte) {
	f.Helper()
	dir := f.TempDir()
	r, vc := newTestRecorder(f, dir, time.Now().UTC().Add(-time.Hour))
	src := newClipSource(f, democam.ClipMain, 2, true, vc)
	for i, au := range src.clip.AUs {
		for j, n := range au.NALUs {
			if t := n[0] & 0x1f; t == 1 || t == 5 {
				src.clip.AUs[i].NALUs[j] = n[:min(len(n), 6)]
			}
		}
	}
	if err := r.StartCamera("gate", src); err != nil {
		f.Fatal(err)
	}
	src.waitDone(f, 30*time.Second)
	r.StopCamera("gate")
	files := segmentFiles(f, dir, "gate")
	seg, err := os.ReadFile(files[0])
	if err != nil {
		f.Fatal(err)
	}
	e := &Exporter{Recorder: r, StateDir: f.TempDir()}
	if err := e.Initialize(); err != nil {
		f.Fatal(err)
	}
	info, err := e.Create(context.Background(), ExportRequest{Camera: "gate", Start: time.Now().Add(-2 * time.Hour), End: time.Now(), Principal: "p", Reason: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	exp, err := os.ReadFile(info.Path)
	if err != nil {
		f.Fatal(err)
	}
	return seg, exp
}

// TestFuzzSeeds checks that the committed seeds are a real segment and a
// real export; CORDON_WRITE_FUZZ_SEEDS=1 regenerates them.
func TestFuzzSeeds(t *testing.T) {
	if os.Getenv("CORDON_WRITE_FUZZ_SEEDS") == "1" {
		seg, exp := seedRecording(t)
		for name, b := range map[string][]byte{"FuzzParseSegment": seg, "FuzzVerifyExport": exp} {
			dir := filepath.Join("testdata", "fuzz", name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "recorded"), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	seg := readSeed(t, "FuzzParseSegment")
	info, err := parseSegment(bytes.NewReader(seg), int64(len(seg)))
	if err != nil || len(info.frags) == 0 || info.tailErr != nil {
		t.Fatalf("segment seed: %v", err)
	}
	exp := readSeed(t, "FuzzVerifyExport")
	zr, err := zip.NewReader(bytes.NewReader(exp), int64(len(exp)))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := VerifyExport(zr, nil); err != nil || !rep.OK() {
		t.Fatalf("export seed: %v %+v", err, rep)
	}
	// the index seeds reach the accepting path too, not only refusals
	for _, name := range []string{"segment", "repaired"} {
		if seg, _, err := parseIndexLine("2026-03-01", readSeedFile(t, "FuzzIndexLine", name)); err != nil || seg == nil {
			t.Fatalf("index seed %s: %v", name, err)
		}
	}
	if _, del, err := parseIndexLine("2026-03-01", readSeedFile(t, "FuzzIndexLine", "tombstone")); err != nil || del == "" {
		t.Fatalf("tombstone seed: %q %v", del, err)
	}
}

func readSeed(t *testing.T, name string) []byte { return readSeedFile(t, name, "recorded") }

func readSeedFile(t *testing.T, target, file string) []byte {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, file))
	if err != nil {
		t.Fatal(err)
	}
	_, q, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(q, "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// FuzzParseSegment: a damaged segment file never panics the parser, and
// whatever it accepts lies inside the file.
func FuzzParseSegment(f *testing.F) {
	// seed: testdata/fuzz/FuzzParseSegment/recorded, a real segment
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseSegment(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if info.size > int64(len(b)) || len(info.tracks) == 0 {
			t.Fatalf("size %d of %d, %d tracks", info.size, len(b), len(info.tracks))
		}
		for _, fr := range info.frags {
			for _, ft := range fr.tracks {
				if ft.track < 0 || ft.track >= len(info.tracks) {
					t.Fatal("bad track index")
				}
				for _, s := range ft.samples {
					if s.off < 0 || s.off+int64(s.size) > info.size {
						t.Fatalf("sample %d+%d outside %d", s.off, s.size, info.size)
					}
				}
			}
		}
	})
}

// FuzzIndexLine: any index line is parsed or refused; what is accepted
// round-trips.
func FuzzIndexLine(f *testing.F) {
	s := &segment{Name: "20260301T100000.050Z.mp4", Day: "2026-03-01", Start: time.Date(2026, 3, 1, 10, 0, 0, 50e6, time.UTC),
		End: time.Date(2026, 3, 1, 10, 6, 0, 0, time.UTC), Bytes: 1234, SHA256: string(bytes.Repeat([]byte("a"), 64)), Init: "0123456789abcdef", Frames: 90}
	f.Add(formatIndexLine(s))
	f.Add(tombstone(s.Name, "age"))
	f.Add([]byte(`{"seg":"20260301T100000.050Z.mp4","start":"2026-03-01T10:00:00Z","end":"2026-03-01T09:00:00Z"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		seg, del, err := parseIndexLine("2026-03-01", line)
		if err != nil || del != "" {
			return
		}
		again, _, err := parseIndexLine("2026-03-01", formatIndexLine(seg))
		if err != nil || !again.Start.Equal(seg.Start) || !again.End.Equal(seg.End) || again.Name != seg.Name || again.SHA256 != seg.SHA256 {
			t.Fatalf("round trip: %+v -> %+v (%v)", seg, again, err)
		}
	})
}

// FuzzVerifyExport: `cordon export verify` reads files from anyone; it
// never panics and never calls a damaged export good.
func FuzzVerifyExport(f *testing.F) {
	// seed: testdata/fuzz/FuzzVerifyExport/recorded, a real export
	f.Fuzz(func(t *testing.T, b []byte) {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		rep, err := VerifyExport(zr, nil)
		if err != nil {
			return
		}
		if rep.OK() && (!rep.SignatureOK || rep.Manifest == nil) {
			t.Fatalf("accepted without a valid signature: %+v", rep)
		}
		if rep.OK() {
			// what is accepted carries the signed manifest and files
			// with the manifest's hashes
			for _, mf := range rep.Manifest.Files {
				found := false
				for _, c := range rep.Checked {
					found = found || c == mf
				}
				if !found {
					t.Fatalf("accepted with %s unchecked", mf.Name)
				}
			}
		}
	})
}
