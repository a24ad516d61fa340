package relay

import "time"

// Camera timestamps are never passed through: a Stream maps each unit's
// camera PTS onto its own clock, which stays continuous across camera
// reconnects, resets and jumps.

// Bounds of an acceptable PTS step between two units of one track.
const (
	maxBackStep    = time.Second      // further back is a camera clock reset
	maxForwardStep = 10 * time.Second // further forward is a camera clock jump
)

// stamp checks a unit's camera PTS against its track's previous one and
// returns its time on the stream's timeline; false drops the unit (a late
// audio frame). Video that goes back a little is reordered (B-frames,
// reorder.go): its PTS keeps its order. Called under s.mu.
func (s *Stream) stamp(t *outTrack, pts time.Duration) (time.Duration, bool) {
	if t.havePTS {
		d := pts - t.lastPTS
		switch {
		case d < 0 && d > -maxBackStep && t.Kind == KindVideo:
			s.reorderLocked(t)
		case d < 0 && d > -maxBackStep:
			return 0, false
		case d <= -maxBackStep || d > maxForwardStep:
			s.Log.Info("camera timestamps jumped; re-basing", "jump", d.String())
			s.timeline.rebase()
			if t.reorders {
				t.newDTS()
			}
		}
	}
	t.lastPTS, t.havePTS = pts, true
	out := s.timeline.out(pts, s.Clock.Now())
	if !t.reorders {
		if out <= t.lastOut && t.lastOut != 0 {
			out = t.lastOut + time.Millisecond
		}
		t.lastOut = out
	}
	return out, true
}

// timeline maps camera PTS onto the stream's own continuous clock.
type timeline struct {
	started  bool
	origin   time.Duration // camera PTS that maps to base
	base     time.Duration
	pending  bool // next unit sets the origin
	last     time.Duration
	lastWall time.Time
	gap      time.Duration
}

// reconnect: the next unit starts a new segment, placed after the last one
// by the wall-clock time the camera was away.
func (tl *timeline) reconnect(now time.Time) {
	tl.pending = true
	if tl.started {
		tl.gap = max(now.Sub(tl.lastWall), time.Millisecond)
	}
}

// rebase: the next unit starts a new segment one frame after the last.
func (tl *timeline) rebase() {
	tl.pending = true
	tl.gap = 40 * time.Millisecond
}

func (tl *timeline) out(pts time.Duration, now time.Time) time.Duration {
	if tl.pending {
		tl.pending = false
		tl.origin = pts
		if tl.started {
			tl.base = tl.last + tl.gap
		}
		tl.started = true
	}
	o := tl.base + pts - tl.origin
	if o > tl.last {
		tl.last = o
		tl.lastWall = now
	}
	return o
}
