// Package audit is cordon's tamper-evident audit trail: one JSON object per
// line, appended and fsynced before Append returns, each line carrying a
// gap-free sequence number ("seq"), the hex SHA-256 of the previous line's
// bytes ("prev"), the gateway that wrote it ("node") and, when a signing
// key is configured (KeyPath), an Ed25519 signature ("sig").
//
// On-disk format (fields in this order; optional ones in brackets):
//
//	{"seq":1,"time":"2026-01-02T03:04:05.000000Z","node":"gw1","event":"login_ok",
//	 "actor":"alice","camera":"","remote":"10.0.0.5","protocol":"http",["source":"local",]
//	 "detail":"",["duration_s":1.5,"bytes":1234,]"prev":"",["key":"..."|"next_key":"...",]"sig":"..."}
//
// "source" is on login_ok and login_failed only; "duration_s" and "bytes"
// on view_end only. "prev" is the SHA-256 of the previous line exactly as
// stored (signature included), without its trailing newline; it is "" only
// for the first line ever written. Lines written by older versions (no
// node, no signature) stay valid; see "Migration".
//
// # Signed chain
//
// With KeyPath set (state_dir/audit-signing.key), every line is signed
// with an Ed25519 key. The first signed line introduces its key ("key":
// the genesis public key, printed at creation and by `cordon audit
// pubkey`: record it off the gateway). Every hour and at every rotation
// the current key announces its successor in a signed line ("next_key")
// and is then erased from the key file, so the chain of keys is endorsed
// from the genesis key on.
//
// What it protects against: anyone who can edit the files but not read
// the key file (a backup operator, a stolen disk, a process running as
// another user) cannot delete, insert, reorder or renumber lines and
// recompute the chain: `cordon audit verify --pubkey KEY` names the first
// line whose signature or link fails. A root attacker who reads the key
// file gets only the current key: he can forge lines signed since the
// last key change (at most an hour) and future ones, never older ones
// (their keys are gone). He can also delete the newest lines or whole
// files: nothing on the box can prove what is missing at the end. That is
// what forwarding (Forwarder, audit.forward) is for: each line leaves for
// a syslog collector within seconds of being written, so what was shipped
// before the compromise stays on a machine the attacker does not control,
// with seq and signatures that prove order and origin.
//
// # Migration
//
// A log written before signing (or with KeyPath empty) continues: the
// first signed line chains to the last unsigned one by "prev" and
// introduces the genesis key, which from then on covers the older lines
// through the hash chain. Verify accepts unsigned lines before the first
// signed one and refuses any after it (a stripped signature).
//
// # Rotation and retention
//
// When a line would take the file past MaxSizeBytes, the file is renamed
// to <path>.<n> (n = 1, 2, ... in order of age: .1 is the OLDEST) and a new
// file is started whose first line chains to the last line of the rotated
// one. Rotated files are deleted only by an explicit policy (KeepFiles,
// KeepBytes), never while they hold a line not yet forwarded, and never
// silently (retention.go).
//
// Secrets: every field is caller-provided text. Callers must never put a
// password, key, token or camera URL with credentials into any field,
// in particular Detail. Fields are length-limited, not filtered.
package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"cordon/internal/durable"
)

// Log is the audit log component. Set the exported fields, then call
// Initialize. All methods are safe for concurrent use.
type Log struct {
	// Path of the live file (e.g. "audit.log"). Required.
	Path string
	// MaxSizeBytes: rotate before a line would make the file larger.
	// 0 = never rotate.
	MaxSizeBytes int64
	// Logger receives write failures and recoveries (never event contents
	// beyond the event name and seq). nil = slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// KeyPath is the signing key state file (in state_dir, mode 0600).
	// "" = lines are not signed (hash chain only).
	KeyPath string
	// KeyEvolve: how long one signing key signs before it is replaced
	// and erased (0 = DefaultKeyEvolve; the key also changes at every
	// rotation).
	KeyEvolve time.Duration
	// Node names this gateway in every line ("" = the host name).
	Node string
	// Retention of rotated files (see retention.go): keep at most
	// KeepFiles rotated files and KeepBytes bytes of them (0 = no limit).
	KeepFiles int
	KeepBytes int64
	// WaitForForwarding: forwarding is configured, so retention deletes
	// nothing until a Forwarder attached (SetForwarded) says what the
	// collector has.
	WaitForForwarding bool

	mu       sync.Mutex
	f        *os.File
	fi       os.FileInfo // identity of f, to notice the path being replaced
	size     int64       // bytes of complete, fsynced lines in f
	seq      uint64      // seq of the last line written (0 = none ever)
	lastHash string      // hex SHA-256 of the last line ("" = none ever)
	failure  error       // sticky until a write succeeds again
	active   bool        // Initialize succeeded and Close was not called
	node     string
	signer   *signer // nil = unsigned
	evolve   bool    // the next line announces a new key (after rotation)
	changed  chan struct{}
	// forwarded, when set, says up to which seq lines have left the box;
	// retention never deletes a file holding a later line.
	forwarded func() uint64
	pruneDue  bool // a rotation happened: Append prunes after unlocking

	pruneMu     sync.Mutex // serializes Prune (it reads and deletes without mu)
	pruneWarned string     // the oldest file last reported as not forwarded
	pruneScans  int        // whole-file reads retention did (tests)
	pruneHook   func()     // tests: runs before a file is read, without mu
}

// ErrClosed is returned by Append and Healthy before Initialize and after
// Close.
var ErrClosed = errors.New("audit log is closed")

func (l *Log) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

func (l *Log) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Initialize opens (creating with mode 0600) the log and continues the
// chain from its last line, or from the newest rotated file when the live
// file is missing or empty. A torn last line (no trailing newline: a crash
// during a write that was never acknowledged) is moved to
// <path>.torn-<unix nanos> and cut off. A last line that is not a valid
// record is an error: the log has been tampered with or damaged, and
// cordon refuses to write after it (run `cordon audit verify`). With
// KeyPath set, the signing key is loaded (or created: its public key is
// logged for the operator to record) and matched with the last line.
func (l *Log) Initialize() error {
	if l.Path == "" {
		return errors.New("audit: path is empty")
	}
	if l.MaxSizeBytes < 0 || l.KeepFiles < 0 || l.KeepBytes < 0 {
		return errors.New("audit: sizes and counts must not be negative")
	}
	if l.KeyEvolve == 0 {
		l.KeyEvolve = DefaultKeyEvolve
	}
	l.node = l.Node
	if l.node == "" {
		l.node, _ = os.Hostname()
	}
	l.node = cleanNode(l.node)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.open(); err != nil {
		return err
	}
	last, line, err := l.lastRecord()
	if err != nil {
		_ = l.f.Close()
		return err
	}
	seq, hash := uint64(0), ""
	if last != nil {
		seq, hash = last.Seq, hashLine(line)
	}
	if l.KeyPath != "" {
		if err := l.initSigner(last, line); err != nil {
			_ = l.f.Close()
			return err
		}
	}
	l.seq, l.lastHash, l.active, l.failure = seq, hash, true, nil
	l.changed = make(chan struct{})
	// A second, independent record of the chain head (journald/syslog):
	// lines cut from the end of the log cannot be detected otherwise.
	l.logger().Info("audit log opened", "path", l.Path, "seq", seq, "head", hash, "node", l.node, "signed", l.signer != nil)
	return nil
}

// lastRecord returns the last line of the chain: the live file's, or the
// newest rotated file's when the live one is empty (nil when none).
func (l *Log) lastRecord() (*record, []byte, error) {
	src := l.Path
	var line []byte
	var err error
	if l.size > 0 {
		line, err = lastLine(l.f, l.size)
	} else if rotated := rotatedFiles(l.Path); len(rotated) > 0 {
		src = rotated[len(rotated)-1]
		line, err = lastLineOfFile(src)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: reading %s: %w", src, err)
	}
	if line == nil {
		return nil, nil, nil
	}
	rec, err := parseLine(line)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: last line of %s is not a valid record (%v); refusing to continue the chain", src, err)
	}
	return &rec, line, nil
}

// open opens l.Path for appending and sets l.f and l.size to the length of
// its complete lines, cutting (and preserving aside) a torn tail.
func (l *Log) open() error {
	f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: opening log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: stat log: %w", err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return fmt.Errorf("audit: %s is not a regular file", l.Path)
	}
	size := st.Size()
	if size > 0 {
		complete, err := completeLength(f, size)
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("audit: reading log: %w", err)
		}
		if complete < size {
			if err := l.saveTorn(f, complete, size); err != nil {
				_ = f.Close()
				return err
			}
			size = complete
		}
	}
	l.f, l.fi, l.size = f, st, size
	return nil
}

// saveTorn copies bytes [from, to) of f aside and truncates f to from.
func (l *Log) saveTorn(f *os.File, from, to int64) error {
	buf := make([]byte, to-from)
	if _, err := f.ReadAt(buf, from); err != nil {
		return fmt.Errorf("audit: reading torn tail: %w", err)
	}
	aside := fmt.Sprintf("%s.torn-%d", l.Path, l.now().UnixNano())
	if err := os.WriteFile(aside, buf, 0o600); err != nil {
		return fmt.Errorf("audit: preserving torn tail: %w", err)
	}
	if err := f.Truncate(from); err != nil {
		return fmt.Errorf("audit: cutting torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: syncing log: %w", err)
	}
	l.logger().Warn("audit log ended in an incomplete line (crash during a write); moved it aside",
		"path", l.Path, "aside", aside, "bytes", len(buf))
	return nil
}

// Append writes e as the next line and fsyncs it. When it returns nil the
// event is durable. When it returns an error the log is unhealthy (see
// Healthy) until a later Append succeeds; callers must fail closed. The
// Append that rotated the file applies the retention policy after it has
// released the log (Prune), so other writers never wait for it.
func (l *Log) Append(e Event) error {
	_, err := l.AppendSeq(e)
	return err
}

// AppendSeq is Append that also returns the seq of the line it wrote
// (taken under the same lock as the write, so concurrent callers each get
// their own line's seq; Head afterwards may already name a later line).
// On error the seq is 0.
func (l *Log) AppendSeq(e Event) (uint64, error) {
	if !knownEvent(e.Event) {
		return 0, fmt.Errorf("audit: unknown event %q", e.Event)
	}
	l.mu.Lock()
	seq, err := l.appendLocked(e)
	prune := l.pruneDue
	l.pruneDue = false
	l.mu.Unlock()
	if prune {
		l.Prune()
	}
	return seq, err
}

// appendLocked is AppendSeq with l.mu held.
func (l *Log) appendLocked(e Event) (uint64, error) {
	if !l.active {
		return 0, ErrClosed
	}
	if l.failure == nil && l.f != nil && !l.sameFile() {
		// Deleted or replaced underneath us: writing on would go to an
		// unlinked inode. Reopen the path; the new file's first line will
		// show the gap to Verify.
		l.logger().Error("audit log file was removed or replaced; reopening", "path", l.Path, "seq", l.seq)
		l.failure = errors.New("audit log file was removed or replaced")
	}
	if l.failure != nil || l.f == nil {
		if err := l.recover(); err != nil {
			return 0, l.fail("recovering", err)
		}
	}
	line, err := l.line(e)
	if err != nil {
		return 0, err
	}
	if l.MaxSizeBytes > 0 && l.size > 0 && l.size+int64(len(line))+1 > l.MaxSizeBytes {
		if err := l.rotate(); err != nil {
			return 0, l.fail("rotating", err)
		}
	}
	buf := append(line, '\n')
	if _, err := l.f.Write(buf); err != nil {
		return 0, l.fail("writing", err)
	}
	if err := l.f.Sync(); err != nil {
		return 0, l.fail("syncing", err)
	}
	l.size += int64(len(buf))
	l.seq++
	l.lastHash = hashLine(line)
	l.signed()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.seq, nil
}

// fail records a write failure: logged, sticky, returned.
func (l *Log) fail(op string, err error) error {
	wrapped := fmt.Errorf("audit: %s %s: %w", op, l.Path, err)
	if l.failure == nil {
		l.logger().Error("audit log write failed; viewing must be refused until it recovers",
			"path", l.Path, "op", op, "err", err, "seq", l.seq+1)
	}
	l.failure = wrapped
	return wrapped
}

// recover reopens the file and cuts anything past the last acknowledged
// line (a partial write from the failure).
func (l *Log) recover() error {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	known := l.size
	f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return fmt.Errorf("%s is not a regular file", l.Path)
	}
	switch {
	case st.Size() > known:
		if err := f.Truncate(known); err != nil {
			_ = f.Close()
			return err
		}
	case st.Size() < known:
		// Someone removed acknowledged lines (or replaced the file).
		// Continue the chain; Verify will show the damage.
		l.logger().Error("audit log is shorter than what was written; it was truncated or replaced",
			"path", l.Path, "expected_bytes", known, "found_bytes", st.Size())
		known = st.Size()
	}
	l.f, l.fi, l.size = f, st, known
	l.logger().Warn("audit log writable again", "path", l.Path)
	l.failure = nil
	return nil
}

func (l *Log) rotate() error {
	next := 1
	if r := rotatedFiles(l.Path); len(r) > 0 {
		n, _ := rotatedIndex(l.Path, r[len(r)-1])
		next = n + 1
	}
	dst := l.Path + "." + strconv.Itoa(next)
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("rotation target %s already exists", dst)
	}
	if err := os.Rename(l.Path, dst); err != nil {
		return err
	}
	_ = l.f.Close()
	l.f, l.size = nil, 0 // recover() creates the new file if the next open fails
	f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	durable.SyncDir(filepath.Dir(l.Path))
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	l.f, l.fi, l.size = f, st, 0
	l.evolve = l.signer != nil
	l.logger().Info("audit log rotated", "path", l.Path, "rotated_to", dst, "seq", l.seq)
	l.pruneDue = true
	return nil
}

// Healthy returns nil while the log is writable, else the last write
// error. Callers must refuse new viewing sessions while it is non-nil.
func (l *Log) Healthy() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.active {
		return ErrClosed
	}
	return l.failure
}

// Close closes the file. Further Appends return ErrClosed.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	if l.active {
		l.logger().Info("audit log closed", "path", l.Path, "seq", l.seq, "head", l.lastHash)
	}
	l.active = false
}

// Head returns the seq and hex hash of the last line written: the value
// to anchor externally.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.lastHash
}

// Changed returns a channel closed at the next successful Append (the
// forwarder waits on it).
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// PublicKey returns the chain's genesis public key (base64url), "" when
// the log is not signed.
func (l *Log) PublicKey() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer == nil {
		return ""
	}
	return b64.EncodeToString(l.signer.genesis)
}

// NodeName returns the node recorded in every line.
func (l *Log) NodeName() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node
}
