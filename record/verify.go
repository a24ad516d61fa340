package record

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Manifest is manifest.json of an evidence export (CONTRACT "Recording
// and evidence"), signed by manifest.sig.
type Manifest struct {
	Camera        ManifestCamera `json:"camera"`
	Start         string         `json:"start"`
	End           string         `json:"end"`
	Principal     string         `json:"principal"`
	Reason        string         `json:"reason"`
	Node          string         `json:"node"`
	AuditSeq      uint64         `json:"audit_seq"`
	CordonVersion string         `json:"cordon_version"`
	Files         []ManifestFile `json:"files"`
}

// ManifestCamera names the exported camera.
type ManifestCamera struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ManifestFile is one file of the export and its hex SHA-256.
type ManifestFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// Names of the fixed files of an export.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	SignerName    = "signer.pub"
)

// Bounds on what verification reads from an untrusted file.
const (
	maxZipEntries   = 10_000
	maxManifestSize = 1 << 20
	maxSignerSize   = 4096
)

// VerifyReport is the outcome of VerifyExport. Problems is empty when the
// export is intact; each problem names what differs.
type VerifyReport struct {
	Fingerprint string    // of the key in signer.pub ("" if unreadable)
	Manifest    *Manifest // nil if unreadable
	Checked     []ManifestFile
	SignatureOK bool
	Problems    []string
}

// OK reports whether nothing differs.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

func (r *VerifyReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// VerifyExport checks an export's signature and hashes offline. With
// trusted set, the export must also be signed by that key. The error is
// for files that are not exports at all (unreadable, not a ZIP).
func VerifyExport(zr *zip.Reader, trusted ed25519.PublicKey) (*VerifyReport, error) {
	rep := &VerifyReport{}
	if len(zr.File) > maxZipEntries {
		return nil, errors.New("too many files in the ZIP")
	}
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := entries[f.Name]; dup {
			rep.problem("%s: appears twice in the ZIP", f.Name)
		}
		entries[f.Name] = f
	}
	manifest := readEntry(rep, entries, ManifestName, maxManifestSize)
	sig := readEntry(rep, entries, SignatureName, ed25519.SignatureSize+1)
	signer := readEntry(rep, entries, SignerName, maxSignerSize)
	var pub ed25519.PublicKey
	if signer != nil {
		var err error
		if pub, err = ParsePublicKeyPEM(signer); err != nil {
			rep.problem("%s: not an Ed25519 public key: %v", SignerName, err)
		} else {
			rep.Fingerprint = Fingerprint(pub)
		}
	}
	if pub != nil && trusted != nil && !pub.Equal(trusted) {
		rep.problem("%s: the export was signed by key %s, not by the given key %s", SignerName, rep.Fingerprint, Fingerprint(trusted))
	}
	if pub != nil && manifest != nil && sig != nil {
		switch {
		case len(sig) != ed25519.SignatureSize:
			rep.problem("%s: %d bytes, an Ed25519 signature has %d", SignatureName, len(sig), ed25519.SignatureSize)
		case ed25519.Verify(pub, manifest, sig):
			rep.SignatureOK = true
		default:
			rep.problem("%s: the signature does not match %s (the manifest or the signature was changed)", SignatureName, ManifestName)
		}
	}
	if manifest != nil {
		m, err := parseManifest(manifest)
		if err != nil {
			rep.problem("%s: not a valid manifest: %v", ManifestName, err)
		} else {
			rep.Manifest = m
			checkFiles(rep, m, entries)
		}
	}
	return rep, nil
}

// readEntry reads a small fixed file of the export, noting problems.
func readEntry(rep *VerifyReport, entries map[string]*zip.File, name string, limit int64) []byte {
	f := entries[name]
	if f == nil {
		rep.problem("%s: missing from the ZIP", name)
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		rep.problem("%s: cannot be read: %v", name, err)
		return nil
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	switch {
	case errors.Is(err, zip.ErrChecksum):
		rep.problem("%s: its bytes do not match the ZIP's own checksum: changed after the export was written", name)
		return b
	case err != nil:
		rep.problem("%s: cannot be read: %v", name, err)
		return nil
	case int64(len(b)) > limit:
		rep.problem("%s: larger than %d bytes", name, limit)
		return nil
	}
	return b
}

func parseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	if m.Camera.ID == "" || m.Start == "" || m.End == "" || len(m.Files) == 0 {
		return nil, errors.New("camera, start, end or files missing")
	}
	return &m, nil
}

// checkFiles compares every listed file's SHA-256 and makes sure nothing
// unlisted is in the ZIP.
func checkFiles(rep *VerifyReport, m *Manifest, entries map[string]*zip.File) {
	listed := map[string]bool{ManifestName: true, SignatureName: true}
	for _, mf := range m.Files {
		if listed[mf.Name] {
			rep.problem("%s: listed twice in %s", mf.Name, ManifestName)
			continue
		}
		listed[mf.Name] = true
		f := entries[mf.Name]
		if f == nil {
			rep.problem("%s: listed in %s but missing from the ZIP", mf.Name, ManifestName)
			continue
		}
		got, err := hashEntry(f)
		switch {
		case errors.Is(err, zip.ErrChecksum):
			rep.problem("%s: its bytes do not match the ZIP's own checksum: changed after the export was written", mf.Name)
		case err != nil:
			rep.problem("%s: cannot be read: %v", mf.Name, err)
		case !strings.EqualFold(got, mf.SHA256):
			rep.problem("%s: SHA-256 is %s, %s says %s", mf.Name, got, ManifestName, mf.SHA256)
		default:
			rep.Checked = append(rep.Checked, ManifestFile{Name: mf.Name, SHA256: got})
		}
	}
	var extra []string
	for name := range entries {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		rep.problem("%s: in the ZIP but not listed in %s", name, ManifestName)
	}
}

func hashEntry(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return hex.EncodeToString(h.Sum(nil)), err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
