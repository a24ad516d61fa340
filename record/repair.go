package record

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Loading the index at start-up, and repairing what a crash left.

// loadCamera builds one camera's index from its day directories: indexed
// segments whose file exists, plus segments a crash left unindexed (cut
// after their last complete fragment and indexed). Indexed segments whose
// file is gone are dropped with a tombstone line.
func (r *Recorder) loadCamera(id string) (*camIndex, error) {
	ci := &camIndex{}
	camDir := filepath.Join(r.Path, id)
	days, err := os.ReadDir(camDir)
	if err != nil {
		return nil, err
	}
	for _, d := range days {
		if !d.IsDir() || !dayRe.MatchString(d.Name()) {
			continue
		}
		if err := r.loadDayDir(id, d.Name(), ci); err != nil {
			return nil, err
		}
	}
	return ci, nil
}

func (r *Recorder) loadDayDir(id, day string, ci *camIndex) error {
	dayDir := filepath.Join(r.Path, id, day)
	log := r.Log.With("camera", id, "day", day)
	indexed, err := loadDay(dayDir, day, func(line int, err error) {
		log.Warn("skipping a bad recording index line", "line", line, "err", err)
	})
	if err != nil {
		return err
	}
	files, err := os.ReadDir(dayDir)
	if err != nil {
		return err
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || !segNameRe.MatchString(name) {
			continue
		}
		onDisk[name] = true
		if s, ok := indexed[name]; ok {
			ci.insert(s)
			continue
		}
		s, err := repairSegment(dayDir, day, name)
		if err != nil {
			log.Warn("removed a segment left by a crash with nothing playable in it", "segment", name, "err", err)
			continue
		}
		log.Info("repaired a segment left open by a crash", "segment", name, "end", FormatTime(s.End), "bytes", s.Bytes)
		if err := appendIndex(dayDir, formatIndexLine(s)); err != nil {
			return fmt.Errorf("recording index %s: %w", filepath.Join(id, day), err)
		}
		ci.insert(s)
	}
	for name := range indexed {
		if !onDisk[name] {
			log.Warn("an indexed segment is missing from disk", "segment", name)
			r.Metrics.deleted.WithLabelValues(id, "missing").Inc()
			_ = appendIndex(dayDir, tombstone(name, "missing"))
		}
	}
	if len(onDisk) == 0 {
		removeDayIfEmpty(dayDir)
	}
	return nil
}

func tombstone(name, why string) []byte {
	return []byte(`{"del":"` + name + `","why":"` + why + `"}` + "\n")
}

// removeDayIfEmpty removes a day directory holding nothing but its index.
func removeDayIfEmpty(dayDir string) {
	files, err := os.ReadDir(dayDir)
	if err != nil {
		return
	}
	for _, f := range files {
		if f.Name() != indexName {
			return
		}
	}
	os.Remove(filepath.Join(dayDir, indexName))
	os.Remove(dayDir)
}

// repairSegment cuts an unindexed segment after its last complete
// fragment and describes it. A segment without one is removed (error).
func repairSegment(dayDir, day, name string) (*segment, error) {
	path := filepath.Join(dayDir, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	info, err := parseSegment(f, fi.Size())
	if err == nil && len(info.frags) == 0 {
		err = fmt.Errorf("no complete fragment")
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if info.size < fi.Size() {
		if err := f.Truncate(info.size); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	start, err := time.Parse(segNameLayout, strings.SplitN(strings.TrimSuffix(name, ".mp4"), "-", 2)[0])
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, info.size)); err != nil {
		return nil, err
	}
	end, frames := info.mainExtent()
	return &segment{
		Name: name, Day: day, Start: start.UTC(), End: start.UTC().Add(end),
		Bytes: info.size, SHA256: hex.EncodeToString(h.Sum(nil)), Init: initKey(info.tracks),
		Frames: frames, Repaired: true,
	}, nil
}

// mainTrackOf is the first video track of a segment, or its first track.
func mainTrackOf(tracks []trackDesc) int {
	for i, t := range tracks {
		if t.Video {
			return i
		}
	}
	return 0
}

// mainExtent returns the end of the main track relative to the segment
// start and its number of samples.
func (info *segInfo) mainExtent() (time.Duration, int) {
	main := mainTrackOf(info.tracks)
	ts := info.tracks[main].Timescale
	var end int64
	n := 0
	for _, fr := range info.frags {
		for _, ft := range fr.tracks {
			if ft.track != main {
				continue
			}
			t := int64(ft.baseTime)
			for _, s := range ft.samples {
				t += int64(s.dur)
			}
			end = max(end, t)
			n += len(ft.samples)
		}
	}
	return fromTicks(end, ts), n
}
