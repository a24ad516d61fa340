package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"sort"
	"time"
)

// Clip is a playable MP4 of recorded bytes: an io.ReadSeeker (and
// io.ReaderAt) for http.ServeContent, deterministic for the same segments.
// Close it when done.
type Clip struct {
	Start time.Time // UTC of the first frame (the keyframe at or before the requested start)
	End   time.Time // UTC after the last frame
	Size  int64
	Name  string // suggested file name
	// Skipped names damaged segments that were left out (playback only).
	Skipped []error

	header []byte
	pieces []piece // out offsets are absolute
	files  []string
	etag   string
	pos    int64
	f      *os.File
	fIdx   int
}

// ETag is a strong validator of the clip's bytes, for If-Range.
func (c *Clip) ETag() string { return `"` + c.etag + `"` }

// ModTime is the end of the recorded span (stable for the same clip).
func (c *Clip) ModTime() time.Time { return c.End }

// finish builds the moov and the clip. The caller checked !b.empty().
func (b *clipBuilder) finish(name string) *Clip {
	if m := b.tracks[b.main]; m.trimOpenTail() > 0 {
		b.lastEnd = b.origin.Add(fromTicks(m.end(), m.desc.Timescale))
	}
	var w boxBuf
	w.writeFtyp(false)
	ftypLen := len(w.b)
	moov := b.moov(0)
	headerLen := int64(ftypLen + len(moov) + 16)
	w.raw(b.moov(headerLen))
	w.u32(1)
	w.fourcc("mdat")
	w.u64(uint64(16 + b.mdatLen))
	c := &Clip{
		Start: b.origin, End: b.lastEnd, Name: name,
		header: w.b, files: b.files, fIdx: -1,
		Size: headerLen + b.mdatLen,
	}
	h := sha256.New()
	h.Write(w.b)
	for _, p := range b.pieces {
		p.out += headerLen
		c.pieces = append(c.pieces, p)
	}
	for _, f := range b.files {
		h.Write([]byte(f))
	}
	c.etag = hex.EncodeToString(h.Sum(nil)[:16])
	return c
}

// moov writes the movie box; mdatStart is the file offset of the mdat
// payload (chunk offsets are 64-bit, so the size does not depend on it).
func (b *clipBuilder) moov(mdatStart int64) []byte {
	var w boxBuf
	var durMs uint64
	for _, t := range b.tracks {
		durMs = max(durMs, uint64(fromTicks(t.end(), t.desc.Timescale)/time.Millisecond))
	}
	w.open("moov")
	w.writeMvhd(b.origin, durMs, uint32(len(b.tracks)+1))
	for _, t := range b.tracks {
		if t.count() == 0 {
			continue
		}
		b.writeTrak(&w, t, mdatStart)
	}
	w.close()
	return w.b
}

func (b *clipBuilder) writeTrak(w *boxBuf, t *trackOut, mdatStart int64) {
	ts := t.desc.Timescale
	mediaDur := uint64(t.end() - t.first)
	offsetMs := uint64(fromTicks(t.first, ts) / time.Millisecond)
	mediaMs := uint64(fromTicks(int64(mediaDur), ts) / time.Millisecond)
	w.open("trak")
	w.writeTkhd(t.desc, b.origin, offsetMs+mediaMs)
	if t.first > 0 {
		// the track starts after the clip origin: an empty edit first
		w.open("edts")
		w.openFull("elst", 1, 0)
		w.u32(2)
		w.u64(offsetMs)
		w.u64(^uint64(0)) // media_time -1: empty
		w.u32(0x00010000)
		w.u64(mediaMs)
		w.u64(0)
		w.u32(0x00010000)
		w.close()
		w.close()
	}
	w.open("mdia")
	w.writeMediaHeader(t.desc, b.origin, mediaDur)
	w.open("stbl")
	w.openFull("stsd", 0, 0)
	w.u32(1)
	w.raw(t.desc.Entry)
	w.close()
	writeRuns(w, "stts", 0, append(t.stts, runEntry{1, t.lastDur}))
	if t.hasCTTS {
		writeRuns(w, "ctts", 1, t.ctts)
	}
	if len(t.sync) < t.count() {
		w.openFull("stss", 0, 0)
		w.u32(uint32(len(t.sync)))
		for _, n := range t.sync {
			w.u32(n)
		}
		w.close()
	}
	w.openFull("stsc", 0, 0)
	var stsc []runEntry // (first chunk, samples per chunk)
	for i, c := range t.chunks {
		if n := len(stsc); n == 0 || stsc[n-1].value != c.samples {
			stsc = append(stsc, runEntry{uint32(i + 1), c.samples})
		}
	}
	w.u32(uint32(len(stsc)))
	for _, e := range stsc {
		w.u32(e.count)
		w.u32(e.value)
		w.u32(1)
	}
	w.close()
	w.openFull("stsz", 0, 0)
	w.u32(0)
	w.u32(uint32(len(t.sizes)))
	for _, s := range t.sizes {
		w.u32(s)
	}
	w.close()
	w.openFull("co64", 0, 0)
	w.u32(uint32(len(t.chunks)))
	for _, c := range t.chunks {
		w.u64(uint64(mdatStart + c.out))
	}
	w.close()
	w.close() // stbl
	w.close() // minf
	w.close() // mdia
	w.close() // trak
}

func writeRuns(w *boxBuf, typ string, version uint8, runs []runEntry) {
	w.openFull(typ, version, 0)
	w.u32(uint32(len(runs)))
	for _, r := range runs {
		w.u32(r.count)
		w.u32(r.value)
	}
	w.close()
}

// ReadAt reads the clip's bytes at off.
func (c *Clip) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= c.Size {
			return n, io.EOF
		}
		if at < int64(len(c.header)) {
			n += copy(p[n:], c.header[at:])
			continue
		}
		i := sort.Search(len(c.pieces), func(i int) bool { return c.pieces[i].out+c.pieces[i].n > at })
		pc := c.pieces[i]
		want := min(int64(len(p)-n), pc.out+pc.n-at)
		f, err := c.file(pc.file)
		if err != nil {
			return n, err
		}
		m, err := f.ReadAt(p[n:n+int(want)], pc.off+(at-pc.out))
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // a segment shrank under us
			}
			return n, err
		}
	}
	return n, nil
}

func (c *Clip) file(i int) (*os.File, error) {
	if c.fIdx == i {
		return c.f, nil
	}
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	f, err := os.Open(c.files[i])
	if err != nil {
		return nil, err
	}
	c.f, c.fIdx = f, i
	return f, nil
}

// Read implements io.Reader.
func (c *Clip) Read(p []byte) (int, error) {
	if c.pos >= c.Size {
		return 0, io.EOF
	}
	n, err := c.ReadAt(p[:min(int64(len(p)), c.Size-c.pos)], c.pos)
	c.pos += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (c *Clip) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.pos
	case io.SeekEnd:
		offset += c.Size
	default:
		return 0, errors.New("bad whence")
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	c.pos = offset
	return offset, nil
}

// Close releases the open segment file.
func (c *Clip) Close() error {
	if c.f != nil {
		err := c.f.Close()
		c.f, c.fIdx = nil, -1
		return err
	}
	return nil
}
