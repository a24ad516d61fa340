package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"
	"unicode/utf8"
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
	Files    []string // in the order verified
	Lines    int
	FirstSeq uint64 // 0 when there are no lines
	LastSeq  uint64
	LastHash string // hex SHA-256 of the last line: anchor it externally
}

// Verify checks the given files as one chain, in the order given (oldest
// first): JSON shape of every line, seq continuity and prev hashes, also
// across files. The first line of the first file is checked only as far
// as possible: if its seq is 1 its prev must be "", otherwise its prev
// cannot be checked without the predecessor file. It returns the first
// broken line (1-based) and its file, or 0, "" and nil.
func Verify(paths ...string) (badLine int, badFile string, err error) {
	_, err = verifyChain(paths, false)
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Line, ve.File, err
	}
	return 0, "", err
}

// VerifyFile verifies path together with its rotated predecessors
// (path.1, path.2, ... oldest first, as Log writes them), and requires the
// chain to start at seq 1: a missing oldest file is reported. Use Verify
// with explicit paths to check a chain whose beginning was archived
// elsewhere. The error is a *VerifyError when the chain is broken.
func VerifyFile(path string) (Result, error) {
	paths := append(rotatedFiles(path), path)
	return verifyChain(paths, true)
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
	pending *pendingBreak
}

func verifyChain(paths []string, strictStart bool) (Result, error) {
	st := &chainState{strict: strictStart}
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
	st.started = true
	st.last, st.hash = lineRef{file, n, rec.Seq}, h
	st.res.Lines++
	st.res.LastSeq, st.res.LastHash = rec.Seq, h
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

// parseLine parses one line strictly: a JSON object with exactly the
// record's keys (duration_s and bytes exactly on view_end), no duplicate
// keys, nothing after it, values of the right types and ranges.
func parseLine(line []byte) (record, error) {
	var rec record
	if len(line) == 0 {
		return rec, errors.New("empty line")
	}
	if len(line) > maxLineLen {
		return rec, fmt.Errorf("line longer than %d bytes", maxLineLen)
	}
	if !utf8.Valid(line) {
		return rec, errors.New("line is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return rec, errors.New("line is not a JSON object")
	}
	vals := make(map[string]any, 11)
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return rec, errors.New("malformed JSON")
		}
		key, ok := kt.(string)
		if !ok {
			return rec, errors.New("malformed JSON")
		}
		vt, err := dec.Token()
		if err != nil {
			return rec, errors.New("malformed JSON")
		}
		if _, isDelim := vt.(json.Delim); isDelim || vt == nil {
			return rec, fmt.Errorf("field %q must be a string or a number", key)
		}
		if _, dup := vals[key]; dup {
			return rec, fmt.Errorf("duplicate field %q", key)
		}
		vals[key] = vt
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return rec, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return rec, errors.New("data after the JSON object")
	}

	str := func(k string) (string, error) {
		v, ok := vals[k]
		if !ok {
			return "", fmt.Errorf("missing field %q", k)
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("field %q must be a string", k)
		}
		return s, nil
	}
	num := func(k string) (json.Number, error) {
		v, ok := vals[k]
		if !ok {
			return "", fmt.Errorf("missing field %q", k)
		}
		n, ok := v.(json.Number)
		if !ok {
			return "", fmt.Errorf("field %q must be a number", k)
		}
		return n, nil
	}

	seqN, err := num("seq")
	if err != nil {
		return rec, err
	}
	if rec.Seq, err = strconv.ParseUint(seqN.String(), 10, 64); err != nil || rec.Seq == 0 {
		return rec, errors.New("seq must be a positive integer")
	}
	for _, f := range []struct {
		k string
		p *string
	}{
		{"time", &rec.Time}, {"event", &rec.Event}, {"actor", &rec.Actor},
		{"camera", &rec.Camera}, {"remote", &rec.Remote}, {"protocol", &rec.Protocol},
		{"detail", &rec.Detail}, {"prev", &rec.Prev},
	} {
		if *f.p, err = str(f.k); err != nil {
			return rec, err
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, rec.Time)
	if err != nil || ts.Location() != time.UTC || rec.Time[len(rec.Time)-1] != 'Z' {
		return rec, errors.New("time must be RFC 3339 in UTC")
	}
	if !knownEvent(rec.Event) {
		return rec, fmt.Errorf("unknown event %q", clip(rec.Event, 64))
	}
	if rec.Prev != "" && !isLowerHex64(rec.Prev) {
		return rec, errors.New("prev must be 64 lowercase hex digits or empty")
	}
	want := 9
	if rec.Event == ViewEnd {
		want = 11
		dn, err := num("duration_s")
		if err != nil {
			return rec, err
		}
		d, err := strconv.ParseFloat(dn.String(), 64)
		if err != nil || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
			return rec, errors.New("duration_s must be a non-negative number")
		}
		bn, err := num("bytes")
		if err != nil {
			return rec, err
		}
		b, err := strconv.ParseInt(bn.String(), 10, 64)
		if err != nil || b < 0 {
			return rec, errors.New("bytes must be a non-negative integer")
		}
		rec.DurationS, rec.Bytes = &d, &b
	}
	if len(vals) != want {
		return rec, errors.New("unexpected fields for this event")
	}
	return rec, nil
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
