package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"cordon/internal/durable"
)

// DefaultKeyEvolve is how long one signing key signs before the log
// moves to a fresh one and erases it (see the package doc: a root
// attacker who reads the key file can forge at most the lines of the key
// in use, never older ones).
const DefaultKeyEvolve = time.Hour

// keyFile is the signing key state on disk (mode 0600, in state_dir).
type keyFile struct {
	Version int    `json:"v"`
	Genesis string `json:"genesis"`        // public key of the chain's first signing key (base64url)
	Current string `json:"current"`        // seed of the key signing now (base64url)
	Next    string `json:"next,omitempty"` // seed of a key being announced (crash safety)
	Since   string `json:"since"`          // when Current started signing (RFC 3339)
}

// signer holds the chain's signing keys.
type signer struct {
	path    string
	genesis ed25519.PublicKey
	cur     ed25519.PrivateKey
	next    ed25519.PrivateKey
	since   time.Time
	intro   bool // the next line introduces cur ("key")
}

func newKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating audit signing key: %w", err)
	}
	return k, nil
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// loadSigner reads the key state at path, or creates a new chain key
// (created = true) when there is none.
func loadSigner(path string, now time.Time) (s *signer, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("creating the audit signing key's directory: %w", err)
		}
		k, err := newKey()
		if err != nil {
			return nil, false, err
		}
		s := &signer{path: path, genesis: pub(k), cur: k, since: now, intro: true}
		return s, true, s.save()
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading audit signing key: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("audit signing key %s is readable by other users (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Version != 1 {
		return nil, false, fmt.Errorf("audit signing key %s is not a cordon key file", path)
	}
	s = &signer{path: path}
	g, err1 := b64.DecodeString(kf.Genesis)
	cur, err2 := seedKey(kf.Current)
	since, err3 := time.Parse(time.RFC3339Nano, kf.Since)
	if err1 != nil || len(g) != ed25519.PublicKeySize || err2 != nil || err3 != nil {
		return nil, false, fmt.Errorf("audit signing key %s is damaged", path)
	}
	s.genesis, s.cur, s.since = g, cur, since
	if kf.Next != "" {
		if s.next, err = seedKey(kf.Next); err != nil {
			return nil, false, fmt.Errorf("audit signing key %s is damaged", path)
		}
	}
	return s, false, nil
}

func seedKey(s string) (ed25519.PrivateKey, error) {
	b, err := b64.DecodeString(s)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, errors.New("bad seed")
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// save writes the state atomically (temporary file, fsync, rename, dir
// fsync). The previous key is erased from the file by the rename.
func (s *signer) save() error {
	kf := keyFile{Version: 1, Genesis: b64.EncodeToString(s.genesis), Current: b64.EncodeToString(s.cur.Seed()),
		Since: s.since.UTC().Format(time.RFC3339Nano)}
	if s.next != nil {
		kf.Next = b64.EncodeToString(s.next.Seed())
	}
	b, _ := json.Marshal(kf)
	return writeFileAtomic(s.path, append(b, '\n'))
}

// reconcile matches the key state with the log's last line (crash
// between the key file and the log). It reports a problem that makes the
// chain unendorsed from here on (the caller logs it loudly).
func (s *signer) reconcile(last *record, line []byte, now time.Time) (problem string, err error) {
	switch {
	case last == nil || last.Sig == "":
		s.intro = true // nothing signed here yet (new or legacy log)
		if s.next != nil {
			s.next = nil
			return "", s.save()
		}
		return "", nil
	case last.NextKey != "":
		nk, _ := b64.DecodeString(last.NextKey)
		switch {
		case s.next != nil && pub(s.next).Equal(ed25519.PublicKey(nk)):
			s.cur, s.next, s.since = s.next, nil, now
			return "", s.save()
		case pub(s.cur).Equal(ed25519.PublicKey(nk)):
			return "", nil
		}
	default:
		msg, _ := signedPart(line, last.Sig)
		sig, _ := b64.DecodeString(last.Sig)
		if ed25519.Verify(pub(s.cur), msg, sig) {
			if s.next != nil { // announced never: forget it
				s.next = nil
				return "", s.save()
			}
			return "", nil
		}
	}
	k, err := newKey()
	if err != nil {
		return "", err
	}
	s.cur, s.next, s.since, s.intro = k, nil, now, true
	return "the signing key in the key file did not sign the log's last line (key file replaced or lost); a new key starts here and `cordon audit verify` will report this line as not endorsed", s.save()
}

// sign signs an encoded line (without sig).
func (s *signer) sign(line []byte) []byte { return ed25519.Sign(s.cur, line) }

// ReadPublicKey returns the genesis public key (base64url) of the audit
// chain whose key file is keyPath: the value to record off the box and to
// pass to `cordon audit verify --pubkey`.
func ReadPublicKey(keyPath string) (string, error) {
	s, _, err := loadSignerReadOnly(keyPath)
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(s.genesis), nil
}

func loadSignerReadOnly(path string) (*signer, bool, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, false, fmt.Errorf("audit signing key: %w", err)
	}
	return loadSigner(path, time.Now())
}

// KeyFingerprint is a short, comparable form of a public key: the first
// 16 bytes of its SHA-256, hex.
func KeyFingerprint(pubB64 string) string {
	b, err := b64.DecodeString(pubB64)
	if err != nil {
		return "invalid"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// writeFileAtomic replaces path with data (mode 0600) durably.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := errors.Join(tmp.Chmod(0o600), write(tmp, data), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	durable.SyncDir(dir)
	return nil
}

func write(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

func (l *Log) initSigner(last *record, line []byte) error {
	s, created, err := loadSigner(l.KeyPath, l.now())
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	pk := b64.EncodeToString(s.genesis)
	switch {
	case created && last != nil && last.Sig != "":
		l.logger().Error("the audit signing key is missing: a new one starts here and `cordon audit verify` will report the next line as not endorsed",
			"key_path", l.KeyPath, "public_key", pk)
	case created:
		l.logger().Warn("audit signing key created: record this public key off the gateway and give it to `cordon audit verify --pubkey`",
			"key_path", l.KeyPath, "public_key", pk, "fingerprint", KeyFingerprint(pk))
	default:
		problem, err := s.reconcile(last, line, l.now())
		if err != nil {
			return fmt.Errorf("audit: signing key: %w", err)
		}
		if problem != "" {
			l.logger().Error(problem, "key_path", l.KeyPath)
		}
	}
	l.signer = s
	return nil
}

// line builds the next line (signed when a signer is set). Called with
// l.mu held.
func (l *Log) line(e Event) ([]byte, error) {
	node := l.node
	rec := record{
		Seq:      l.seq + 1,
		Time:     l.now().UTC().Format(TimeFormat),
		Node:     &node,
		Event:    e.Event,
		Actor:    clip(e.Actor, maxFieldLen),
		Camera:   clip(e.Camera, maxFieldLen),
		Remote:   clip(e.Remote, maxFieldLen),
		Protocol: clip(e.Protocol, maxFieldLen),
		Detail:   clip(e.Detail, maxDetailLen),
		Prev:     l.lastHash,
	}
	if hasSource(e.Event) {
		src := e.Source
		if !validSource(src) {
			src = "local"
		}
		rec.Source = &src
	}
	if e.Event == ViewEnd {
		d, b := e.DurationS, e.Bytes
		rec.DurationS, rec.Bytes = &d, &b
	}
	s := l.signer
	if s != nil {
		switch {
		case s.intro:
			rec.Key = b64.EncodeToString(pub(s.cur))
		case l.evolve || !l.now().Before(s.since.Add(l.KeyEvolve)) || s.next != nil:
			if s.next == nil {
				k, err := newKey()
				if err != nil {
					return nil, err
				}
				s.next = k
				if err := s.save(); err != nil { // the new key is durable before it is announced
					s.next = nil
					return nil, l.fail("saving the signing key", err)
				}
			}
			rec.NextKey = b64.EncodeToString(pub(s.next))
		}
	}
	line, err := rec.encode()
	if err != nil { // NaN duration and the like
		return nil, fmt.Errorf("audit: encoding event: %w", err)
	}
	if s != nil {
		line = withSig(line, s.sign(line))
	}
	return line, nil
}

// signed moves the signer on after a line was written: an introduced key
// is known, an announced key replaces (and erases) the one that
// announced it. Called with l.mu held.
func (l *Log) signed() {
	s := l.signer
	if s == nil {
		return
	}
	s.intro = false
	if s.next == nil {
		return
	}
	s.cur, s.next, s.since = s.next, nil, l.now()
	l.evolve = false
	if err := s.save(); err != nil {
		// The line announcing the new key is durable; at the next start
		// the key file's pending key is promoted. Until a save succeeds
		// the old key stays on disk.
		l.logger().Error("could not erase the previous audit signing key", "key_path", l.KeyPath, "err", err)
	}
}
