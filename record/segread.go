package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reading segments. Segment files may be damaged (a crash, a bad disk, an
// editor): every length is checked, every count bounded, and a problem is
// an error, never a panic.

// box is one box inside a byte slice.
type box struct {
	typ     string
	raw     []byte // header + payload
	payload []byte
}

var errShortBox = errors.New("truncated box")

// nextBox parses the box at the start of b.
func nextBox(b []byte) (box, error) {
	if len(b) < 8 {
		return box{}, errShortBox
	}
	size := uint64(binary.BigEndian.Uint32(b))
	hdr := uint64(8)
	switch size {
	case 0:
		size = uint64(len(b))
	case 1:
		if len(b) < 16 {
			return box{}, errShortBox
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < hdr || size > uint64(len(b)) {
		return box{}, errShortBox
	}
	return box{typ: string(b[4:8]), raw: b[:size], payload: b[hdr:size]}, nil
}

// childBox returns the first box of type typ in the sequence b.
func childBox(b []byte, typ string) (box, error) {
	for len(b) > 0 {
		bx, err := nextBox(b)
		if err != nil {
			return box{}, err
		}
		if bx.typ == typ {
			return bx, nil
		}
		b = b[len(bx.raw):]
	}
	return box{}, fmt.Errorf("no %s box", typ)
}

// boxPath follows a path of container boxes from the sequence b.
func boxPath(b []byte, path ...string) (box, error) {
	var bx box
	for _, typ := range path {
		var err error
		if bx, err = childBox(b, typ); err != nil {
			return box{}, err
		}
		b = bx.payload
	}
	return bx, nil
}

// Bounds on what a segment may hold.
const (
	maxMoovSize     = 1 << 20
	maxMoofSize     = 4 << 20
	maxTracks       = 8
	maxTrunSamples  = 100_000
	maxFragmentData = 512 << 20
)

// sampleInfo is one sample of a fragment, located in its file.
type sampleInfo struct {
	off  int64
	size uint32
	dur  uint32
	cto  int32
	sync bool
}

type fragTrack struct {
	track    int    // index into segInfo.tracks
	baseTime uint64 // tfdt, in the track's timescale
	samples  []sampleInfo
}

type fragInfo struct {
	off, end int64 // moof start, mdat end
	tracks   []fragTrack
}

// segInfo is what parseSegment learns from a segment file.
type segInfo struct {
	tracks   []trackDesc
	initSize int64      // bytes of ftyp+moov
	frags    []fragInfo //
	size     int64      // end of the last complete fragment (or of the init)
	tailErr  error      // why parsing stopped before the end of the file (nil: clean end)
}

// readBoxAt reads the box header at off and returns type, header length and
// total size. size is the file size limit.
func readBoxHeader(r io.ReaderAt, off, size int64) (string, int64, int64, error) {
	if size-off < 8 {
		return "", 0, 0, errShortBox
	}
	var h [16]byte
	if _, err := r.ReadAt(h[:8], off); err != nil {
		return "", 0, 0, err
	}
	n, hdr := int64(binary.BigEndian.Uint32(h[:])), int64(8)
	switch n {
	case 0:
		n = size - off
	case 1:
		if size-off < 16 {
			return "", 0, 0, errShortBox
		}
		if _, err := r.ReadAt(h[8:16], off+8); err != nil {
			return "", 0, 0, err
		}
		u := binary.BigEndian.Uint64(h[8:])
		if u > uint64(size) {
			return "", 0, 0, errShortBox
		}
		n, hdr = int64(u), 16
	}
	if n < hdr || n > size-off {
		return "", 0, 0, errShortBox
	}
	return string(h[4:8]), hdr, n, nil
}

func readFull(r io.ReaderAt, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// parseSegment reads a fragmented MP4 segment of the given size. An error
// means the init is unusable; a damaged or incomplete tail is reported in
// tailErr with size set to the end of the last complete fragment.
func parseSegment(r io.ReaderAt, size int64) (*segInfo, error) {
	typ, _, n, err := readBoxHeader(r, 0, size)
	if err != nil || typ != "ftyp" || n > 1024 {
		return nil, errors.New("no file type box at the start")
	}
	off := n
	typ, _, n, err = readBoxHeader(r, off, size)
	if err != nil || typ != "moov" || n > maxMoovSize {
		return nil, errors.New("no movie box after the file type box")
	}
	moov, err := readFull(r, off, n)
	if err != nil {
		return nil, err
	}
	mb, err := nextBox(moov)
	if err != nil {
		return nil, err
	}
	tracks, err := parseMoov(mb.payload)
	if err != nil {
		return nil, fmt.Errorf("movie box: %w", err)
	}
	info := &segInfo{tracks: tracks, initSize: off + n, size: off + n}
	off += n
	for off < size {
		fr, next, err := parseFragmentAt(r, off, size, tracks)
		if err != nil {
			info.tailErr = fmt.Errorf("at byte %d: %w", off, err)
			break
		}
		if fr != nil {
			info.frags = append(info.frags, *fr)
			info.size = next
		}
		off = next
	}
	return info, nil
}

// parseFragmentAt parses the moof+mdat pair at off (or skips one other
// box, returning a nil fragment).
func parseFragmentAt(r io.ReaderAt, off, size int64, tracks []trackDesc) (*fragInfo, int64, error) {
	typ, _, n, err := readBoxHeader(r, off, size)
	if err != nil {
		return nil, 0, err
	}
	switch typ {
	case "moof":
	case "free", "skip", "styp", "sidx", "emsg", "prft":
		return nil, off + n, nil
	default:
		return nil, 0, fmt.Errorf("unexpected %q box", printable(typ))
	}
	if n > maxMoofSize {
		return nil, 0, errors.New("movie fragment box too large")
	}
	moof, err := readFull(r, off, n)
	if err != nil {
		return nil, 0, err
	}
	mdOff := off + n
	mtyp, mhdr, mn, err := readBoxHeader(r, mdOff, size)
	if err != nil {
		return nil, 0, err
	}
	if mtyp != "mdat" {
		return nil, 0, errors.New("movie fragment without media data")
	}
	if mn-mhdr > maxFragmentData {
		return nil, 0, errors.New("media data box too large")
	}
	fr, err := parseMoof(moof[8:], off, tracks)
	if err != nil {
		return nil, 0, err
	}
	fr.end = mdOff + mn
	for _, ft := range fr.tracks {
		for _, s := range ft.samples {
			if s.off < mdOff+mhdr || s.off+int64(s.size) > fr.end {
				return nil, 0, errors.New("sample outside its media data box")
			}
		}
	}
	return fr, fr.end, nil
}

func printable(s string) string {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", s)
		}
	}
	return s
}
