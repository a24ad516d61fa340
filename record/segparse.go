package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// field reads big-endian integers from a payload, remembering the first
// out-of-range read.
type field struct {
	b   []byte
	pos int
	bad bool
}

func (f *field) take(n int) []byte {
	if f.bad || n < 0 || len(f.b)-f.pos < n {
		f.bad = true
		return make([]byte, max(n, 0))
	}
	p := f.b[f.pos : f.pos+n]
	f.pos += n
	return p
}

func (f *field) u32() uint32 { return binary.BigEndian.Uint32(f.take(4)) }
func (f *field) u64() uint64 { return binary.BigEndian.Uint64(f.take(8)) }

// parseMoov reads the tracks of a movie box payload.
func parseMoov(b []byte) ([]trackDesc, error) {
	var out []trackDesc
	for len(b) > 0 {
		bx, err := nextBox(b)
		if err != nil {
			return nil, err
		}
		b = b[len(bx.raw):]
		if bx.typ != "trak" {
			continue
		}
		if len(out) == maxTracks {
			return nil, errors.New("too many tracks")
		}
		d, err := parseTrak(bx.payload)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.ID == d.ID {
				return nil, errors.New("duplicate track id")
			}
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no tracks")
	}
	return out, nil
}

func parseTrak(b []byte) (trackDesc, error) {
	var d trackDesc
	tkhd, err := childBox(b, "tkhd")
	if err != nil {
		return d, err
	}
	f := field{b: tkhd.payload}
	if v := f.take(4)[0]; v == 1 {
		f.take(16)
	} else {
		f.take(8)
	}
	d.ID = f.u32()
	mdhd, err := boxPath(b, "mdia", "mdhd")
	if err != nil {
		return d, err
	}
	g := field{b: mdhd.payload}
	if v := g.take(4)[0]; v == 1 {
		g.take(16)
	} else {
		g.take(8)
	}
	d.Timescale = g.u32()
	hdlr, err := boxPath(b, "mdia", "hdlr")
	if err != nil {
		return d, err
	}
	h := field{b: hdlr.payload}
	h.take(8)
	switch string(h.take(4)) {
	case "vide":
		d.Video = true
	case "soun":
	default:
		return d, errors.New("track is neither video nor sound")
	}
	stsd, err := boxPath(b, "mdia", "minf", "stbl", "stsd")
	if err != nil {
		return d, err
	}
	if f.bad || g.bad || h.bad || d.ID == 0 || d.Timescale == 0 || len(stsd.payload) < 8 {
		return d, errors.New("bad track header")
	}
	entry, err := nextBox(stsd.payload[8:])
	if err != nil {
		return d, fmt.Errorf("sample entry: %w", err)
	}
	d.Entry = entry.raw
	d.Width, d.Height = entryDimensions(entry.raw, d.Video)
	return d, nil
}

// tfhd flags and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8).
const (
	tfhdBaseDataOffset   = 0x01
	tfhdSampleDescIndex  = 0x02
	tfhdDefaultDuration  = 0x08
	tfhdDefaultSize      = 0x10
	tfhdDefaultFlags     = 0x20
	trunDataOffset       = 0x01
	trunFirstSampleFlags = 0x04
	trunDuration         = 0x100
	trunSize             = 0x200
	trunFlags            = 0x400
	trunCTO              = 0x800
	sampleNonSync        = 0x10000
)

// parseMoof reads a movie fragment box payload whose box starts at file
// offset moofOff.
func parseMoof(b []byte, moofOff int64, tracks []trackDesc) (*fragInfo, error) {
	fr := &fragInfo{off: moofOff}
	for len(b) > 0 {
		bx, err := nextBox(b)
		if err != nil {
			return nil, err
		}
		b = b[len(bx.raw):]
		if bx.typ != "traf" {
			continue
		}
		ft, err := parseTraf(bx.payload, moofOff, tracks)
		if err != nil {
			return nil, err
		}
		for _, o := range fr.tracks {
			if o.track == ft.track {
				return nil, errors.New("two track fragments for one track")
			}
		}
		fr.tracks = append(fr.tracks, ft)
	}
	return fr, nil
}

type tfhdDefaults struct {
	dur, size, flags uint32
}

// parseTraf reads one track fragment.
func parseTraf(b []byte, moofOff int64, tracks []trackDesc) (fragTrack, error) {
	ft := fragTrack{track: -1}
	tfhd, err := childBox(b, "tfhd")
	if err != nil {
		return ft, err
	}
	f := field{b: tfhd.payload}
	flags := f.u32() & 0xffffff
	id := f.u32()
	base := moofOff
	if flags&tfhdBaseDataOffset != 0 {
		base = int64(f.u64())
	}
	if flags&tfhdSampleDescIndex != 0 {
		f.u32()
	}
	var def tfhdDefaults
	if flags&tfhdDefaultDuration != 0 {
		def.dur = f.u32()
	}
	if flags&tfhdDefaultSize != 0 {
		def.size = f.u32()
	}
	if flags&tfhdDefaultFlags != 0 {
		def.flags = f.u32()
	}
	if f.bad || base < 0 {
		return ft, errors.New("bad track fragment header")
	}
	for i, t := range tracks {
		if t.ID == id {
			ft.track = i
		}
	}
	if ft.track < 0 {
		return ft, errors.New("fragment of an unknown track")
	}
	tfdt, err := childBox(b, "tfdt")
	if err != nil {
		return ft, err
	}
	g := field{b: tfdt.payload}
	if g.take(4)[0] == 1 {
		ft.baseTime = g.u64()
	} else {
		ft.baseTime = uint64(g.u32())
	}
	if g.bad {
		return ft, errors.New("bad decode time box")
	}
	pos := base
	for len(b) > 0 {
		bx, err := nextBox(b)
		if err != nil {
			return ft, err
		}
		b = b[len(bx.raw):]
		if bx.typ != "trun" {
			continue
		}
		if pos, err = parseTrun(bx.payload, base, pos, def, &ft); err != nil {
			return ft, err
		}
	}
	return ft, nil
}

// parseTrun appends a track run's samples; pos is where its data starts
// when it has no data offset. It returns where the next run's data starts.
func parseTrun(b []byte, base, pos int64, def tfhdDefaults, ft *fragTrack) (int64, error) {
	f := field{b: b}
	vf := f.u32()
	version, flags := vf>>24, vf&0xffffff
	count := f.u32()
	if count > maxTrunSamples || len(ft.samples)+int(count) > maxTrunSamples {
		return 0, errors.New("too many samples in a track run")
	}
	if flags&trunDataOffset != 0 {
		pos = base + int64(int32(f.u32()))
	}
	first, hasFirst := uint32(0), flags&trunFirstSampleFlags != 0
	if hasFirst {
		first = f.u32()
	}
	for i := range count {
		s := sampleInfo{off: pos, dur: def.dur, size: def.size}
		sf := def.flags
		if flags&trunDuration != 0 {
			s.dur = f.u32()
		}
		if flags&trunSize != 0 {
			s.size = f.u32()
		}
		if flags&trunFlags != 0 {
			sf = f.u32()
		} else if i == 0 && hasFirst {
			sf = first
		}
		if flags&trunCTO != 0 {
			v := f.u32()
			if version == 0 && v > 1<<31-1 {
				return 0, errors.New("bad composition offset")
			}
			s.cto = int32(v)
		}
		if f.bad {
			return 0, errors.New("truncated track run")
		}
		s.sync = sf&sampleNonSync == 0
		ft.samples = append(ft.samples, s)
		pos += int64(s.size)
	}
	if pos < 0 {
		return 0, errors.New("bad data offset")
	}
	return pos, nil
}
