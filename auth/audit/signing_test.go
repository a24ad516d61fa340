package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedLog opens a signed log in dir with a clock that advances 1 s per
// reading; evolve is the key lifetime.
func signedLog(t *testing.T, dir string, maxSize int64, evolve time.Duration) *Log {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := &Log{Path: filepath.Join(dir, "audit.log"), MaxSizeBytes: maxSize, Logger: quietLogger(), Now: clk.Now,
		Node: "gw1", KeyPath: filepath.Join(dir, "audit-signing.key"), KeyEvolve: evolve}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func recordsOf(t *testing.T, path string) []record {
	t.Helper()
	var out []record
	for i, line := range readLinesOf(t, path) {
		rec, err := parseLine([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		out = append(out, rec)
	}
	return out
}

func mustVerifyError(t *testing.T, err error, line int, reason string) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != line || !strings.Contains(ve.Reason, reason) {
		t.Fatalf("want line %d %q, got %v", line, reason, err)
	}
}

func TestSignedChainVerifies(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 0, time.Hour)
	pk := l.PublicKey()
	if pk == "" {
		t.Fatal("no public key")
	}
	if got, err := ReadPublicKey(filepath.Join(dir, "audit-signing.key")); err != nil || got != pk {
		t.Fatalf("ReadPublicKey %q %v", got, err)
	}
	appendN(t, l, 9)
	recs := recordsOf(t, l.Path)
	if recs[0].Key != pk || recs[0].Sig == "" || *recs[0].Node != "gw1" {
		t.Fatalf("first line %+v", recs[0])
	}
	for _, r := range recs[1:] {
		if r.Sig == "" || r.Key != "" {
			t.Fatalf("line %d: %+v", r.Seq, r)
		}
	}
	res, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: pk})
	if err != nil || res.Signed != 9 || res.Unsigned != 0 || res.GenesisKey != pk || res.KeysUsed != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	_, err = VerifyFileWith(l.Path, VerifyOptions{PublicKey: b64.EncodeToString(other.Public().(ed25519.PublicKey))})
	mustVerifyError(t, err, 1, "not the trusted public key")
	if _, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: "nope"}); err == nil {
		t.Fatal("bad --pubkey accepted")
	}
	st, _ := os.Stat(filepath.Join(dir, "audit-signing.key"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
}

// The attack of issue 10: delete a line, renumber, recompute every prev.
// Without the key the signatures no longer match; the first rewritten
// line is named.
func TestDeleteRenumberRecomputeIsDetected(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 0, time.Hour)
	appendN(t, l, 8)
	l.Close()
	lines := readLinesOf(t, l.Path)
	var out []string
	prev := ""
	for i, line := range lines {
		if i == 3 { // delete seq 4
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		seq := len(out) + 1
		line = strings.Replace(line, `{"seq":`+strconv.Itoa(int(m["seq"].(float64)))+`,`, `{"seq":`+strconv.Itoa(seq)+`,`, 1)
		line = strings.Replace(line, `"prev":"`+m["prev"].(string)+`"`, `"prev":"`+prev+`"`, 1)
		sum := sha256.Sum256([]byte(strings.TrimSuffix(line, "\n")))
		prev = hex.EncodeToString(sum[:])
		out = append(out, line)
	}
	writeLines(t, l.Path, out)
	_, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()})
	mustVerifyError(t, err, 4, "signature does not verify")
	// Stripping every signature to pass as an old unsigned log fails once
	// the operator's key is given.
	var stripped []string
	prev = ""
	for i, line := range readLinesOf(t, l.Path)[:3] {
		r := recordsOf(t, l.Path)[i]
		r.Key, r.Sig, r.Node, r.Source, r.Prev = "", "", nil, nil, prev
		b, _ := r.encode()
		prev = hashLine(b)
		_ = line
		stripped = append(stripped, string(b)+"\n")
	}
	writeLines(t, l.Path, stripped)
	// It is a well-formed hash chain (VerifyFile alone, the legacy check,
	// accepts it): requiring signatures (`cordon audit verify` does when it
	// knows the gateway's key, or with --require-signed) or the operator's
	// key refuses it.
	if _, err := VerifyFile(l.Path); err != nil {
		t.Fatalf("the stripped log is not even a chain: %v", err)
	}
	_, err = VerifyFileWith(l.Path, VerifyOptions{RequireSigned: true})
	mustVerifyError(t, err, 1, "no line is signed")
	_, err = VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()})
	mustVerifyError(t, err, 1, "no line is signed")
}

// Keys evolve (hourly and at rotation) and the old ones are erased: a
// copy of the key file taken later cannot re-sign older lines.
func TestKeyEvolutionIsForwardSecure(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 700, 5*time.Second) // the clock moves 1 s per reading
	appendN(t, l, 30)
	keyPath := filepath.Join(dir, "audit-signing.key")
	stolen, _, err := loadSigner(keyPath, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	res, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()})
	if err != nil || res.KeysUsed < 4 || res.Lines != 30 || len(res.Files) < 3 {
		t.Fatalf("%+v %v", res, err)
	}
	if stolen.cur.Public().(ed25519.PublicKey).Equal(stolen.genesis) || stolen.next != nil {
		t.Fatal("the genesis key is still on disk")
	}
	// Forge line 2 of the oldest file with the stolen (current) key.
	first := rotatedFiles(l.Path)[0]
	lines := readLinesOf(t, first)
	rec, _ := parseLine([]byte(strings.TrimSuffix(lines[1], "\n")))
	rec.Actor = "mallory"
	b, _ := rec.encode()
	lines[1] = string(withSig(b, stolen.sign(b))) + "\n"
	writeLines(t, first, lines)
	_, err = VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()})
	mustVerifyError(t, err, 2, "signature does not verify")
}

func TestSignedRestartAndMigration(t *testing.T) {
	dir := t.TempDir()
	// An unsigned (legacy) log written by an older version: no node.
	legacy := &Log{Path: filepath.Join(dir, "audit.log"), Logger: quietLogger()}
	if err := legacy.Initialize(); err != nil {
		t.Fatal(err)
	}
	appendN(t, legacy, 3)
	legacy.Close()
	var old []string
	for _, line := range readLinesOf(t, legacy.Path) {
		r, _ := parseLine([]byte(strings.TrimSuffix(line, "\n")))
		r.Node, r.Source = nil, nil
		if len(old) > 0 {
			r.Prev = hashLine([]byte(strings.TrimSuffix(old[len(old)-1], "\n")))
		}
		b, _ := r.encode()
		old = append(old, string(b)+"\n")
	}
	writeLines(t, legacy.Path, old)
	// Now signed: the chain continues and the genesis key covers the past.
	l := signedLog(t, dir, 0, time.Hour)
	appendN(t, l, 2)
	l.Close()
	l2 := signedLog(t, dir, 0, time.Hour) // a restart continues with the same key
	appendN(t, l2, 2)
	l2.Close()
	res, err := VerifyFileWith(l.Path, VerifyOptions{PublicKey: l.PublicKey()})
	if err != nil || res.Unsigned != 3 || res.Signed != 4 || res.KeysUsed != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	recs := recordsOf(t, l.Path)
	if recs[3].Key == "" || recs[5].Key != "" {
		t.Fatal("the key is introduced once, by the first signed line")
	}
	// Editing a legacy line now breaks the first signed line's link.
	lines := readLinesOf(t, l.Path)
	lines[1] = strings.Replace(lines[1], `"actor":"user1"`, `"actor":"userX"`, 1)
	writeLines(t, l.Path, lines)
	_, err = VerifyFile(l.Path)
	mustVerifyError(t, err, 2, "was modified")
	// A signature stripped after signing started.
	lines = readLinesOf(t, l.Path)
	lines[1] = old[1]
	r := recordsOf(t, l.Path)[5]
	r.Sig = ""
	b, _ := r.encode()
	lines[5] = string(b) + "\n"
	writeLines(t, l.Path, lines)
	_, err = VerifyFile(l.Path)
	mustVerifyError(t, err, 6, "unsigned line after signed lines")
}

// A lost key file starts a new key that the old one never announced:
// cordon keeps writing (fail-open would lose the audit trail; fail-closed
// would stop the gateway) and verify names the line.
func TestLostKeyFileIsReported(t *testing.T) {
	dir := t.TempDir()
	l := signedLog(t, dir, 0, time.Hour)
	appendN(t, l, 3)
	l.Close()
	if err := os.Remove(filepath.Join(dir, "audit-signing.key")); err != nil {
		t.Fatal(err)
	}
	l2 := signedLog(t, dir, 0, time.Hour)
	appendN(t, l2, 2)
	l2.Close()
	_, err := VerifyFile(l.Path)
	mustVerifyError(t, err, 4, "did not announce")
	// A key file from elsewhere (replaced) is noticed at start too.
	other := t.TempDir()
	o := signedLog(t, other, 0, time.Hour)
	appendN(t, o, 1)
	o.Close()
	data, _ := os.ReadFile(filepath.Join(other, "audit-signing.key"))
	if err := os.WriteFile(filepath.Join(dir, "audit-signing.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	l3 := signedLog(t, dir, 0, time.Hour)
	appendN(t, l3, 1)
	l3.Close()
	if r := recordsOf(t, l.Path); r[len(r)-1].Key == "" {
		t.Fatal("a replaced key file did not start a new (unendorsed) key")
	}
}

// The key file and the log agree after a crash between them.
func TestSignerReconcile(t *testing.T) {
	now := time.Now()
	a, _ := newKey()
	b, _ := newKey()
	path := filepath.Join(t.TempDir(), "k")
	mk := func(cur, next ed25519.PrivateKey) *signer {
		return &signer{path: path, genesis: pub(a), cur: cur, next: next, since: now}
	}
	line := func(k ed25519.PrivateKey, nextKey string) (*record, []byte) {
		node := "n"
		r := &record{Seq: 5, Time: "2026-01-02T03:04:05.000000Z", Node: &node, Event: LoginOK, Source: &node, NextKey: nextKey}
		enc, _ := r.encode()
		l := withSig(enc, ed25519.Sign(k, enc))
		rec, err := parseLine(l)
		if err != nil {
			t.Fatal(err)
		}
		return &rec, l
	}
	// Crash after the next key was saved, before the line announcing it.
	s := mk(a, b)
	r, l := line(a, "")
	if p, err := s.reconcile(r, l, now); p != "" || err != nil || !s.cur.Equal(a) || s.next != nil {
		t.Fatalf("unannounced next: %q %v", p, err)
	}
	// Crash after the announcing line, before the promotion was saved.
	s = mk(a, b)
	r, l = line(a, b64.EncodeToString(pub(b)))
	if p, err := s.reconcile(r, l, now); p != "" || err != nil || !s.cur.Equal(b) || s.next != nil {
		t.Fatalf("announced next: %q %v", p, err)
	}
	// Already promoted.
	s = mk(b, nil)
	if p, err := s.reconcile(r, l, now); p != "" || err != nil || !s.cur.Equal(b) {
		t.Fatalf("promoted: %q %v", p, err)
	}
	// A key that signed nothing here.
	s = mk(b, nil)
	r, l = line(a, "")
	if p, err := s.reconcile(r, l, now); p == "" || err != nil || s.cur.Equal(b) || !s.intro {
		t.Fatalf("foreign key: %q %v", p, err)
	}
}

func TestKeyFileDirectoryCreated(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Path: filepath.Join(dir, "audit.log"), Logger: quietLogger(), KeyPath: filepath.Join(dir, "state", "sub", "audit-signing.key")}
	if err := l.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(filepath.Join(dir, "state", "sub"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("%v %v", st, err)
	}
}
