package record

import (
	"time"
)

// openSegment starts a segment at keyframe s; false when it cannot (the
// reason is logged once, counted, and retried at the next keyframe).
func (c *camera) openSegment(s Sample, arrival time.Time, epoch uint64) bool {
	start := arrival.UTC().Truncate(time.Millisecond)
	c.idx.mu.Lock()
	last := c.idx.lastEnd()
	c.idx.mu.Unlock()
	if start.Before(last.Add(-SpanGap)) {
		// the clock was set back across a restart: continue the previous
		// timeline rather than overlap recordings already made
		c.warnOnce("clock", "the clock is behind this camera's newest recording; new recordings continue from its end "+
			"(they never overlap what was recorded), so their times are ahead until the camera's next break at least that long",
			"behind", last.Sub(start).String())
		start = last.Truncate(time.Millisecond)
	}
	var descs []trackDesc
	var codecs []Codec
	var chans []int
	c.trackMap = make([]int, len(c.feed.tracks))
	for i, t := range c.feed.tracks {
		d, err := newTrackDesc(uint32(len(descs)+1), t, c.params[i])
		if err != nil {
			c.trackMap[i] = -1
			if i == c.main {
				c.warnOnce("main:"+err.Error(), "cannot record this stream yet", "err", err)
				c.m.dropped.Inc()
				return false
			}
			c.warnOnce("track:"+err.Error(), "a track of this camera is not recorded", "err", err)
			continue
		}
		c.trackMap[i] = len(descs)
		descs = append(descs, d)
		codecs = append(codecs, t.Codec)
		chans = append(chans, t.Channels)
	}
	w, err := createSegment(c.rec.Path, c.id, start, descs, c.rec.NoSync)
	if err != nil {
		c.fail(err)
		return false
	}
	c.seg = w
	c.segDTS = s.DTS
	c.segArrival = arrival
	c.segEpoch = epoch
	c.segParams = make([][][]byte, len(c.params))
	for i, p := range c.params {
		c.segParams[i] = cloneAll(p)
	}
	c.frag.reset(descs, codecs, chans, c.trackMap[c.main])
	c.idx.mu.Lock()
	c.idx.insert(w.seg)
	c.publishLocked(w)
	c.idx.mu.Unlock()
	c.m.segments.Inc()
	if c.failures > 0 {
		c.log.Info("recording resumed", "after_failures", c.failures)
		c.failures = 0
	}
	return true
}

// publishLocked copies the writer's progress into the index; the caller
// holds c.idx.mu.
func (c *camera) publishLocked(w *segmentWriter) {
	c.idx.bytes += w.size - w.seg.Bytes
	w.publish()
}

// flush writes the pending fragment.
func (c *camera) flush() {
	part, end, frames := c.frag.build()
	if part == nil {
		return
	}
	w := c.seg
	endT := w.end
	if frames > 0 {
		endT = w.seg.Start.Add(end)
	}
	before := w.size
	err := w.writeFragment(part, endT, frames)
	c.frag.clear()
	if err != nil {
		c.fail(err)
		return
	}
	c.idx.mu.Lock()
	c.publishLocked(w)
	c.idx.mu.Unlock()
	c.m.bytes.Add(float64(w.size - before))
}

// closeSegment writes the pending fragment and closes the open segment.
func (c *camera) closeSegment() {
	if c.seg == nil {
		return
	}
	c.flush()
	if c.seg != nil { // flush may have failed and closed it
		c.finishSegment()
	}
}

// finishSegment closes the open segment without writing what is pending
// and records it in the day's index.
func (c *camera) finishSegment() {
	w := c.seg
	c.seg = nil
	c.frag.clear()
	sum, ok, err := w.finish()
	c.idx.mu.Lock()
	if !ok {
		c.idx.remove(w.seg)
	} else {
		c.publishLocked(w)
		w.seg.SHA256 = sum
		w.seg.open = false
	}
	c.idx.mu.Unlock()
	if err != nil {
		c.m.error("io")
		c.log.Warn("closing a recording segment failed", "segment", w.seg.rel(c.id), "err", err)
	}
	if ok {
		if err := appendIndex(w.dayDir, formatIndexLine(w.seg)); err != nil {
			// the segment is kept and known in memory; the next start-up
			// finds it unindexed and indexes it again
			c.m.error("index")
			c.log.Warn("cannot append to the recording index", "segment", w.seg.rel(c.id), "err", err)
		}
	}
	c.rec.updateGauges(c.id, c.idx)
	if ok && c.rec.segmentClosed != nil {
		c.rec.segmentClosed(c.id)
	}
}

// fail handles a write error: the segment is closed where it is, the
// error counted and logged (first and every tenth), retention is asked to
// run, and recording retries at the first keyframe after a backoff.
func (c *camera) fail(err error) {
	reason := errorReason(err)
	c.m.error(reason)
	c.failures++
	backoff := min(time.Second<<min(c.failures-1, 5), 30*time.Second)
	if c.failures == 1 || c.failures%10 == 0 {
		c.log.Error("recording write failed; live viewing is not affected, recording retries",
			"err", err, "reason", reason, "retry_in", backoff.String(), "failures", c.failures)
	}
	if c.seg != nil {
		c.finishSegment()
	}
	// measured on the stream's arrival times, like everything the writer
	// decides (the writer may be behind the wall clock)
	base := c.lastIn
	if base.IsZero() {
		base = c.rec.clock.Now()
	}
	c.failUntil = base.Add(backoff)
	c.rec.kickRetention()
}

// warnOnce logs msg once per key for this camera's writer.
func (c *camera) warnOnce(key, msg string, args ...any) {
	if c.warned == nil {
		c.warned = map[string]bool{}
	}
	if c.warned[key] || len(c.warned) > 64 {
		return
	}
	c.warned[key] = true
	c.log.Warn(msg, args...)
}
