package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"cordon/internal/durable"
)

// segmentWriter writes one segment file: the init at creation, then one
// moof+mdat per fragment, each in a single write followed by fdatasync.
// Bytes that were not written completely are cut off again, so the file
// always ends at a fragment boundary unless the process dies mid-write
// (start-up repair handles that).
type segmentWriter struct {
	seg    *segment // shared with the index while open
	camera string
	dayDir string
	path   string
	f      *os.File
	tracks []trackDesc
	hash   hash.Hash
	size   int64
	end    time.Time
	frames int
	seq    uint32
	buf    seekablebuffer.Buffer
	noSync bool
}

// createSegment creates the segment file for a segment starting at start
// and writes its init. The file name carries the UTC start in milliseconds.
func createSegment(root, camera string, start time.Time, tracks []trackDesc, noSync bool) (*segmentWriter, error) {
	start = start.UTC().Truncate(time.Millisecond)
	day := start.Format(dayLayout)
	dayDir := filepath.Join(root, camera, day)
	if err := os.MkdirAll(dayDir, 0o750); err != nil {
		return nil, err
	}
	base := start.Format(segNameLayout)
	var f *os.File
	var name string
	for i := 0; ; i++ {
		name = base + ".mp4"
		if i > 0 {
			name = fmt.Sprintf("%s-%d.mp4", base, i)
		}
		var err error
		f, err = os.OpenFile(filepath.Join(dayDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i >= 99 {
			return nil, err
		}
	}
	init := writeInit(tracks, start)
	w := &segmentWriter{end: start,
		seg:    &segment{Name: name, Day: day, Start: start, End: start, Init: initKey(tracks), open: true},
		camera: camera, dayDir: dayDir, path: filepath.Join(dayDir, name), f: f,
		tracks: tracks, hash: sha256.New(), noSync: noSync,
	}
	if err := w.write(init); err != nil {
		f.Close()
		os.Remove(w.path)
		return nil, err
	}
	durable.SyncDir(dayDir)
	return w, nil
}

// initKey identifies a track layout: segments with the same key can be
// played one after the other in one MP4.
func initKey(tracks []trackDesc) string {
	h := sha256.New()
	for _, t := range tracks {
		fmt.Fprintf(h, "%d/%t/%d/%d:", t.ID, t.Video, t.Timescale, len(t.Entry))
		h.Write(t.Entry)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// write appends p completely, or cuts the file back and fails.
func (w *segmentWriter) write(p []byte) error {
	n, err := w.f.Write(p)
	if err == nil && !w.noSync {
		err = w.f.Sync()
	}
	if err != nil {
		if n > 0 {
			// best effort: a full disk still lets a file shrink
			_ = w.f.Truncate(w.size)
		}
		return err
	}
	w.hash.Write(p)
	w.size += int64(n)
	return nil
}

// writeFragment marshals and writes one fragment; end is the UTC end of
// its last sample and frames the samples of the segment's main track in
// it. The caller publishes end, frames and size to the index (under its
// lock).
func (w *segmentWriter) writeFragment(part *fmp4.Part, end time.Time, frames int) error {
	w.seq++
	part.SequenceNumber = w.seq
	w.buf.Reset()
	if err := part.Marshal(&w.buf); err != nil {
		return err
	}
	if err := w.write(w.buf.Bytes()); err != nil {
		return err
	}
	w.end = end
	w.frames += frames
	return nil
}

// fragments reports whether any fragment was written.
func (w *segmentWriter) fragments() bool { return w.seq > 0 }

// publish copies the writer's progress into its index entry; the caller
// holds the index lock.
func (w *segmentWriter) publish() {
	w.seg.End, w.seg.Frames, w.seg.Bytes = w.end, w.frames, w.size
}

// finish closes the file and returns the final size and hash, which the
// caller publishes with the entry closed. It reports whether any fragment
// was written; a segment without one is removed.
func (w *segmentWriter) finish() (hashHex string, ok bool, err error) {
	err = w.f.Close()
	if !w.fragments() {
		os.Remove(w.path)
		return "", false, err
	}
	return hex.EncodeToString(w.hash.Sum(nil)), true, err
}
