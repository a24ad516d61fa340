package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"

	"cordon/internal/durable"
)

// Retention of rotated files. With KeepFiles and KeepBytes both 0 (the
// default) cordon never deletes an audit file: archiving is the
// operator's decision. Otherwise, after each rotation (and whenever the
// forwarder moves on, Prune), the oldest rotated files beyond the limits
// are deleted, each with an Info log line naming it and its seq range —
// but when forwarding is on (SetForwarded), never a file holding a line
// that has not left the box yet: such a file is kept, past the limits if
// need be, until the collector has it.
//
// Deleting the oldest file would cut the chain's beginning. Before a file
// is deleted, its key lines (those introducing or announcing a signing
// key) and its last line are appended to <path>.anchor, so that Verify
// can still check the signing key chain from the genesis key and the
// first kept file's link to what was deleted.

// AnchorSuffix is appended to the log path for the anchor file.
const AnchorSuffix = ".anchor"

// SetForwarded makes retention wait for forwarding: a rotated file is
// deleted only once fn() (the highest seq the collector has) reaches its
// last line. fn is called with the log's lock held and must not call the
// Log.
func (l *Log) SetForwarded(fn func() uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forwarded = fn
}

// Prune applies the retention policy now. The cheap checks (is the policy
// exceeded, the oldest file's last seq read from its end, has it been
// forwarded) hold the log's lock; reading the oldest file for its anchor
// lines, writing the anchor and deleting the file do not (rotated files
// change only here, and Prune calls are serialized), so writers never
// wait for a scan of up to audit.max_size_mb.
func (l *Log) Prune() {
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	for {
		l.mu.Lock()
		oldest, last, ok := l.pruneCandidate()
		hook := l.pruneHook
		l.mu.Unlock()
		if !ok {
			return
		}
		if hook != nil {
			hook()
		}
		if !l.pruneFile(oldest, last) {
			return
		}
	}
}

// pruneCandidate returns the oldest rotated file when the policy wants it
// gone and its lines have left the box (when forwarding is on). Called
// with l.mu held; reads only the end of the file.
func (l *Log) pruneCandidate() (oldest string, last uint64, ok bool) {
	if l.KeepFiles == 0 && l.KeepBytes == 0 {
		return "", 0, false
	}
	files := rotatedFiles(l.Path)
	var total int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	if len(files) == 0 || !((l.KeepFiles > 0 && len(files) > l.KeepFiles) || (l.KeepBytes > 0 && total > l.KeepBytes)) {
		return "", 0, false
	}
	if l.forwarded == nil && l.WaitForForwarding {
		return "", 0, false // the forwarder has not attached yet
	}
	oldest = files[0]
	line, err := lastLineOfFile(oldest)
	var rec record
	if err == nil {
		rec, err = parseLine(line)
	}
	if err != nil {
		l.logger().Error("audit retention: cannot read the oldest rotated file's last line; keeping it", "path", oldest, "err", err)
		return "", 0, false
	}
	if l.forwarded != nil && l.forwarded() < rec.Seq {
		if l.pruneWarned != oldest { // once per file, not at every cursor save
			l.pruneWarned = oldest
			l.logger().Warn("audit retention: the oldest rotated file is not forwarded yet; keeping it beyond the limits",
				"path", oldest, "last_seq", rec.Seq, "forwarded_seq", l.forwarded())
		}
		return "", 0, false
	}
	return oldest, rec.Seq, true
}

// pruneFile anchors and deletes a rotated file whose last seq is last.
// Called without l.mu (under pruneMu); false stops the pruning.
func (l *Log) pruneFile(oldest string, last uint64) bool {
	l.mu.Lock()
	l.pruneScans++
	l.mu.Unlock()
	first, scanned, keep, err := anchorLines(oldest)
	if err != nil {
		l.logger().Error("audit retention: cannot read the oldest rotated file; keeping it", "path", oldest, "err", err)
		return false
	}
	if scanned != last {
		l.logger().Error("audit retention: the oldest rotated file changed while it was read; keeping it", "path", oldest)
		return false
	}
	if err := appendAnchor(l.Path+AnchorSuffix, keep); err != nil {
		l.logger().Error("audit retention: cannot write the anchor file; keeping the oldest rotated file", "path", oldest, "err", err)
		return false
	}
	if err := os.Remove(oldest); err != nil {
		l.logger().Error("audit retention: cannot delete the oldest rotated file", "path", oldest, "err", err)
		return false
	}
	durable.SyncDir(filepath.Dir(oldest))
	l.mu.Lock()
	forwarded := l.forwarded != nil
	l.mu.Unlock()
	l.logger().Info("audit retention: deleted the oldest rotated file (policy: audit.keep_files / audit.keep_mb)",
		"path", oldest, "first_seq", first, "last_seq", last, "forwarded", forwarded)
	return true
}

// anchorLines reads a rotated file and returns its first and last seq and
// the lines to keep in the anchor: the chain's first line, key lines and
// the last line.
func anchorLines(path string) (first, last uint64, keep [][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil, err
	}
	defer func() { _ = f.Close() }()
	var lastLine []byte
	err = readLines(f, func(_ int, line []byte, complete bool) error {
		if !complete {
			return errors.New("incomplete line")
		}
		rec, err := parseLine(line)
		if err != nil {
			return err
		}
		if first == 0 {
			first = rec.Seq
		}
		last = rec.Seq
		lastLine = append(lastLine[:0], line...)
		if rec.Key != "" || rec.NextKey != "" || rec.Seq == 1 {
			keep = append(keep, bytes.Clone(line))
		}
		return nil
	})
	if err != nil {
		return 0, 0, nil, err
	}
	if lastLine == nil {
		return 0, 0, nil, errors.New("empty file")
	}
	if len(keep) == 0 || !bytes.Equal(keep[len(keep)-1], lastLine) {
		keep = append(keep, lastLine)
	}
	return first, last, keep, nil
}

// appendAnchor adds lines to the anchor file (rewritten atomically).
func appendAnchor(path string, lines [][]byte) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	buf := bytes.NewBuffer(old)
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	return writeFileAtomic(path, buf.Bytes())
}
