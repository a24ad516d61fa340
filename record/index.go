package record

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// The index: one append-only file per camera and UTC day
// (<camera>/<YYYY-MM-DD>/index.jsonl) with one line per closed segment and
// one per deleted segment. All of them are loaded at start-up into a sorted
// list per camera, so listing a day or a month never touches the disk.

const (
	dayLayout     = "2006-01-02"
	segNameLayout = "20060102T150405.000Z"
	indexName     = "index.jsonl"
	maxIndexLine  = 4096
	indexTime     = "2006-01-02T15:04:05.000000000Z07:00"
)

var (
	cameraIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	dayRe      = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	segNameRe  = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z(-[0-9]{1,3})?\.mp4$`)
)

// segment is one recorded file as the index knows it.
type segment struct {
	Name     string // file name, e.g. 20261130T140200.000Z.mp4
	Day      string // directory, e.g. 2026-11-30
	Start    time.Time
	End      time.Time
	Bytes    int64
	SHA256   string // hex; "" while open
	Init     string // hex prefix of the SHA-256 of the moov: same layout, same codecs
	Frames   int
	Repaired bool
	open     bool // being written (only in memory)
}

// rel is the segment's path relative to the recording root.
func (s *segment) rel(camera string) string {
	return camera + "/" + s.Day + "/" + s.Name
}

// indexLine is the on-disk shape of one index line.
type indexLine struct {
	Seg      string `json:"seg,omitempty"`
	Start    string `json:"start,omitempty"`
	End      string `json:"end,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Init     string `json:"init,omitempty"`
	Frames   int    `json:"frames,omitempty"`
	Repaired bool   `json:"repaired,omitempty"`
	Del      string `json:"del,omitempty"` // a deleted segment
	Why      string `json:"why,omitempty"` // why it was deleted: age, quota
}

func formatIndexLine(s *segment) []byte {
	b, _ := json.Marshal(indexLine{
		Seg: s.Name, Start: s.Start.UTC().Format(indexTime), End: s.End.UTC().Format(indexTime),
		Bytes: s.Bytes, SHA256: s.SHA256, Init: s.Init, Frames: s.Frames, Repaired: s.Repaired,
	})
	return append(b, '\n')
}

// parseIndexLine reads one line of a day's index: a segment, or the name
// of a deleted segment.
func parseIndexLine(day string, line []byte) (*segment, string, error) {
	if len(line) > maxIndexLine {
		return nil, "", errors.New("line too long")
	}
	var l indexLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, "", errors.New("not a JSON object")
	}
	if l.Del != "" {
		if !segNameRe.MatchString(l.Del) {
			return nil, "", errors.New("bad deleted segment name")
		}
		return nil, l.Del, nil
	}
	if !segNameRe.MatchString(l.Seg) {
		return nil, "", errors.New("bad segment name")
	}
	s := &segment{Name: l.Seg, Day: day, Bytes: l.Bytes, SHA256: l.SHA256, Init: l.Init, Frames: l.Frames, Repaired: l.Repaired}
	var err1, err2 error
	s.Start, err1 = time.Parse(time.RFC3339Nano, l.Start)
	s.End, err2 = time.Parse(time.RFC3339Nano, l.End)
	switch {
	case err1 != nil || err2 != nil:
		return nil, "", errors.New("bad start or end time")
	case s.End.Before(s.Start):
		return nil, "", errors.New("end before start")
	case s.Bytes <= 0 || s.Frames < 0:
		return nil, "", errors.New("bad size")
	case len(s.SHA256) != 64 || !isHex(s.SHA256) || len(s.Init) > 64 || !isHex(s.Init):
		return nil, "", errors.New("bad hash")
	case s.Start.UTC().Format(dayLayout) != day:
		return nil, "", errors.New("segment filed under another day")
	}
	s.Start, s.End = s.Start.UTC(), s.End.UTC()
	return s, "", nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// camIndex is one camera's segments, sorted by start.
type camIndex struct {
	mu    sync.Mutex
	segs  []*segment
	bytes int64
}

// insert adds s keeping the order (segments almost always arrive last).
func (ci *camIndex) insert(s *segment) {
	i := sort.Search(len(ci.segs), func(i int) bool { return ci.segs[i].Start.After(s.Start) })
	ci.segs = slices.Insert(ci.segs, i, s)
	ci.bytes += s.Bytes
}

// remove drops s from the list.
func (ci *camIndex) remove(s *segment) {
	if i := slices.Index(ci.segs, s); i >= 0 {
		ci.segs = slices.Delete(ci.segs, i, i+1)
		ci.bytes -= s.Bytes
	}
}

// lastEnd is the end of the newest segment (zero when none).
func (ci *camIndex) lastEnd() time.Time {
	var t time.Time
	for _, s := range ci.segs {
		if s.End.After(t) {
			t = s.End
		}
	}
	return t
}

// appendIndex appends one line to a day's index file and syncs it.
func appendIndex(dayDir string, line []byte) error {
	f, err := os.OpenFile(filepath.Join(dayDir, indexName), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	// a line torn by a crash has no newline: end it, so that this line
	// stays readable
	if fi, serr := f.Stat(); serr == nil && fi.Size() > 0 {
		var last [1]byte
		if _, rerr := f.ReadAt(last[:], fi.Size()-1); rerr == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadDay reads one day's index. Bad lines are reported and skipped (the
// segment they describe is then found and re-indexed as unindexed).
func loadDay(dayDir, day string, warn func(line int, err error)) (map[string]*segment, error) {
	f, err := os.Open(filepath.Join(dayDir, indexName))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*segment{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*segment{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, maxIndexLine), maxIndexLine+1)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		s, del, err := parseIndexLine(day, line)
		switch {
		case err != nil:
			warn(n, err)
		case del != "":
			delete(out, del)
		default:
			out[s.Name] = s
		}
	}
	if err := sc.Err(); err != nil {
		// a torn or overlong last line (crash while appending): the rest is kept
		warn(n+1, fmt.Errorf("unreadable line: %w", err))
	}
	return out, nil
}
