package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// lineReader reads the chain's lines in order from a given seq on,
// across rotated files and the live file, following the live file as it
// grows and as it is rotated. It returns complete lines only.
type lineReader struct {
	path string
	f    *os.File
	fi   os.FileInfo // identity of f
	live bool        // f was the live file when opened (it may grow or be rotated)
	buf  []byte      // bytes read but not yet returned (a partial line at the end)
	want uint64      // next seq wanted
	held *heldLine   // a complete line beyond the acknowledged head
	gap  uint64      // lines skipped because they are no longer on disk
	// retried is the wanted seq for which a gap made the reader look again
	retried uint64
}

type heldLine struct {
	line []byte
	rec  record
}

// openLineReader positions a reader at seq from (or at the first line
// still on disk, when older ones are gone).
func openLineReader(path string, from uint64) (*lineReader, error) {
	r := &lineReader{path: path, want: max(from, 1)}
	if err := r.position(); err != nil {
		return nil, err
	}
	return r, nil
}

// position opens the file that holds r.want (or the next line after it).
// The live file is opened first and kept open if chosen: if it is
// rotated while the others are listed, the listing shows it under its new
// name and the open handle still reads it, so no file is ever skipped.
func (r *lineReader) position() error {
	r.close()
	live, liveFI, liveFirst := openLive(r.path)
	type cand struct {
		path  string
		first uint64
	}
	var cands []cand
	var lastSeq uint64
	for _, p := range rotatedFiles(r.path) {
		line, err := firstLineOfFile(p)
		if err != nil || line == nil {
			continue
		}
		rec, err := parseLine(line)
		if err != nil {
			closeFile(live)
			return fmt.Errorf("audit forward: %s: first line: %w", p, err)
		}
		cands = append(cands, cand{p, rec.Seq})
		if ll, err := lastLineOfFile(p); err == nil && ll != nil {
			if lr, err := parseLine(ll); err == nil {
				lastSeq = lr.Seq
			}
		}
	}
	if liveFirst == 0 {
		liveFirst = lastSeq + 1 // an empty live file will hold the next line
	}
	chosen := -1 // index in cands; -1 = the live file
	if live == nil || liveFirst > r.want {
		for i, c := range cands {
			if c.first <= r.want {
				chosen = i
			}
		}
		if chosen < 0 && len(cands) > 0 {
			chosen = 0 // older lines are gone: start at the oldest there is
		}
	}
	if chosen < 0 {
		if live == nil {
			return fmt.Errorf("audit forward: %s: no audit file to read", r.path)
		}
		r.f, r.fi, r.live, r.buf = live, liveFI, true, r.buf[:0]
		return nil
	}
	pick := cands[chosen]
	closeFile(live)
	f, err := os.Open(pick.path)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	r.f, r.fi, r.live, r.buf = f, st, false, r.buf[:0]
	return nil
}

// openLive opens the live file and reads its first seq (0 when empty).
func openLive(path string) (*os.File, os.FileInfo, uint64) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, 0
	}
	buf := make([]byte, min(st.Size(), int64(maxLineLen)+1))
	n, _ := f.ReadAt(buf, 0)
	if i := bytes.IndexByte(buf[:n], '\n'); i > 0 {
		if rec, err := parseLine(buf[:i]); err == nil {
			return f, st, rec.Seq
		}
	}
	return f, st, 0
}

func closeFile(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// next returns the next line with seq <= head (the log's acknowledged
// head), or ok = false when there is none yet.
func (r *lineReader) next(head uint64) (line []byte, rec record, ok bool, err error) {
	if h := r.held; h != nil {
		if h.rec.Seq > head {
			return nil, record{}, false, nil
		}
		r.held = nil
		return h.line, h.rec, true, nil
	}
	for tries := 0; tries < 4; tries++ {
		line, rec, ok, err = r.scan(head)
		if ok || err != nil || r.held != nil {
			return line, rec, ok, err
		}
		moved, err := r.advance()
		if err != nil || !moved {
			return nil, record{}, false, err
		}
	}
	return nil, record{}, false, nil
}

// scan returns the next wanted complete line of the open file.
func (r *lineReader) scan(head uint64) ([]byte, record, bool, error) {
	for {
		i := bytes.IndexByte(r.buf, '\n')
		if i < 0 {
			if len(r.buf) > maxLineLen+1 {
				return nil, record{}, false, fmt.Errorf("audit forward: %s: line longer than %d bytes", r.f.Name(), maxLineLen)
			}
			chunk := make([]byte, 32*1024)
			n, err := r.f.Read(chunk)
			r.buf = append(r.buf, chunk[:n]...)
			if n > 0 {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, record{}, false, err
			}
			return nil, record{}, false, nil // at the end for now
		}
		line := append([]byte{}, r.buf[:i]...)
		r.buf = append(r.buf[:0], r.buf[i+1:]...)
		rec, err := parseLine(line)
		if err != nil {
			return nil, record{}, false, fmt.Errorf("audit forward: %s: %w (run `cordon audit verify`)", r.f.Name(), err)
		}
		if rec.Seq < r.want {
			continue
		}
		if rec.Seq > r.want {
			if r.retried != r.want { // look again once: a rotation may have raced the listing
				r.retried = r.want
				if err := r.position(); err != nil {
					return nil, record{}, false, err
				}
				continue
			}
			r.gap += rec.Seq - r.want // gone from disk (deleted by hand)
		}
		if rec.Seq > head {
			r.held = &heldLine{line, rec}
			r.want = rec.Seq + 1
			return nil, record{}, false, nil
		}
		r.want = rec.Seq + 1
		return line, rec, true, nil
	}
}

// advance moves on at the end of the open file: a rotated file is done,
// so the next file is opened; the live file may have been rotated (then it
// is read to its end once more, since a line may have landed before the
// rename). It reports whether there may be more to read now.
func (r *lineReader) advance() (bool, error) {
	if r.live {
		st, err := os.Stat(r.path)
		if err == nil && os.SameFile(st, r.fi) {
			return false, nil // still the live file: wait for more
		}
		r.live = false // rotated (or replaced): finish it, then move on
		return true, nil
	}
	old := r.fi
	if err := r.position(); err != nil {
		return false, err
	}
	return !os.SameFile(old, r.fi), nil
}

func (r *lineReader) close() {
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
}
