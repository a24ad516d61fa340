package record

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// A clip is a progressive MP4 (ftyp, moov with complete sample tables,
// mdat) over recorded bytes: its moov is built in memory, its mdat is a
// list of byte ranges of the segment files, in recorded order. Nothing is
// decoded or re-encoded; the same segments give the same bytes.

// segSnap is a copy of an index entry taken under the index lock.
type segSnap struct {
	segment
	path string // absolute
	rel  string // relative to the recording root, for messages
}

// piece is a range of a segment file placed at out in the clip.
type piece struct {
	out  int64
	file int
	off  int64
	n    int64
}

// trackOut accumulates one output track's sample tables.
type trackOut struct {
	desc    trackDesc
	sizes   []uint32
	stts    []runEntry // (count, delta)
	ctts    []runEntry // (count, offset)
	hasCTTS bool
	sync    []uint32 // 1-based sample numbers
	chunks  []chunk
	first   int64 // output decode time of the first sample (track ticks)
	last    int64 // of the last sample
	lastDur uint32
	tail    []tailSample // video: the latest samples, for trimOpenTail
}

// tailSample is a recent sample's output decode time and offset.
type tailSample struct {
	dts int64
	cto int32
}

// maxTail bounds the samples trimOpenTail looks at (and may drop): more
// than any reorder depth of H.264/H.265.
const maxTail = 64

type runEntry struct {
	count uint32
	value uint32
}

type chunk struct {
	out     int64 // offset within the mdat payload
	samples uint32
}

func appendRun(runs []runEntry, v uint32) []runEntry {
	if n := len(runs); n > 0 && runs[n-1].value == v {
		runs[n-1].count++
		return runs
	}
	return append(runs, runEntry{1, v})
}

func (t *trackOut) count() int { return len(t.sizes) }

// add appends one sample at output decode time dts (clamped to follow the
// previous sample) with its recorded duration dur.
func (t *trackOut) add(dts int64, size uint32, cto int32, sync bool, dur uint32) {
	if t.count() == 0 {
		t.first = dts
	} else {
		dts = max(dts, t.last+1)
		t.stts = appendRun(t.stts, uint32(dts-t.last))
	}
	t.sizes = append(t.sizes, size)
	t.ctts = appendRun(t.ctts, uint32(cto))
	if cto != 0 {
		t.hasCTTS = true
	}
	if sync {
		t.sync = append(t.sync, uint32(t.count()))
	}
	t.last, t.lastDur = dts, max(dur, 1)
	if t.desc.Video {
		if len(t.tail) == 2*maxTail {
			t.tail = append(t.tail[:0], t.tail[maxTail:]...)
		}
		t.tail = append(t.tail, tailSample{dts, cto})
	}
}

// trimOpenTail drops trailing samples (in decode order) of a track with
// reordered frames (B-frames) that would leave a hole in presentation:
// the window's end, or the live edge of a recording, can fall between an
// anchor frame and the B-frames shown before it (decoded after it). While
// the latest-presented sample of the tail is more than 1.5 frame
// intervals after the one presented before it, the last sample goes. It
// returns how many went. Streams without reordering are untouched.
func (t *trackOut) trimOpenTail() int {
	n := 0
	for t.hasCTTS && t.count() > 1 && len(t.tail) > 2 && t.tailOpen() {
		t.pop()
		n++
	}
	return n
}

// tailOpen reports a hole before the latest-presented sample of the tail.
func (t *trackOut) tailOpen() bool {
	first, last := t.tail[0].dts, t.tail[len(t.tail)-1].dts
	interval := (last - first) / int64(len(t.tail)-1) // mean frame interval
	top, next := int64(math.MinInt64), int64(math.MinInt64)
	for _, s := range t.tail {
		switch p := s.dts + int64(s.cto); {
		case p > top:
			top, next = p, top
		case p > next:
			next = p
		}
	}
	return interval > 0 && 2*(top-next) > 3*interval
}

// pop removes the last sample from the sample tables (its bytes stay in
// the mdat, unreferenced).
func (t *trackOut) pop() {
	n := t.count()
	t.sizes = t.sizes[:n-1]
	t.ctts = popRun(t.ctts)
	if k := len(t.sync); k > 0 && t.sync[k-1] == uint32(n) {
		t.sync = t.sync[:k-1]
	}
	if c := &t.chunks[len(t.chunks)-1]; c.samples > 1 {
		c.samples--
	} else {
		t.chunks = t.chunks[:len(t.chunks)-1]
	}
	t.tail = t.tail[:len(t.tail)-1]
	d := t.stts[len(t.stts)-1].value // n > 1: there is a delta
	t.stts = popRun(t.stts)
	t.last -= int64(d)
	t.lastDur = d
}

func popRun(runs []runEntry) []runEntry {
	n := len(runs)
	if runs[n-1].count > 1 {
		runs[n-1].count--
		return runs
	}
	return runs[:n-1]
}

// end is the output time after the last sample (track ticks).
func (t *trackOut) end() int64 { return t.last + int64(t.lastDur) }

// clipBuilder assembles one clip from consecutive segments.
type clipBuilder struct {
	from, to time.Time // requested window
	tracks   []*trackOut
	init     string
	main     int
	origin   time.Time // UTC at output time 0: the starting keyframe
	started  bool
	lastEnd  time.Time // UTC end of the main track so far
	files    []string
	pieces   []piece
	mdatLen  int64
	done     bool // reached the end of the window
}

// errBreak means the segment cannot continue the clip (gap, other codecs).
var errBreak = errors.New("clip break")

// addSegment appends what segment s holds inside the window. It returns
// errBreak when s cannot continue this clip, or a *CorruptError.
func (b *clipBuilder) addSegment(s *segSnap) error {
	if b.started && (s.Init != b.init || s.Start.Sub(b.lastEnd) > SpanGap) {
		return errBreak
	}
	info, err := readSegmentFile(s)
	if err != nil {
		return err
	}
	if !b.started {
		if err := b.begin(s, info); err != nil {
			return err
		}
	}
	b.files = append(b.files, s.path)
	fileIdx := len(b.files) - 1
	for _, fr := range info.frags {
		for _, ft := range fr.tracks {
			b.addRun(s, info, ft, fileIdx)
		}
		if b.done {
			break
		}
	}
	return nil
}

// readSegmentFile parses a segment up to its indexed size; any problem is
// a CorruptError naming the file.
func readSegmentFile(s *segSnap) (*segInfo, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, &CorruptError{File: s.rel, Reason: "cannot open: " + describe(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &CorruptError{File: s.rel, Reason: describe(err)}
	}
	if fi.Size() < s.Bytes {
		return nil, &CorruptError{File: s.rel, Reason: fmt.Sprintf("%d bytes on disk, %d recorded", fi.Size(), s.Bytes)}
	}
	info, err := parseSegment(f, s.Bytes)
	if err != nil {
		return nil, &CorruptError{File: s.rel, Reason: err.Error()}
	}
	if info.tailErr != nil {
		return nil, &CorruptError{File: s.rel, Reason: info.tailErr.Error()}
	}
	if initKey(info.tracks) != s.Init {
		return nil, &CorruptError{File: s.rel, Reason: "its tracks differ from the index"}
	}
	return info, nil
}

func describe(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// begin picks the starting keyframe in the first usable segment: the last
// one at or before the window start, else the first one.
func (b *clipBuilder) begin(s *segSnap, info *segInfo) error {
	b.main = mainTrackOf(info.tracks)
	var pick time.Time
	found := false
	for _, fr := range info.frags {
		for _, ft := range fr.tracks {
			if ft.track != b.main {
				continue
			}
			t := int64(ft.baseTime)
			ts := info.tracks[b.main].Timescale
			for _, smp := range ft.samples {
				at := s.Start.Add(fromTicks(t, ts))
				t += int64(smp.dur)
				if !smp.sync || !at.Before(b.to) {
					continue
				}
				if !found || !at.After(b.from) {
					pick, found = at, true
				}
			}
		}
	}
	if !found {
		return errNothingHere
	}
	b.origin, b.started, b.init = pick, true, s.Init
	b.lastEnd = pick
	for _, d := range info.tracks {
		b.tracks = append(b.tracks, &trackOut{desc: d})
	}
	return nil
}

// errNothingHere: the segment has no keyframe inside the window.
var errNothingHere = errors.New("no keyframe in the window")

// addRun appends the samples of one track fragment that fall in the
// clip, merging contiguous bytes into one chunk and one piece.
func (b *clipBuilder) addRun(s *segSnap, info *segInfo, ft fragTrack, fileIdx int) {
	to := b.tracks[ft.track]
	ts := to.desc.Timescale
	t := int64(ft.baseTime)
	var cur *chunk
	for _, smp := range ft.samples {
		at := s.Start.Add(fromTicks(t, ts))
		t += int64(smp.dur)
		if at.Before(b.origin) {
			continue
		}
		if !at.Before(b.to) {
			if ft.track == b.main {
				b.done = true
			}
			break
		}
		to.add(ticks(at.Sub(b.origin), ts), smp.size, smp.cto, smp.sync || !to.desc.Video, smp.dur)
		if ft.track == b.main {
			b.lastEnd = at.Add(fromTicks(int64(smp.dur), ts))
		}
		n := len(b.pieces)
		if cur != nil && n > 0 && b.pieces[n-1].file == fileIdx && b.pieces[n-1].off+b.pieces[n-1].n == smp.off {
			b.pieces[n-1].n += int64(smp.size)
			cur.samples++
		} else {
			b.pieces = append(b.pieces, piece{out: b.mdatLen, file: fileIdx, off: smp.off, n: int64(smp.size)})
			to.chunks = append(to.chunks, chunk{out: b.mdatLen, samples: 1})
			cur = &to.chunks[len(to.chunks)-1]
		}
		b.mdatLen += int64(smp.size)
	}
}

// empty reports whether the clip has no sample of its main track.
func (b *clipBuilder) empty() bool {
	return !b.started || b.tracks[b.main].count() == 0
}
