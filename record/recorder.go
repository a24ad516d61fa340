package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Recorder records cameras to Path and answers listing and playback
// requests. Set the exported fields, call Initialize, then StartCamera for
// each camera with `record: true`. Close stops everything.
type Recorder struct {
	Path string // recording.path; required
	// Retain deletes segments that ended longer ago than this (recording.retain,
	// default 31 days).
	Retain time.Duration
	// MaxDiskBytes deletes the oldest segments (of any camera) while the
	// segments take more than this (recording.max_disk_gb); 0 = no quota.
	MaxDiskBytes int64
	// SegmentDuration cuts segments at the first keyframe after this long
	// (default 10 minutes).
	SegmentDuration time.Duration
	// FragmentMax writes a fragment once its oldest sample is this old
	// (default 700 ms): a crash loses less than a second (the fragment
	// being collected, plus at most one frame interval).
	FragmentMax time.Duration
	// QueueSamples and QueueBytes bound each camera's queue between the
	// stream and the disk (default 1024 samples, 64 MiB).
	QueueSamples int
	QueueBytes   int64
	// NoSync skips fdatasync after each fragment: only for benchmarks that
	// measure the recorder rather than the disk.
	NoSync bool
	// Clock assigns recording times; nil = a Clock anchored at Initialize.
	Clock *Clock
	// Auditor receives playback lines; required for Playback.
	Auditor Auditor
	Metrics *Metrics
	Log     *slog.Logger

	clock       *Clock
	mu          sync.Mutex
	cams        map[string]*camEntry
	kick        chan struct{}
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	retainMu    sync.Mutex // guards Retain and MaxDiskBytes after Initialize
	audits      auditDedup
	clockMu     sync.Mutex
	clockWarned uint64 // 1 + the clock epoch already warned about
	// segmentClosed, when set (tests), is called after a segment was
	// closed and indexed.
	segmentClosed func(camera string)
}

type camEntry struct {
	idx *camIndex
	cam *camera // nil when not recording
}

// Defaults.
const (
	DefaultRetain          = 31 * 24 * time.Hour
	DefaultSegmentDuration = 10 * time.Minute
	DefaultFragmentMax     = 700 * time.Millisecond
)

// Initialize creates Path, loads every camera's index and repairs what a
// crash left, and starts retention.
func (r *Recorder) Initialize() error {
	if r.Path == "" {
		return errors.New("record: Path is empty")
	}
	if r.Retain <= 0 {
		r.Retain = DefaultRetain
	}
	if r.SegmentDuration <= 0 {
		r.SegmentDuration = DefaultSegmentDuration
	}
	if r.FragmentMax <= 0 {
		r.FragmentMax = DefaultFragmentMax
	}
	if r.QueueSamples <= 0 {
		r.QueueSamples = 1024
	}
	if r.QueueBytes <= 0 {
		r.QueueBytes = 64 << 20
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.Metrics == nil {
		r.Metrics = NewMetrics(nil)
	}
	r.clock = r.Clock
	if r.clock == nil {
		r.clock = &Clock{}
	}
	r.clock.Now()
	if err := os.MkdirAll(r.Path, 0o750); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	r.cams = map[string]*camEntry{}
	entries, err := os.ReadDir(r.Path)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !cameraIDRe.MatchString(e.Name()) {
			continue
		}
		ci, err := r.loadCamera(e.Name())
		if err != nil {
			return fmt.Errorf("record: loading %s: %w", e.Name(), err)
		}
		r.cams[e.Name()] = &camEntry{idx: ci}
		r.updateGauges(e.Name(), ci)
	}
	r.kick = make(chan struct{}, 1)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.enforce()
	r.wg.Add(1)
	go r.retentionLoop()
	return nil
}

// StartCamera starts recording camera id from src. It is an error to start
// a camera twice.
func (r *Recorder) StartCamera(id string, src Source) error {
	if !cameraIDRe.MatchString(id) {
		return fmt.Errorf("record: bad camera id %q", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.ctx.Err() != nil {
		return errors.New("record: recorder not initialized or closed")
	}
	e := r.cams[id]
	if e == nil {
		e = &camEntry{idx: &camIndex{}}
		r.cams[id] = e
	}
	if e.cam != nil {
		return fmt.Errorf("record: camera %s is already recording", id)
	}
	c := &camera{
		id: id, rec: r, src: src, idx: e.idx,
		m:   r.Metrics.forCamera(id),
		log: r.Log.With("camera", id),
		q:   make(chan queued, r.QueueSamples),
	}
	c.ctx, c.cancel = context.WithCancel(r.ctx)
	c.done = make(chan struct{})
	e.cam = c
	go c.run()
	return nil
}

// StopCamera stops recording camera id (its open segment is closed and
// indexed). Its recordings stay available.
func (r *Recorder) StopCamera(id string) {
	r.mu.Lock()
	e := r.cams[id]
	var c *camera
	if e != nil {
		c, e.cam = e.cam, nil
	}
	r.mu.Unlock()
	if c != nil {
		c.cancel()
		<-c.done
	}
}

// Recording reports whether camera id is being recorded.
func (r *Recorder) Recording(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.cams[id]
	return e != nil && e.cam != nil
}

// SetRetention changes retention on a running recorder (config reload).
func (r *Recorder) SetRetention(retain time.Duration, maxDiskBytes int64) {
	r.retainMu.Lock()
	if retain > 0 {
		r.Retain = retain
	}
	r.MaxDiskBytes = maxDiskBytes
	r.retainMu.Unlock()
	r.kickRetention()
}

// Close stops every camera (closing their segments) and retention.
func (r *Recorder) Close() {
	if r.cancel == nil {
		return
	}
	r.mu.Lock()
	var cams []*camera
	for _, e := range r.cams {
		if e.cam != nil {
			cams = append(cams, e.cam)
			e.cam = nil
		}
	}
	r.mu.Unlock()
	for _, c := range cams {
		c.cancel()
	}
	for _, c := range cams {
		<-c.done
	}
	r.cancel()
	r.wg.Wait()
}

// index returns camera id's index, or nil.
func (r *Recorder) index(id string) *camIndex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.cams[id]; e != nil {
		return e.idx
	}
	return nil
}

// kickRetention asks the retention loop to run now.
func (r *Recorder) kickRetention() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// updateGauges refreshes a camera's disk and oldest-recording gauges.
func (r *Recorder) updateGauges(id string, ci *camIndex) {
	ci.mu.Lock()
	bytes := ci.bytes
	var oldest time.Time
	if len(ci.segs) > 0 {
		oldest = ci.segs[0].Start
	}
	ci.mu.Unlock()
	r.Metrics.diskBytes.WithLabelValues(id).Set(float64(bytes))
	if oldest.IsZero() {
		r.Metrics.oldest.WithLabelValues(id).Set(0)
	} else {
		r.Metrics.oldest.WithLabelValues(id).Set(float64(oldest.UnixMilli()) / 1000)
	}
}

// segPath is the absolute path of a segment of camera id.
func (r *Recorder) segPath(id string, s *segment) string {
	return filepath.Join(r.Path, id, s.Day, s.Name)
}
