package record

import "time"

// checkClock re-anchors the recording clock when the wall clock was more
// than MaxClockOffset away from it when a keyframe arrived (stamped rec on
// epoch, and wall: a step, or a clock that was wrong at start and
// corrected by NTP). Cameras call it at a segment boundary, before opening
// a segment at that keyframe; it reports whether it re-anchored.
func (r *Recorder) checkClock(rec time.Time, epoch uint64, wall time.Time) bool {
	step, ok := r.clock.Reanchor(rec, epoch, wall, MaxClockOffset)
	if !ok {
		return false
	}
	r.Metrics.clockSteps.Inc()
	r.Log.Warn("wall clock stepped: recording times follow the new wall clock from each camera's next segment "+
		"(recordings since the last anchor carry the old clock's times)",
		"step", step.String(), "now", FormatTime(r.clock.Now()))
	return true
}

// watchClock (each retention pass) exports the offset between the wall
// clock and the recording clock and warns, once per anchor, when it is
// beyond MaxClockOffset: the clock re-anchors at the next segment boundary.
func (r *Recorder) watchClock() {
	off := r.clock.Offset()
	r.Metrics.clockOffset.Set(off.Seconds())
	if off <= MaxClockOffset && off >= -MaxClockOffset {
		return
	}
	epoch := r.clock.Epoch()
	r.clockMu.Lock()
	warned := r.clockWarned == epoch+1
	r.clockWarned = epoch + 1
	r.clockMu.Unlock()
	if !warned {
		r.Log.Warn("wall clock differs from the recording clock; recording times follow it from each camera's next segment",
			"offset", off.String(), "max", MaxClockOffset.String())
	}
}
