package record

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"
)

// Auditor is what record needs from the audit trail; the wiring implements
// it over auth/audit (events `playback` and `export`).
type Auditor interface {
	// Playback records that a principal played [Start, End) of a camera.
	Playback(PlaybackAudit) error
	// Export records an export and returns the sequence number of its
	// audit line (written into the manifest as audit_seq).
	Export(ExportAudit) (seq uint64, err error)
}

// PlaybackAudit is one playback line.
type PlaybackAudit struct {
	Principal, Remote, Camera string
	Start, End                time.Time // what was served
}

// ExportAudit is one export line, written before the manifest is signed.
// With Failed set it is the line that says export ID, audited before,
// failed and does not exist (Failed says why; Principal and Camera are
// empty for an export interrupted by a crash).
type ExportAudit struct {
	Principal, Remote, Camera string
	ID, Reason                string
	Start, End                time.Time // the requested span
	Files                     []ManifestFile
	Failed                    string
}

// Span is a stretch of continuous recording.
type Span struct {
	Start, End time.Time
}

// PlaybackQuery returns the query string of the playback URL for the
// first hour of the span: start=...&duration=...
func (s Span) PlaybackQuery() string {
	d := min(s.End.Sub(s.Start), MaxPlayback).Round(time.Millisecond)
	return url.Values{"start": {FormatTime(s.Start)}, "duration": {d.String()}}.Encode()
}

// Spans lists camera's recorded spans overlapping [start, end), clipped to
// it. A gap of more than SpanGap, or a change of codecs, splits a span.
func (r *Recorder) Spans(camera string, start, end time.Time) ([]Span, error) {
	ci := r.index(camera)
	if ci == nil {
		return nil, ErrUnknownCamera
	}
	if !end.After(start) {
		return nil, fmt.Errorf("%w: end must be after start", ErrBadSpan)
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	var out []Span
	var init string
	for _, s := range ci.segs[firstOverlap(ci.segs, start):] {
		if !s.Start.Before(end) {
			break
		}
		if !s.End.After(start) || !s.End.After(s.Start) {
			continue
		}
		st, en := maxTime(s.Start, start), minTime(s.End, end)
		if n := len(out); n > 0 && s.Init == init && st.Sub(out[n-1].End) <= SpanGap {
			out[n-1].End = maxTime(out[n-1].End, en)
		} else {
			out = append(out, Span{Start: st, End: en})
		}
		init = s.Init
	}
	return out, nil
}

// firstOverlap returns the index of the first segment that may end after t.
func firstOverlap(segs []*segment, t time.Time) int {
	i := sort.Search(len(segs), func(i int) bool { return !segs[i].Start.Before(t) })
	for i > 0 && segs[i-1].End.After(t) {
		i--
	}
	return i
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// snapshot copies the segments overlapping [from, to).
func (r *Recorder) snapshot(camera string, ci *camIndex, from, to time.Time) []*segSnap {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	var out []*segSnap
	for _, s := range ci.segs[firstOverlap(ci.segs, from):] {
		if !s.Start.Before(to) {
			break
		}
		if !s.End.After(from) || s.Bytes == 0 {
			continue
		}
		out = append(out, &segSnap{segment: *s, path: r.segPath(camera, s), rel: s.rel(camera)})
	}
	return out
}

// PlaybackRequest asks for [Start, Start+Duration) of a camera.
type PlaybackRequest struct {
	Camera    string
	Start     time.Time
	Duration  time.Duration
	Principal string // for the audit line
	Remote    string
}

// Playback returns an MP4 of one continuous recording inside the window:
// from the keyframe at or before Start (or the first recorded frame after
// it) to the end of that span or of the window, whichever comes first. A
// damaged segment ends the clip before it (or is skipped when the clip has
// not started yet) and is named in Clip.Skipped. The playback is audited
// once per principal, camera and window every 10 minutes (a browser sends
// many Range requests for one playback).
func (r *Recorder) Playback(req PlaybackRequest) (*Clip, error) {
	if req.Duration <= 0 || req.Duration > MaxPlayback {
		return nil, fmt.Errorf("%w: duration must be more than 0 and at most %s", ErrBadSpan, MaxPlayback)
	}
	ci := r.index(req.Camera)
	if ci == nil {
		return nil, ErrUnknownCamera
	}
	to := req.Start.Add(req.Duration)
	segs := r.snapshot(req.Camera, ci, req.Start, to)
	b := &clipBuilder{from: req.Start, to: to}
	var skipped []error
	for _, s := range segs {
		err := b.addSegment(s)
		var ce *CorruptError
		switch {
		case err == nil:
		case errors.Is(err, errBreak):
		case errors.Is(err, errNothingHere):
			continue
		case errors.As(err, &ce):
			r.Metrics.errors.WithLabelValues(req.Camera, "corrupt").Inc()
			r.Log.Warn("playback skips a damaged segment", "camera", req.Camera, "err", err)
			skipped = append(skipped, err)
			if !b.started {
				continue
			}
		default:
			return nil, err
		}
		if err != nil || b.done {
			break
		}
	}
	if b.empty() {
		if len(skipped) > 0 {
			return nil, skipped[0]
		}
		return nil, ErrNoRecording
	}
	clip := b.finish(fmt.Sprintf("%s-%s.mp4", req.Camera, b.origin.UTC().Format(segNameLayout)))
	clip.Skipped = skipped
	if r.audits.first(req, r.clock.Now()) {
		err := r.auditor().Playback(PlaybackAudit{
			Principal: req.Principal, Remote: req.Remote, Camera: req.Camera, Start: clip.Start, End: clip.End,
		})
		if err != nil {
			r.audits.forget(req)
			clip.Close()
			return nil, fmt.Errorf("playback refused: %w: %w", ErrAuditUnavailable, err)
		}
	}
	r.Metrics.playbacks.Inc()
	return clip, nil
}

func (r *Recorder) auditor() Auditor {
	if r.Auditor == nil {
		return refuseAudit{}
	}
	return r.Auditor
}

// refuseAudit is used when no Auditor was wired: fail closed.
type refuseAudit struct{}

func (refuseAudit) Playback(PlaybackAudit) error { return errors.New("no audit log") }
func (refuseAudit) Export(ExportAudit) (uint64, error) {
	return 0, errors.New("no audit log")
}

// auditDedup remembers recently audited playbacks (bounded).
type auditDedup struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

const (
	auditDedupFor = 10 * time.Minute
	auditDedupMax = 4096
)

func dedupKey(req PlaybackRequest) string {
	return req.Principal + "\x00" + req.Camera + "\x00" + req.Start.UTC().Format(time.RFC3339Nano) + "\x00" + req.Duration.String()
}

// first reports whether req was not audited in the last auditDedupFor.
func (d *auditDedup) first(req PlaybackRequest, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]time.Time{}
	}
	k := dedupKey(req)
	if t, ok := d.seen[k]; ok && now.Sub(t) < auditDedupFor {
		return false
	}
	if len(d.seen) >= auditDedupMax {
		for key, t := range d.seen {
			if now.Sub(t) >= auditDedupFor {
				delete(d.seen, key)
			}
		}
		if len(d.seen) >= auditDedupMax {
			clear(d.seen)
		}
	}
	d.seen[k] = now
	return true
}

func (d *auditDedup) forget(req PlaybackRequest) {
	d.mu.Lock()
	delete(d.seen, dedupKey(req))
	d.mu.Unlock()
}
