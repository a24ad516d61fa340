package record

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Retention: every minute (and at once when a write fails or the settings
// change), delete segments that ended more than Retain ago, then, while the
// segments of all cameras take more than MaxDiskBytes, the oldest segment
// of any camera. Open segments are never deleted; exports live elsewhere
// (<path>/_exports) and are never touched.

func (r *Recorder) retentionLoop() {
	defer r.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
		r.enforce()
	}
}

// victim is a segment chosen for deletion.
type victim struct {
	camera string
	idx    *camIndex
	seg    *segment
}

// enforce runs one retention pass.
func (r *Recorder) enforce() {
	r.watchClock()
	r.retainMu.Lock()
	retain, quota := r.Retain, r.MaxDiskBytes
	r.retainMu.Unlock()
	cutoff := r.clock.Now().Add(-retain)
	r.mu.Lock()
	cams := make(map[string]*camIndex, len(r.cams))
	for id, e := range r.cams {
		cams[id] = e.idx
	}
	r.mu.Unlock()

	var old []victim
	var total int64
	for id, ci := range cams {
		ci.mu.Lock()
		for _, s := range ci.segs {
			if !s.open && s.End.Before(cutoff) {
				old = append(old, victim{id, ci, s})
			}
		}
		ci.mu.Unlock()
	}
	for _, v := range old {
		r.deleteSegment(v, "age")
	}
	if quota <= 0 {
		r.refreshGauges(cams)
		return
	}
	for id := range cams {
		ci := cams[id]
		ci.mu.Lock()
		total += ci.bytes
		ci.mu.Unlock()
	}
	for total > quota {
		v, ok := oldestClosed(cams)
		if !ok {
			break
		}
		if !r.deleteSegment(v, "quota") {
			break // cannot delete: do not spin
		}
		total -= v.seg.Bytes
	}
	r.refreshGauges(cams)
}

func (r *Recorder) refreshGauges(cams map[string]*camIndex) {
	for id, ci := range cams {
		r.updateGauges(id, ci)
	}
}

// oldestClosed finds the closed segment with the earliest start.
func oldestClosed(cams map[string]*camIndex) (victim, bool) {
	var best victim
	found := false
	for id, ci := range cams {
		ci.mu.Lock()
		for _, s := range ci.segs {
			if s.open {
				continue
			}
			if !found || s.Start.Before(best.seg.Start) {
				best, found = victim{id, ci, s}, true
			}
			break // sorted: the first closed one is this camera's oldest
		}
		ci.mu.Unlock()
	}
	return best, found
}

// deleteSegment removes a segment's file, then its index entry (a
// tombstone line). It reports whether the segment is gone.
func (r *Recorder) deleteSegment(v victim, why string) bool {
	dayDir := filepath.Join(r.Path, v.camera, v.seg.Day)
	err := os.Remove(filepath.Join(dayDir, v.seg.Name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Metrics.errors.WithLabelValues(v.camera, "io").Inc()
		r.Log.Warn("retention cannot delete a segment", "camera", v.camera, "segment", v.seg.Name, "err", err)
		return false
	}
	v.idx.mu.Lock()
	v.idx.remove(v.seg)
	left := false
	for _, s := range v.idx.segs {
		if s.Day == v.seg.Day {
			left = true
			break
		}
	}
	v.idx.mu.Unlock()
	r.Metrics.deleted.WithLabelValues(v.camera, why).Inc()
	if left {
		if err := appendIndex(dayDir, tombstone(v.seg.Name, why)); err != nil {
			r.Log.Warn("cannot append to the recording index", "camera", v.camera, "err", err)
		}
	} else {
		removeDayIfEmpty(dayDir)
	}
	r.Log.Debug("segment deleted", "camera", v.camera, "segment", v.seg.Name, "why", why)
	return true
}
