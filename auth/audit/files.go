package audit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sameFile reports whether the log's path still names the file it has
// open (not rotated or replaced behind its back).
func (l *Log) sameFile() bool {
	st, err := os.Stat(l.Path)
	return err == nil && l.fi != nil && os.SameFile(st, l.fi)
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

// firstLineOfFile returns the first complete line of path (nil if none).
func firstLineOfFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var first []byte
	err = readLines(f, func(_ int, line []byte, complete bool) error {
		if complete {
			first = bytes.Clone(line)
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return first, nil
}

var errStop = errors.New("stop")
