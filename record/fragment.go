package record

import (
	"encoding/binary"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// fragmenter collects one fragment's samples per track and turns them into
// an fmp4.Part for mediacommon to marshal. Buffers are reused between
// fragments.
type fragmenter struct {
	tracks  []*trackBuf
	main    int       // index of the segment's main track
	first   time.Time // arrival of the oldest pending sample (zero: none)
	epoch   uint64    // the clock anchor first was measured on
	part    fmp4.Part
	ptracks []*fmp4.PartTrack
}

type pendingSample struct {
	dts     time.Duration // relative to the segment's start
	cto     time.Duration // PTS - DTS
	key     bool
	off, n  int    // payload in trackBuf.arena
	natural uint32 // audio: the frame's own duration in ticks (0 = unknown)
}

type trackBuf struct {
	desc      trackDesc
	codec     Codec
	channels  int
	pend      []pendingSample
	arena     []byte
	samples   []fmp4.Sample
	lastDelta uint32
}

func (f *fragmenter) reset(descs []trackDesc, codecs []Codec, channels []int, main int) {
	f.tracks = f.tracks[:0]
	for i, d := range descs {
		f.tracks = append(f.tracks, &trackBuf{desc: d, codec: codecs[i], channels: max(channels[i], 1)})
	}
	f.main = main
	f.first = time.Time{}
}

func (f *fragmenter) empty() bool { return f.first.IsZero() }

// ticks converts a duration to a timescale, rounding down.
func ticks(d time.Duration, timescale uint32) int64 {
	ts := int64(timescale)
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

func fromTicks(t int64, timescale uint32) time.Duration {
	ts := int64(timescale)
	return time.Duration(t/ts)*time.Second + time.Duration(t%ts)*time.Second/time.Duration(ts)
}

// add queues a sample of segment track t, dts relative to the segment
// start. Audio samples holding several frames become several MP4 samples
// (G.711 blocks are joined into one).
func (f *fragmenter) add(t int, dts, cto time.Duration, key bool, data [][]byte, arrival time.Time) {
	tb := f.tracks[t]
	if f.first.IsZero() {
		f.first = arrival
	}
	switch {
	case tb.desc.Video:
		off := len(tb.arena)
		for _, n := range data {
			tb.arena = binary.BigEndian.AppendUint32(tb.arena, uint32(len(n)))
			tb.arena = append(tb.arena, n...)
		}
		tb.pend = append(tb.pend, pendingSample{dts: dts, cto: cto, key: key, off: off, n: len(tb.arena) - off})
	case tb.codec == CodecPCMU || tb.codec == CodecPCMA:
		off := len(tb.arena)
		for _, fr := range data {
			tb.arena = append(tb.arena, fr...)
		}
		n := len(tb.arena) - off
		if n > 0 {
			tb.pend = append(tb.pend, pendingSample{dts: dts, off: off, n: n, natural: uint32(n / tb.channels)})
		}
	default: // AAC, Opus: one MP4 sample per frame
		at := dts
		for _, fr := range data {
			if len(fr) == 0 {
				continue
			}
			nat := uint32(1024)
			if tb.codec == CodecOpus {
				nat = uint32(opus.PacketDuration2(fr))
			}
			off := len(tb.arena)
			tb.arena = append(tb.arena, fr...)
			tb.pend = append(tb.pend, pendingSample{dts: at, off: off, n: len(fr), natural: nat})
			at += fromTicks(int64(nat), tb.desc.Timescale)
		}
	}
}

// build returns the pending samples as a Part (nil when empty), the end of
// the main track relative to the segment start, and the number of main
// track samples.
func (f *fragmenter) build() (*fmp4.Part, time.Duration, int) {
	if f.empty() {
		return nil, 0, 0
	}
	f.part.Tracks = f.part.Tracks[:0]
	var end time.Duration
	frames := 0
	for i, tb := range f.tracks {
		if len(tb.pend) == 0 {
			continue
		}
		for len(f.ptracks) <= i {
			f.ptracks = append(f.ptracks, &fmp4.PartTrack{})
		}
		pt := f.ptracks[i]
		ts := tb.desc.Timescale
		pt.ID = int(tb.desc.ID)
		pt.BaseTime = uint64(ticks(tb.pend[0].dts, ts))
		pt.Samples = pt.Samples[:0]
		tb.samples = tb.samples[:0]
		for j, p := range tb.pend {
			dur := p.natural
			if j+1 < len(tb.pend) {
				d := ticks(tb.pend[j+1].dts, ts) - ticks(p.dts, ts)
				dur = uint32(max(d, 1))
				if tb.desc.Video {
					tb.lastDelta = dur
				}
			} else if dur == 0 {
				dur = max(tb.lastDelta, ts/25)
			}
			tb.samples = append(tb.samples, fmp4.Sample{
				Duration:        dur,
				PTSOffset:       int32(ticks(p.cto, ts)),
				IsNonSyncSample: tb.desc.Video && !p.key,
				Payload:         tb.arena[p.off : p.off+p.n],
			})
			if j+1 == len(tb.pend) && i == f.main {
				end = fromTicks(ticks(p.dts, ts)+int64(dur), ts)
			}
		}
		for j := range tb.samples {
			pt.Samples = append(pt.Samples, &tb.samples[j])
		}
		if i == f.main {
			frames = len(tb.pend)
		}
		f.part.Tracks = append(f.part.Tracks, pt)
	}
	return &f.part, end, frames
}

// clear drops the pending samples after they were written (or lost).
func (f *fragmenter) clear() {
	for _, tb := range f.tracks {
		tb.pend = tb.pend[:0]
		tb.arena = tb.arena[:0]
	}
	f.first = time.Time{}
}
