package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"cordon/internal/durable"
)

const revokedFileName = "revoked-tokens"

// revocations is the set of revoked token ids with their expiry, kept in
// memory and in an append-only file "<jti> <exp unix>\n" in the state dir.
// At start the file is loaded and rewritten without expired entries.
type revocations struct {
	mu   sync.RWMutex
	path string
	f    *os.File
	m    map[string]time.Time
}

func openRevocations(dir string, now time.Time) (*revocations, int, error) {
	r := &revocations{path: filepath.Join(dir, revokedFileName), m: map[string]time.Time{}}
	b, err := os.ReadFile(r.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("reading revocations: %w", err)
	}
	loaded := 0
	// A final line without newline was never acknowledged (torn write).
	if i := bytes.LastIndexByte(b, '\n'); i+1 < len(b) {
		b = b[:i+1]
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		jti, expStr, ok := bytes.Cut(sc.Bytes(), []byte{' '})
		exp, err := strconv.ParseInt(string(expStr), 10, 64)
		if !ok || err != nil || !isHex(string(jti), jtiHexLength) {
			return nil, 0, fmt.Errorf("revocations file %s: line %d is malformed", r.path, n)
		}
		loaded++
		if t := time.Unix(exp, 0); t.Add(tokenLeeway).After(now) {
			r.m[string(jti)] = t
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("reading revocations: %w", err)
	}
	if err := r.rewrite(); err != nil {
		return nil, 0, err
	}
	return r, loaded - len(r.m), nil
}

// rewrite replaces the file with the current entries and opens it for
// appending.
func (r *revocations) rewrite() error {
	tmp, err := os.CreateTemp(filepath.Dir(r.path), ".revoked-*")
	if err != nil {
		return fmt.Errorf("rewriting revocations: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	w := bufio.NewWriter(tmp)
	for jti, exp := range r.m {
		fmt.Fprintf(w, "%s %d\n", jti, exp.Unix())
	}
	err = errors.Join(w.Flush(), tmp.Chmod(0o600), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("rewriting revocations: %w", err)
	}
	if err := os.Rename(tmp.Name(), r.path); err != nil {
		return fmt.Errorf("rewriting revocations: %w", err)
	}
	durable.SyncDir(filepath.Dir(r.path))
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening revocations: %w", err)
	}
	r.f = f
	return nil
}

// revoke marks jti revoked until exp, in memory first (effective at once,
// even if persisting fails), then durably on disk.
func (r *revocations) revoke(jti string, exp, now time.Time) error {
	_, err := r.add(jti, exp, now)
	return err
}

// add is revoke, reporting whether jti was not revoked before.
func (r *revocations) add(jti string, exp, now time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.m { // prune: the set stays as small as live tokens
		if e.Add(tokenLeeway).Before(now) {
			delete(r.m, id)
		}
	}
	if _, done := r.m[jti]; done {
		return false, nil
	}
	r.m[jti] = exp
	if r.f == nil {
		return true, errors.New("revocations file is closed")
	}
	if _, err := fmt.Fprintf(r.f, "%s %d\n", jti, exp.Unix()); err != nil {
		return true, fmt.Errorf("persisting revocation: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		return true, fmt.Errorf("persisting revocation: %w", err)
	}
	return true, nil
}

func (r *revocations) revoked(jti string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.m[jti]
	return ok
}

func (r *revocations) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
}
