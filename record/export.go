package record

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Exporter builds evidence exports from a Recorder's segments. Set the
// exported fields and call Initialize.
type Exporter struct {
	Recorder *Recorder
	// Dir holds the exports; default <Recorder.Path>/_exports (a name no
	// camera can have). Retention never looks there.
	Dir string
	// StateDir holds the signing key (KeyFile), created on first use.
	StateDir string
	Node     string // manifest "node"
	Version  string // manifest "cordon_version"
	// Auditor writes the export line and gives its sequence number;
	// default Recorder.Auditor.
	Auditor Auditor
	Log     *slog.Logger
	// Concurrent bounds exports built at once (default 2).
	Concurrent int

	mu  sync.Mutex
	key ed25519.PrivateKey
	sem chan struct{}
}

// ExportRequest asks for the evidence of [Start, End] of a camera.
type ExportRequest struct {
	Camera     string
	CameraName string // manifest camera.name; default the id
	Start, End time.Time
	Principal  string
	Remote     string
	Reason     string
}

// ExportInfo describes a finished export.
type ExportInfo struct {
	ID       string
	Path     string
	Size     int64
	Manifest Manifest
}

var exportIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

const maxReason = 1000

// Initialize creates Dir and removes exports left half-built by a crash
// (auditing those that may have had their audit line: see recoverPending).
func (e *Exporter) Initialize() error {
	if e.Recorder == nil {
		return errors.New("record: Exporter needs a Recorder")
	}
	if e.Dir == "" {
		e.Dir = filepath.Join(e.Recorder.Path, "_exports")
	}
	if e.Auditor == nil {
		e.Auditor = e.Recorder.Auditor
	}
	if e.Log == nil {
		e.Log = e.Recorder.Log
	}
	if e.Concurrent <= 0 {
		e.Concurrent = 2
	}
	e.sem = make(chan struct{}, e.Concurrent)
	if err := os.MkdirAll(e.Dir, 0o750); err != nil {
		return fmt.Errorf("record: exports: %w", err)
	}
	stale, _ := filepath.Glob(filepath.Join(e.Dir, tmpPrefix+"*.zip"))
	for _, p := range stale {
		os.Remove(p) // never audited
	}
	e.recoverPending()
	return nil
}

// Key returns the signing key, creating it on first use.
func (e *Exporter) Key() (ed25519.PrivateKey, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.key == nil {
		k, err := LoadOrCreateKey(e.StateDir)
		if err != nil {
			return nil, err
		}
		e.key = k
	}
	return e.key, nil
}

func checkReason(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("a reason is required")
	}
	if len(s) > maxReason {
		return fmt.Errorf("the reason is longer than %d bytes", maxReason)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("the reason contains control characters")
		}
	}
	return nil
}

func (e *Exporter) fail(reason string, err error) error {
	e.Recorder.Metrics.exportFail.WithLabelValues(reason).Inc()
	return err
}

// Create builds an export synchronously: clips of [Start, End] (one per
// continuous recording, each from the keyframe at or before its start),
// checked against the SHA-256 the index holds for each segment (a damaged
// segment refuses the export, naming the file), the audit line, then the
// signed manifest.
func (e *Exporter) Create(ctx context.Context, req ExportRequest) (*ExportInfo, error) {
	if err := e.checkRequest(&req); err != nil {
		return nil, e.fail("bad_request", err)
	}
	ci := e.Recorder.index(req.Camera)
	if ci == nil {
		return nil, e.fail("no_recording", ErrUnknownCamera)
	}
	key, err := e.Key()
	if err != nil {
		return nil, e.fail("io", err)
	}
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	segs := e.Recorder.snapshot(req.Camera, ci, req.Start, req.End)
	if err := verifySegments(ctx, segs); err != nil {
		reason := "io"
		var ce *CorruptError
		if errors.As(err, &ce) {
			reason = "corrupt"
			e.Recorder.Metrics.errors.WithLabelValues(req.Camera, "corrupt").Inc()
		}
		return nil, e.fail(reason, err)
	}
	clips, err := buildClips(req, segs)
	if err != nil {
		reason := "corrupt"
		if errors.Is(err, ErrNoRecording) {
			reason = "no_recording"
		}
		return nil, e.fail(reason, err)
	}
	defer func() {
		for _, c := range clips {
			c.Close()
		}
	}()
	info, err := e.write(ctx, req, clips, key)
	if err != nil {
		return nil, err
	}
	e.Recorder.Metrics.exports.Inc()
	e.Log.Info("evidence export built", "id", info.ID, "camera", req.Camera, "principal", req.Principal,
		"start", FormatTime(req.Start), "end", FormatTime(req.End), "bytes", info.Size, "audit_seq", info.Manifest.AuditSeq)
	return info, nil
}

func (e *Exporter) checkRequest(req *ExportRequest) error {
	switch {
	case !cameraIDRe.MatchString(req.Camera):
		return ErrUnknownCamera
	case !req.End.After(req.Start):
		return fmt.Errorf("%w: end must be after start", ErrBadSpan)
	case req.End.Sub(req.Start) > MaxExport:
		return fmt.Errorf("%w: an export covers at most %s", ErrBadSpan, MaxExport)
	case req.Principal == "":
		return errors.New("an export needs the exporting principal")
	}
	if err := checkReason(req.Reason); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSpan, err)
	}
	if req.CameraName == "" {
		req.CameraName = req.Camera
	}
	return nil
}

// verifySegments re-reads every closed segment and compares its SHA-256
// with the one recorded when it was closed.
func verifySegments(ctx context.Context, segs []*segSnap) error {
	for _, s := range segs {
		if s.SHA256 == "" {
			continue // still being written: checked structurally when read
		}
		f, err := os.Open(s.path)
		if err != nil {
			return &CorruptError{File: s.rel, Reason: "cannot open: " + describe(err)}
		}
		h := sha256.New()
		n, err := io.Copy(h, io.NewSectionReader(f, 0, s.Bytes))
		f.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err != nil:
			return &CorruptError{File: s.rel, Reason: describe(err)}
		case n != s.Bytes:
			return &CorruptError{File: s.rel, Reason: fmt.Sprintf("%d bytes on disk, %d recorded", n, s.Bytes)}
		case hex.EncodeToString(h.Sum(nil)) != s.SHA256:
			return &CorruptError{File: s.rel, Reason: "its SHA-256 differs from the one recorded when it was written"}
		}
	}
	return nil
}

// buildClips makes one clip per continuous recording in the window.
func buildClips(req ExportRequest, segs []*segSnap) ([]*Clip, error) {
	var clips []*Clip
	b := &clipBuilder{from: req.Start, to: req.End}
	done := func() {
		if !b.empty() {
			clips = append(clips, b.finish(fmt.Sprintf("%s-%s.mp4", req.Camera, b.origin.UTC().Format(segNameLayout))))
		}
	}
	for i := 0; i < len(segs); i++ {
		err := b.addSegment(segs[i])
		switch {
		case err == nil, errors.Is(err, errNothingHere):
		case errors.Is(err, errBreak):
			done()
			b = &clipBuilder{from: req.Start, to: req.End}
			i-- // the segment starts the next clip
		default:
			for _, c := range clips {
				c.Close()
			}
			return nil, err
		}
	}
	done()
	if len(clips) == 0 {
		return nil, ErrNoRecording
	}
	return clips, nil
}

func (e *Exporter) auditor() Auditor {
	if e.Auditor == nil {
		return refuseAudit{}
	}
	return e.Auditor
}

// zipEntry stores r (no compression: evidence bytes stay as recorded) and
// returns its hex SHA-256.
func zipEntry(ctx context.Context, zw *zip.Writer, name string, mod time.Time, r io.Reader) (string, error) {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: mod.UTC()})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				return "", err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return "", rerr
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Open opens export id for reading and returns its manifest (for the
// caller's rights check on the camera).
func (e *Exporter) Open(id string) (*os.File, *Manifest, error) {
	if !exportIDRe.MatchString(id) {
		return nil, nil, os.ErrNotExist
	}
	f, err := os.Open(filepath.Join(e.Dir, id+".zip"))
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		var zr *zip.Reader
		if zr, err = zip.NewReader(f, fi.Size()); err == nil {
			rep := &VerifyReport{}
			entries := map[string]*zip.File{}
			for _, zf := range zr.File {
				entries[zf.Name] = zf
			}
			if b := readEntry(rep, entries, ManifestName, maxManifestSize); len(rep.Problems) == 0 {
				var m *Manifest
				if m, err = parseManifest(b); err == nil {
					return f, m, nil
				}
			} else {
				err = errors.New(rep.Problems[0])
			}
		}
	}
	f.Close()
	return nil, nil, fmt.Errorf("export %s is damaged: %w", id, err)
}
