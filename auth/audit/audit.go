// Package audit is cordon's tamper-evident audit trail: one JSON object per
// line, each line carrying the hex SHA-256 of the previous line's bytes
// ("prev") and a gap-free sequence number ("seq"), appended and fsynced
// before Append returns.
//
// On-disk format (fields in this order):
//
//	{"seq":1,"time":"2026-01-02T03:04:05.000000Z","event":"login_ok","actor":"alice",
//	 "camera":"","remote":"10.0.0.5","protocol":"http","detail":"","prev":""}
//
// A view_end line also carries "duration_s" (seconds, float) and "bytes".
// "prev" is the SHA-256 of the previous line exactly as stored, without its
// trailing newline; it is "" only for the first line ever written.
//
// Rotation: when a line would take the file past MaxSizeBytes, the file is
// renamed to <path>.<n> (n = 1, 2, ... in order of age: .1 is the OLDEST)
// and a new file is started whose first line chains to the last line of
// the rotated one. Rotated files are never deleted by cordon: archiving
// them is the operator's decision.
//
// Secrets: every field is caller-provided text. Callers must never put a
// password, key, token or camera URL with credentials into any field,
// in particular Detail. Fields are length-limited, not filtered.
//
// What the chain proves and what it does not: editing, deleting, inserting
// or reordering any line (other than the very last ones) is detected by
// Verify, naming the first broken line. Removing lines from the END of the
// newest file cannot be detected from the file alone; anchor the chain
// externally (e.g. ship the last line's hash, printed by Verify, to a
// remote syslog or a paper log) if that matters.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Event names (the CONTRACT's list; Append refuses anything else).
const (
	LoginOK       = "login_ok"
	LoginFailed   = "login_failed"
	Logout        = "logout"
	ViewStart     = "view_start"
	ViewEnd       = "view_end"
	Denied        = "denied"
	ConfigLoaded  = "config_loaded"
	CameraOnline  = "camera_online"
	CameraOffline = "camera_offline"
	EgressAttempt = "egress_attempt"
	// Names shared by the wave-1 branches (SEAMS item 3).
	Suppressed     = "suppressed"
	PTZStart       = "ptz_start"
	PTZEnd         = "ptz_end"
	PTZTakeover    = "ptz_takeover"
	Playback       = "playback"
	Export         = "export"
	HardeningDrift = "hardening_drift"
	CameraHardened = "camera_hardened"
)

func knownEvent(e string) bool {
	switch e {
	case LoginOK, LoginFailed, Logout, ViewStart, ViewEnd, Denied,
		ConfigLoaded, CameraOnline, CameraOffline, EgressAttempt,
		Suppressed, PTZStart, PTZEnd, PTZTakeover, Playback, Export,
		HardeningDrift, CameraHardened:
		return true
	}
	return false
}

// TimeFormat is the layout of the "time" field: RFC 3339, UTC, microseconds.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Field length limits applied by Append (bytes; longer values are cut at
// a rune boundary and suffixed with "…").
const (
	maxFieldLen  = 256
	maxDetailLen = 2048
	// maxLineLen bounds what Verify and Initialize will read as one line.
	maxLineLen = 64 * 1024
)

// Event is one audit record. Callers fill Event, Actor, Camera, Remote,
// Protocol, Detail and, for view_end, DurationS and Bytes. Seq, Time and
// Prev are assigned by Append (values set by the caller are ignored).
type Event struct {
	Seq       uint64
	Time      time.Time
	Event     string
	Actor     string
	Camera    string
	Remote    string
	Protocol  string
	Detail    string
	Prev      string
	DurationS float64 // view_end only
	Bytes     int64   // view_end only
}

// record is the on-disk shape; field order is the line's key order.
type record struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`
	Event    string `json:"event"`
	Actor    string `json:"actor"`
	Camera   string `json:"camera"`
	Remote   string `json:"remote"`
	Protocol string `json:"protocol"`
	Detail   string `json:"detail"`
	Prev     string `json:"prev"`
	// Pointers so that they are present exactly on view_end lines.
	DurationS *float64 `json:"duration_s,omitempty"`
	Bytes     *int64   `json:"bytes,omitempty"`
}

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

	mu       sync.Mutex
	f        *os.File
	fi       os.FileInfo // identity of f, to notice the path being replaced
	size     int64       // bytes of complete, fsynced lines in f
	seq      uint64      // seq of the last line written (0 = none ever)
	lastHash string      // hex SHA-256 of the last line ("" = none ever)
	failure  error       // sticky until a write succeeds again
	active   bool        // Initialize succeeded and Close was not called
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
// cordon refuses to write after it (run `cordon audit verify`).
func (l *Log) Initialize() error {
	if l.Path == "" {
		return errors.New("audit: path is empty")
	}
	if l.MaxSizeBytes < 0 {
		return errors.New("audit: max size must not be negative")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.open(); err != nil {
		return err
	}
	seq, hash := uint64(0), ""
	if l.size > 0 {
		line, err := lastLine(l.f, l.size)
		if err != nil {
			_ = l.f.Close()
			return fmt.Errorf("audit: reading %s: %w", l.Path, err)
		}
		rec, err := parseLine(line)
		if err != nil {
			_ = l.f.Close()
			return fmt.Errorf("audit: last line of %s is not a valid record (%v); refusing to continue the chain", l.Path, err)
		}
		seq, hash = rec.Seq, hashLine(line)
	} else if rotated := rotatedFiles(l.Path); len(rotated) > 0 {
		prevPath := rotated[len(rotated)-1]
		line, err := lastLineOfFile(prevPath)
		if err != nil {
			_ = l.f.Close()
			return fmt.Errorf("audit: reading %s: %w", prevPath, err)
		}
		if line != nil {
			rec, err := parseLine(line)
			if err != nil {
				_ = l.f.Close()
				return fmt.Errorf("audit: last line of %s is not a valid record (%v); refusing to continue the chain", prevPath, err)
			}
			seq, hash = rec.Seq, hashLine(line)
		}
	}
	l.seq, l.lastHash, l.active, l.failure = seq, hash, true, nil
	// A second, independent record of the chain head (journald/syslog):
	// lines cut from the end of the log cannot be detected otherwise.
	l.logger().Info("audit log opened", "path", l.Path, "seq", seq, "head", hash)
	return nil
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
// Healthy) until a later Append succeeds; callers must fail closed.
func (l *Log) Append(e Event) error {
	if !knownEvent(e.Event) {
		return fmt.Errorf("audit: unknown event %q", e.Event)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.active {
		return ErrClosed
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
			return l.fail("recovering", err)
		}
	}
	rec := record{
		Seq:      l.seq + 1,
		Time:     l.now().UTC().Format(TimeFormat),
		Event:    e.Event,
		Actor:    clip(e.Actor, maxFieldLen),
		Camera:   clip(e.Camera, maxFieldLen),
		Remote:   clip(e.Remote, maxFieldLen),
		Protocol: clip(e.Protocol, maxFieldLen),
		Detail:   clip(e.Detail, maxDetailLen),
		Prev:     l.lastHash,
	}
	if e.Event == ViewEnd {
		d, b := e.DurationS, e.Bytes
		rec.DurationS, rec.Bytes = &d, &b
	}
	line, err := json.Marshal(rec)
	if err != nil { // NaN duration and the like
		return fmt.Errorf("audit: encoding event: %w", err)
	}
	if l.MaxSizeBytes > 0 && l.size > 0 && l.size+int64(len(line))+1 > l.MaxSizeBytes {
		if err := l.rotate(); err != nil {
			return l.fail("rotating", err)
		}
	}
	buf := append(line, '\n')
	if _, err := l.f.Write(buf); err != nil {
		return l.fail("writing", err)
	}
	if err := l.f.Sync(); err != nil {
		return l.fail("syncing", err)
	}
	l.size += int64(len(buf))
	l.seq = rec.Seq
	l.lastHash = hashLine(line)
	return nil
}

func (l *Log) sameFile() bool {
	st, err := os.Stat(l.Path)
	return err == nil && l.fi != nil && os.SameFile(st, l.fi)
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
	syncDir(filepath.Dir(l.Path))
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	l.f, l.fi, l.size = f, st, 0
	l.logger().Info("audit log rotated", "path", l.Path, "rotated_to", dst, "seq", l.seq)
	return nil
}

func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
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

func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// clip bounds s to n bytes at a rune boundary and replaces invalid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// completeLength returns the length of the prefix of f (of size size)
// that ends in a newline.
func completeLength(f *os.File, size int64) (int64, error) {
	const chunk = 4096
	buf := make([]byte, chunk)
	end := size
	for end > 0 {
		start := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		if size-start > maxLineLen {
			break
		}
		end = start
	}
	return 0, nil
}

// lastLine returns the last complete line (without newline) of f, whose
// complete content is size bytes ending in '\n'.
func lastLine(f *os.File, size int64) ([]byte, error) {
	n := min(size, int64(maxLineLen)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = bytes.TrimSuffix(buf, []byte{'\n'})
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 && n < size {
		return nil, errors.New("last line too long")
	}
	return buf[i+1:], nil
}

func lastLineOfFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size, err := completeLength(f, st.Size())
	if err != nil || size == 0 {
		return nil, err
	}
	return lastLine(f, size)
}

// rotatedFiles returns path.1, path.2, ... that exist, oldest first.
func rotatedFiles(path string) []string {
	matches, _ := filepath.Glob(globEscape(path) + ".*")
	type rf struct {
		n    int
		path string
	}
	var out []rf
	for _, m := range matches {
		if n, ok := rotatedIndex(path, m); ok {
			out = append(out, rf{n, m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	paths := make([]string, len(out))
	for i, r := range out {
		paths[i] = r.path
	}
	return paths
}

func rotatedIndex(base, p string) (int, bool) {
	suffix, ok := strings.CutPrefix(p, base+".")
	if !ok || suffix == "" || suffix[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(suffix)
	if err != nil || n < 1 || strconv.Itoa(n) != suffix {
		return 0, false
	}
	return n, true
}

func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// readLines calls fn for each line of r (without newline), 1-based.
// A final line without newline is reported with complete=false.
func readLines(r io.Reader, fn func(n int, line []byte, complete bool) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return fn(n, nil, false)
			}
			return err
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		complete := !errors.Is(err, io.EOF)
		if ferr := fn(n, bytes.TrimSuffix(line, []byte{'\n'}), complete); ferr != nil {
			return ferr
		}
		if !complete {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		out = append(out, frag...)
		if len(out) > maxLineLen+1 {
			return nil, errLineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return out, err
	}
}
