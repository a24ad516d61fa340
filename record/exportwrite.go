package record

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cordon/internal/durable"
)

// Names of exports being built: tmpPrefix before their audit line may
// exist, pendingPrefix from just before it is written until the ZIP is
// renamed to <id>.zip. A pending file left by a crash names an export
// that may have been audited but does not exist: Initialize audits that.
const (
	tmpPrefix     = ".tmp-"
	pendingPrefix = ".pending-"
)

// zipBuild is an export ZIP being written.
type zipBuild struct {
	id   string
	f    *os.File
	zw   *zip.Writer
	now  time.Time
	m    Manifest
	path string // where f is now
}

// write builds the ZIP: the clips and the signer's public key into a
// temporary file (everything that can fail on the recordings fails here,
// before anything is audited), then the audit line (whose seq goes into
// the manifest), then the signed manifest, and renames the ZIP into place.
// A failure after the audit line is audited too (a second `export` line
// naming the id and why it does not exist), so the trail never names an
// export that silently is not there.
func (e *Exporter) write(ctx context.Context, req ExportRequest, clips []*Clip, key ed25519.PrivateKey) (*ExportInfo, error) {
	b, err := e.begin(ctx, req, clips, key)
	if err != nil {
		return nil, e.fail("io", err)
	}
	pending := filepath.Join(e.Dir, pendingPrefix+b.id+".zip")
	if err := os.Rename(b.path, pending); err != nil {
		b.abort()
		return nil, e.fail("io", err)
	}
	b.path = pending
	seq, err := e.auditor().Export(ExportAudit{
		Principal: req.Principal, Remote: req.Remote, Camera: req.Camera, ID: b.id, Reason: req.Reason,
		Start: req.Start, End: req.End, Files: b.m.Files,
	})
	if err != nil {
		b.abort()
		return nil, e.fail("audit", fmt.Errorf("export refused: %w: %w", ErrAuditUnavailable, err))
	}
	b.m.AuditSeq = seq
	info, err := e.finish(ctx, b, key)
	if err != nil {
		b.abort()
		e.auditFailure(req, b.id, err)
		return nil, e.fail("io", fmt.Errorf("export %s failed after it was audited (the failure is audited too): %w", b.id, err))
	}
	return info, nil
}

// begin creates the temporary ZIP and writes the clips and the signer's
// public key into it.
func (e *Exporter) begin(ctx context.Context, req ExportRequest, clips []*Clip, key ed25519.PrivateKey) (*zipBuild, error) {
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	b := &zipBuild{id: hex.EncodeToString(idb[:]), now: e.Recorder.clock.Now()}
	b.path = filepath.Join(e.Dir, tmpPrefix+b.id+".zip")
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	b.f, b.zw = f, zip.NewWriter(f)
	b.m = Manifest{
		Camera: ManifestCamera{ID: req.Camera, Name: req.CameraName},
		Start:  FormatTime(req.Start), End: FormatTime(req.End),
		Principal: req.Principal, Reason: req.Reason, Node: e.Node, CordonVersion: e.Version,
	}
	for _, c := range clips {
		sum, err := zipEntry(ctx, b.zw, c.Name, b.now, c)
		if err != nil {
			b.abort()
			return nil, err
		}
		b.m.Files = append(b.m.Files, ManifestFile{Name: c.Name, SHA256: sum})
	}
	pubPEM := PublicKeyPEM(key.Public().(ed25519.PublicKey))
	sum, err := zipEntry(ctx, b.zw, SignerName, b.now, strings.NewReader(string(pubPEM)))
	if err != nil {
		b.abort()
		return nil, err
	}
	b.m.Files = append(b.m.Files, ManifestFile{Name: SignerName, SHA256: sum})
	return b, nil
}

// finish signs the manifest, completes and syncs the ZIP and renames it
// to <id>.zip.
func (e *Exporter) finish(ctx context.Context, b *zipBuild, key ed25519.PrivateKey) (*ExportInfo, error) {
	mb, _ := json.MarshalIndent(b.m, "", "  ")
	mb = append(mb, '\n')
	sig := ed25519.Sign(key, mb)
	if _, err := zipEntry(ctx, b.zw, ManifestName, b.now, strings.NewReader(string(mb))); err != nil {
		return nil, err
	}
	if _, err := zipEntry(ctx, b.zw, SignatureName, b.now, strings.NewReader(string(sig))); err != nil {
		return nil, err
	}
	err := b.zw.Close()
	if err == nil {
		err = b.f.Sync()
	}
	if cerr := b.f.Close(); err == nil {
		err = cerr
	}
	b.f = nil
	path := filepath.Join(e.Dir, b.id+".zip")
	if err == nil {
		err = os.Rename(b.path, path)
	}
	if err != nil {
		return nil, err
	}
	b.path = ""
	durable.SyncDir(e.Dir)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &ExportInfo{ID: b.id, Path: path, Size: fi.Size(), Manifest: b.m}, nil
}

// abort closes and removes what was built.
func (b *zipBuild) abort() {
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
	if b.path != "" {
		os.Remove(b.path)
		b.path = ""
	}
}

// auditFailure writes the `export` line that says export id, audited
// before, failed and does not exist.
func (e *Exporter) auditFailure(req ExportRequest, id string, cause error) {
	_, err := e.auditor().Export(ExportAudit{
		Principal: req.Principal, Remote: req.Remote, Camera: req.Camera, ID: id, Reason: req.Reason,
		Start: req.Start, End: req.End, Failed: describe(cause),
	})
	if err != nil {
		e.Log.Error("an audited export failed, and its failure cannot be audited", "id", id, "cause", describe(cause), "err", err)
	}
}

// recoverPending audits the exports a crash left between their audit line
// and their rename (pending files), then removes them; one whose failure
// cannot be audited yet is kept for the next start.
func (e *Exporter) recoverPending() {
	pending, _ := filepath.Glob(filepath.Join(e.Dir, pendingPrefix+"*.zip"))
	for _, p := range pending {
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), pendingPrefix), ".zip")
		if !exportIDRe.MatchString(id) {
			continue
		}
		_, err := e.auditor().Export(ExportAudit{ID: id,
			Failed: "interrupted: cordon stopped while building it; no export file was kept"})
		if err != nil {
			e.Log.Warn("an export interrupted by a crash cannot be audited yet; kept until the next start", "id", id, "err", err)
			continue
		}
		os.Remove(p)
		e.Log.Warn("an export interrupted by a crash was audited as failed and removed", "id", id)
	}
}
