package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
)

// VerifyError names the first line that breaks the chain.
type VerifyError struct {
	File   string
	Line   int // 1-based line number within File
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Reason)
}

// Result summarizes a verified chain.
type Result struct {
	Files    []string // in the order verified (the anchor file first, if any)
	Lines    int
	FirstSeq uint64 // 0 when there are no lines
	LastSeq  uint64
	LastHash string // hex SHA-256 of the last line: anchor it externally
	Signed   int    // lines with a valid signature
	Unsigned int    // lines written before the log was signed
	// GenesisKey is the chain's first signing key (base64url), "" when no
	// line is signed. Compare it with the one recorded at installation
	// (or pass it as VerifyOptions.PublicKey).
	GenesisKey string
	KeysUsed   int // signing keys seen (the key changes hourly and at rotation)
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// PublicKey (base64url), when set, must be the chain's genesis key:
	// a log rewritten from the start with another key, or stripped of its
	// signatures, is refused.
	PublicKey string
	// RequireSigned refuses a chain without any signed line.
	RequireSigned bool
}

// Verify checks the given files as one chain, in the order given (oldest
// first): JSON shape of every line, seq continuity and prev hashes, also
// across files, and signatures. The first line of the first file is
// checked only as far as possible: if its seq is 1 its prev must be "",
// otherwise its prev cannot be checked without the predecessor file (and
// its signature only if it introduces its key). It returns the first
// broken line (1-based) and its file, or 0, "" and nil.
func Verify(paths ...string) (badLine int, badFile string, err error) {
	st := &chainState{}
	_, err = st.run(paths)
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Line, ve.File, err
	}
	return 0, "", err
}

// VerifyFile verifies path together with its rotated predecessors
// (path.1, path.2, ... oldest first, as Log writes them) and, when
// retention deleted older files, the anchor file (path.anchor); the chain
// must start at seq 1. The error is a *VerifyError when the chain is
// broken.
func VerifyFile(path string) (Result, error) { return VerifyFileWith(path, VerifyOptions{}) }

// VerifyFileWith is VerifyFile with options.
func VerifyFileWith(path string, o VerifyOptions) (Result, error) {
	st := &chainState{strict: true, opts: o}
	if o.PublicKey != "" {
		k, err := b64.DecodeString(o.PublicKey)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return Result{}, errors.New("the public key must be a base64url Ed25519 public key (as `cordon audit pubkey` prints it)")
		}
		st.trusted = k
	}
	paths := append(rotatedFiles(path), path)
	if err := st.anchor(path+AnchorSuffix, paths[0]); err != nil {
		return st.res, err
	}
	res, err := st.run(paths)
	if err == nil && (o.RequireSigned || st.trusted != nil) && res.Signed == 0 {
		err = &VerifyError{path, 1, "no line is signed"}
	}
	return res, err
}

type lineRef struct {
	file string
	line int
	seq  uint64
}

// pendingBreak is a prev mismatch at line "at" awaiting one line of
// lookahead to tell whether "at" or the line before it was modified.
type pendingBreak struct {
	at, before lineRef
	atHash     string
}

type chainState struct {
	started bool
	last    lineRef // last accepted line
	hash    string  // its hash
	res     Result
	strict  bool
	opts    VerifyOptions
	trusted ed25519.PublicKey
	pending *pendingBreak
	key     ed25519.PublicKey // the key signing the next line
	signed  bool              // a signed line was seen
}

func (st *chainState) run(paths []string) (Result, error) {
	for _, p := range paths {
		if err := st.verifyFile(p); err != nil {
			return st.res, err
		}
	}
	if st.pending != nil {
		// The mismatching line is the last one. The record before it is
		// the likelier culprit (rewriting the last line's prev gains an
		// attacker nothing), so report that one.
		return st.res, st.pending.modifiedBefore()
	}
	return st.res, nil
}

// anchor reads the anchor file (if any): the key lines and last lines of
// files retention deleted. Only its lines before the first kept file
// count (a crash may leave them duplicated there).
func (st *chainState) anchor(anchorPath, firstFile string) error {
	f, err := os.Open(anchorPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	limit := ^uint64(0)
	if line, err := firstLineOfFile(firstFile); err == nil && line != nil {
		if rec, err := parseLine(line); err == nil {
			limit = rec.Seq
		}
	}
	st.res.Files = append(st.res.Files, anchorPath)
	return readLines(f, func(n int, line []byte, complete bool) error {
		if !complete {
			return &VerifyError{anchorPath, n, "incomplete line in the anchor file"}
		}
		rec, err := parseLine(line)
		if err != nil {
			return &VerifyError{anchorPath, n, err.Error()}
		}
		if rec.Seq >= limit {
			return nil
		}
		switch {
		case !st.started && st.strict && rec.Seq != 1:
			return &VerifyError{anchorPath, n, fmt.Sprintf("chain starts at seq %d: earlier records are missing", rec.Seq)}
		case st.started && rec.Seq <= st.last.seq:
			return &VerifyError{anchorPath, n, fmt.Sprintf("seq %d follows %d in the anchor file", rec.Seq, st.last.seq)}
		}
		if err := st.checkSig(anchorPath, n, line, &rec); err != nil {
			return err
		}
		if !st.started {
			st.res.FirstSeq = rec.Seq
		}
		st.started = true
		st.last, st.hash = lineRef{anchorPath, n, rec.Seq}, hashLine(line)
		return nil
	})
}

func (st *chainState) verifyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	st.res.Files = append(st.res.Files, path)
	return readLines(f, func(n int, line []byte, complete bool) error {
		if line == nil && !complete {
			return &VerifyError{path, n, fmt.Sprintf("line longer than %d bytes", maxLineLen)}
		}
		if !complete {
			return &VerifyError{path, n, "incomplete last line (no newline): torn write or truncation"}
		}
		return st.check(path, n, line)
	})
}

func (st *chainState) check(file string, n int, line []byte) error {
	rec, err := parseLine(line)
	if err != nil {
		return &VerifyError{file, n, err.Error()}
	}
	h := hashLine(line)
	if p := st.pending; p != nil {
		// If this line chains to the mismatching one, that one is intact
		// and the record before it was modified; otherwise the
		// mismatching line itself was.
		if rec.Prev == p.atHash && rec.Seq == p.at.seq+1 {
			return p.modifiedBefore()
		}
		return p.modifiedAt()
	}
	switch {
	case !st.started:
		if st.strict && rec.Seq != 1 {
			return &VerifyError{file, n, fmt.Sprintf("chain starts at seq %d: earlier records (older rotated files) are missing", rec.Seq)}
		}
		if rec.Seq == 1 && rec.Prev != "" {
			return &VerifyError{file, n, "first record (seq 1) must have an empty prev"}
		}
		if rec.Seq != 1 && rec.Prev == "" {
			return &VerifyError{file, n, fmt.Sprintf("empty prev on seq %d", rec.Seq)}
		}
		st.res.FirstSeq = rec.Seq
	case rec.Seq > st.last.seq+1:
		return &VerifyError{file, n, fmt.Sprintf("seq %d follows %d: records deleted or reordered", rec.Seq, st.last.seq)}
	case rec.Seq <= st.last.seq:
		return &VerifyError{file, n, fmt.Sprintf("seq %d follows %d: records reordered or duplicated", rec.Seq, st.last.seq)}
	case rec.Prev != st.hash:
		st.pending = &pendingBreak{at: lineRef{file, n, rec.Seq}, before: st.last, atHash: h}
	}
	if err := st.checkSig(file, n, line, &rec); err != nil {
		return err
	}
	st.started = true
	st.last, st.hash = lineRef{file, n, rec.Seq}, h
	st.res.Lines++
	st.res.LastSeq, st.res.LastHash = rec.Seq, h
	return nil
}

// checkSig checks a line's signature against the key chain: the genesis
// line introduces its key (which must be the trusted one when given),
// each key announces its successor, and no unsigned line may follow a
// signed one.
func (st *chainState) checkSig(file string, n int, line []byte, rec *record) error {
	if rec.Sig == "" {
		if st.signed {
			return &VerifyError{file, n, "unsigned line after signed lines: its signature was removed or the line was inserted"}
		}
		st.res.Unsigned++
		return nil
	}
	if rec.Key != "" {
		k, _ := b64.DecodeString(rec.Key)
		switch {
		case st.key != nil:
			return &VerifyError{file, n, "introduces a signing key the previous key did not announce (key file lost or replaced, or lines forged)"}
		case st.trusted != nil && !st.trusted.Equal(ed25519.PublicKey(k)):
			return &VerifyError{file, n, fmt.Sprintf("the chain's first signing key (fingerprint %s) is not the trusted public key (fingerprint %s)",
				KeyFingerprint(rec.Key), KeyFingerprint(b64.EncodeToString(st.trusted)))}
		}
		st.key, st.res.GenesisKey = k, rec.Key
		st.res.KeysUsed++
	}
	if st.key == nil {
		return &VerifyError{file, n, "signed by a key introduced in an earlier file that is not here (verify from the first file, or keep the .anchor file)"}
	}
	msg, _ := signedPart(line, rec.Sig)
	sig, _ := b64.DecodeString(rec.Sig)
	if !ed25519.Verify(st.key, msg, sig) {
		return &VerifyError{file, n, fmt.Sprintf("record seq %d: signature does not verify (line modified or forged)", rec.Seq)}
	}
	if rec.NextKey != "" {
		k, _ := b64.DecodeString(rec.NextKey)
		st.key = k
		st.res.KeysUsed++
	}
	st.signed = true
	st.res.Signed++
	return nil
}

func (p *pendingBreak) modifiedBefore() error {
	return &VerifyError{p.before.file, p.before.line,
		fmt.Sprintf("record seq %d was modified: its hash does not match the next record's prev", p.before.seq)}
}

func (p *pendingBreak) modifiedAt() error {
	return &VerifyError{p.at.file, p.at.line,
		fmt.Sprintf("prev does not match the hash of the previous record (seq %d): records modified", p.before.seq)}
}
