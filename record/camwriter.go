package record

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"
)

// camera records one camera with two goroutines: pull reads the Source as
// fast as it delivers and puts samples in a bounded queue (when the queue
// is full it drops, counts, and resumes at the next keyframe: it never
// waits for the disk); write drains the queue into segment files.
type camera struct {
	id     string
	rec    *Recorder
	src    Source
	idx    *camIndex
	m      camMetrics
	log    *slog.Logger
	q      chan queued
	qBytes atomic.Int64
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// writer state: touched by the write goroutine only
	feed      *feedInfo
	params    [][][]byte // current parameter sets per feed track
	segParams [][][]byte // those the open segment was created with
	trackMap  []int      // feed track -> segment track (-1: not recorded)
	main      int        // feed track that starts segments
	seg       *segmentWriter
	segDTS    time.Duration // feed DTS at the segment start
	// segArrival is when the segment's first sample arrived (its start
	// before any clamping): stalls and jumps are measured against it
	segArrival time.Time
	segEpoch   uint64 // the clock's anchor when the segment opened
	frag       fragmenter
	lastDTS    []time.Duration
	haveDTS    []bool
	lastIn     time.Time // arrival of the last sample, on epoch lastInEpoch
	lastInEp   uint64
	failUntil  time.Time
	failures   int
	warned     map[string]bool
}

type feedInfo struct {
	tracks []Track
}

type queued struct {
	feed    *feedInfo
	sample  Sample
	arrival time.Time // recording time of arrival, on the clock's anchor epoch
	epoch   uint64
	wall    time.Time // the wall clock at arrival
	size    int64
	discont bool // samples were dropped just before this one
	end     bool // the feed ended
}

func sampleSize(s Sample) int64 {
	n := int64(64)
	for _, d := range s.Data {
		n += int64(len(d)) + 24
	}
	return n
}

// isKeyOf reports whether s can start a segment of a feed with tracks.
func isKeyOf(tracks []Track, s Sample) bool {
	main := mainTrack(tracks)
	return s.Track == main && (s.Key || !tracks[main].Codec.Video())
}

// mainTrack is the first video track, or the first track.
func mainTrack(tracks []Track) int {
	for i, t := range tracks {
		if t.Codec.Video() {
			return i
		}
	}
	return 0
}

func (c *camera) run() {
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		c.pull()
	}()
	c.write()
	<-pulled
	close(c.done)
}

// pull reads feeds until the camera is stopped.
func (c *camera) pull() {
	backoff := 500 * time.Millisecond
	for c.ctx.Err() == nil {
		feed, err := c.src.Open(c.ctx)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Debug("recording source not ready", "err", err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		c.pullFeed(feed)
		feed.Close()
	}
}

func (c *camera) pullFeed(feed Feed) {
	fi := &feedInfo{tracks: append([]Track(nil), feed.Tracks()...)}
	if len(fi.tracks) == 0 {
		return
	}
	dropping := false
	for {
		s, err := feed.Next(c.ctx)
		if err != nil {
			c.offer(queued{feed: fi, end: true})
			return
		}
		if s.Track < 0 || s.Track >= len(fi.tracks) {
			continue
		}
		arrival, epoch, wall := c.rec.clock.Stamp()
		it := queued{feed: fi, sample: s, arrival: arrival, epoch: epoch, wall: wall, size: sampleSize(s)}
		if dropping {
			if !isKeyOf(fi.tracks, s) {
				c.m.dropped.Inc()
				continue
			}
			it.discont = true
		}
		dropping = !c.offer(it)
		if dropping {
			c.m.dropped.Inc()
		}
	}
}

// offer queues an item without waiting; false when the queue is full.
func (c *camera) offer(it queued) bool {
	if c.qBytes.Load()+it.size > c.rec.QueueBytes {
		return false
	}
	select {
	case c.q <- it:
		c.qBytes.Add(it.size)
		return true
	default:
		return false
	}
}

// write drains the queue until the camera is stopped, then writes what
// is still queued and closes the open segment.
func (c *camera) write() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case it := <-c.q:
			c.qBytes.Add(-it.size)
			c.handle(it)
		case <-tick.C:
			c.tick()
		case <-c.ctx.Done():
			for {
				select {
				case it := <-c.q:
					c.qBytes.Add(-it.size)
					c.handle(it)
					continue
				default:
				}
				break
			}
			c.closeSegment()
			return
		}
	}
}

func (c *camera) tick() {
	now, epoch := c.rec.clock.NowEpoch()
	if c.seg == nil {
		return
	}
	if !c.frag.empty() && (c.frag.epoch != epoch || now.Sub(c.frag.first) >= c.rec.FragmentMax) {
		c.flush()
	}
	// a source that went quiet without ending its feed: close the segment
	// so that its index line is written; the next keyframe opens a new one
	lastIn, _ := c.rec.clock.Convert(c.lastIn, c.lastInEp)
	if c.seg != nil && now.Sub(lastIn) > 2*SpanGap {
		c.closeSegment()
	}
}

// startFeed resets the writer for a new feed.
func (c *camera) startFeed(fi *feedInfo) {
	c.closeSegment()
	c.feed = fi
	n := len(fi.tracks)
	c.params = make([][][]byte, n)
	for i, t := range fi.tracks {
		c.params[i] = cloneAll(t.ParamSets)
	}
	c.main = mainTrack(fi.tracks)
	c.lastDTS = make([]time.Duration, n)
	c.haveDTS = make([]bool, n)
}

func cloneAll(ps [][]byte) [][]byte {
	out := make([][]byte, len(ps))
	for i, p := range ps {
		out[i] = bytes.Clone(p)
	}
	return out
}

// handle processes one queued item; see the package doc for the rules.
// (Function over 80 lines: the writer's rules in the order they apply.)
func (c *camera) handle(it queued) {
	if it.feed != c.feed {
		c.startFeed(it.feed)
	}
	if it.end {
		c.closeSegment()
		return
	}
	s := it.sample
	t := s.Track
	// on the current anchor; the drift test below compares like with like
	arrival, epoch := c.rec.clock.Convert(it.arrival, it.epoch)
	c.lastIn, c.lastInEp = arrival, epoch
	if it.discont {
		c.closeSegment()
	}
	if c.haveDTS[t] && s.DTS <= c.lastDTS[t] {
		c.m.dropped.Inc()
		return
	}
	if t == c.main && c.haveDTS[t] && s.DTS-c.lastDTS[t] > SpanGap {
		c.closeSegment() // the stream paused: a new span from the next keyframe
	}
	c.lastDTS[t], c.haveDTS[t] = s.DTS, true
	if s.DTS > s.PTS {
		s.DTS = s.PTS
	}
	key := t == c.main && (s.Key || !c.feed.tracks[t].Codec.Video())
	changed := false
	if key && c.feed.tracks[t].Codec.Video() {
		changed = c.updateParams(t, s.Data)
	}
	if c.seg != nil {
		// re-anchored since the segment opened: it keeps its timeline and
		// ends at the next keyframe (the step is not a stall)
		reanchored := epoch != c.segEpoch
		drift := arrival.Sub(c.segArrival.Add(s.DTS - c.segDTS))
		// (a millisecond of slack absorbs timestamps rounded down)
		long := s.DTS-c.segDTS+time.Millisecond >= c.rec.SegmentDuration || c.seg.size >= maxSegmentBytes
		if reanchored && !c.frag.empty() && c.frag.epoch != epoch {
			c.flush() // its arrival times are on the old anchor
		}
		switch {
		case !reanchored && (drift > SpanGap || drift < -SpanGap):
			c.closeSegment() // a stall or a jump: a new segment at the next keyframe
		case key && (long || changed || reanchored):
			c.closeSegment()
		}
	}
	if c.seg == nil {
		if !key || arrival.Before(c.failUntil) {
			return // waiting for a keyframe, or for the retry after a write error
		}
		if c.rec.checkClock(it.arrival, it.epoch, it.wall) {
			arrival, epoch = c.rec.clock.Convert(it.arrival, it.epoch)
		}
		if !c.openSegment(s, arrival, epoch) {
			return
		}
	}
	st := c.trackMap[t]
	if st < 0 || s.DTS < c.segDTS {
		return // not recorded, or audio from before the segment's keyframe
	}
	if c.frag.empty() {
		c.frag.epoch = epoch
	}
	c.frag.add(st, s.DTS-c.segDTS, s.PTS-s.DTS, s.Key, s.Data, arrival)
	if arrival.Sub(c.frag.first) >= c.rec.FragmentMax {
		c.flush()
	}
}

// maxSegmentBytes cuts a segment at the next keyframe when it grows past
// this size, whatever its duration.
const maxSegmentBytes = 2 << 30

// updateParams takes the parameter sets carried by a keyframe; it reports
// whether they differ from those of the open segment.
func (c *camera) updateParams(t int, nalus [][]byte) bool {
	codec := c.feed.tracks[t].Codec
	slots := 2
	if codec == CodecH265 {
		slots = 3
	}
	ps := c.params[t]
	if len(ps) != slots {
		ps = make([][]byte, slots)
	}
	for _, n := range nalus {
		if i := paramSlot(codec, n); i >= 0 && !bytes.Equal(ps[i], n) {
			ps[i] = bytes.Clone(n)
		}
	}
	c.params[t] = ps
	if c.seg == nil || len(c.segParams) <= t {
		return false
	}
	old := c.segParams[t]
	if len(old) != len(ps) {
		return true
	}
	for i := range ps {
		if !bytes.Equal(old[i], ps[i]) {
			return true
		}
	}
	return false
}

// paramSlot returns the parameter-set slot of NAL unit n (H.264: SPS 0,
// PPS 1; H.265: VPS 0, SPS 1, PPS 2), or -1.
func paramSlot(codec Codec, n []byte) int {
	if len(n) == 0 {
		return -1
	}
	if codec == CodecH264 {
		switch n[0] & 0x1f {
		case 7:
			return 0
		case 8:
			return 1
		}
		return -1
	}
	if len(n) < 2 {
		return -1
	}
	switch (n[0] >> 1) & 0x3f {
	case 32:
		return 0
	case 33:
		return 1
	case 34:
		return 2
	}
	return -1
}

// errorReason classifies a write error for the errors metric.
func errorReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "disk_full"
	default:
		return "io"
	}
}
