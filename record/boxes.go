package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Box writing. Codec configuration (avc1/avcC, hvc1/hvcC, Opus/dOps,
// mp4a/esds) and fragments (moof+mdat) are written by mediacommon's fmp4
// muxer. The moov around them is written here because record needs two
// things mediacommon's fmp4/pmp4 cannot give: G.711 kept as recorded (the
// QuickTime 'ulaw'/'alaw' sample entries, which ffmpeg and browsers read),
// and a progressive moov whose sample tables point at bytes that stay in
// the segment files (pmp4 writes the whole file out).

// boxBuf builds boxes in a byte slice; open/close nest.
type boxBuf struct {
	b     []byte
	stack []int
}

func (w *boxBuf) open(typ string) {
	w.stack = append(w.stack, len(w.b))
	w.b = append(w.b, 0, 0, 0, 0)
	w.b = append(w.b, typ[:4]...)
}

func (w *boxBuf) openFull(typ string, version uint8, flags uint32) {
	w.open(typ)
	w.u32(uint32(version)<<24 | flags&0xffffff)
}

func (w *boxBuf) close() {
	pos := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	binary.BigEndian.PutUint32(w.b[pos:], uint32(len(w.b)-pos))
}

func (w *boxBuf) u16(v uint16)    { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *boxBuf) u32(v uint32)    { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *boxBuf) u64(v uint64)    { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *boxBuf) raw(p []byte)    { w.b = append(w.b, p...) }
func (w *boxBuf) zeros(n int)     { w.b = append(w.b, make([]byte, n)...) }
func (w *boxBuf) fourcc(s string) { w.b = append(w.b, s[:4]...) }

var unityMatrix = [9]uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

func (w *boxBuf) matrix() {
	for _, v := range unityMatrix {
		w.u32(v)
	}
}

// mp4Epoch is the MP4 time origin (1904-01-01 UTC).
var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

func mp4Time(t time.Time) uint64 {
	if t.Before(mp4Epoch) {
		return 0
	}
	return uint64(t.Sub(mp4Epoch) / time.Second)
}

// trackDesc is what a moov says about one track.
type trackDesc struct {
	ID        uint32
	Video     bool
	Timescale uint32
	Entry     []byte // the whole sample entry box (avc1, hvc1, Opus, mp4a, ulaw, alaw)
	Width     uint16 // video: from the sample entry
	Height    uint16
}

const videoTimescale = 90000

// newTrackDesc builds the description of track t with id, using the video
// parameter sets ps (H.264 {SPS, PPS}, H.265 {VPS, SPS, PPS}).
func newTrackDesc(id uint32, t Track, ps [][]byte) (trackDesc, error) {
	d := trackDesc{ID: id, Video: t.Codec.Video(), Timescale: uint32(t.ClockRate)}
	ch := max(t.Channels, 1)
	var c codecs.Codec
	switch t.Codec {
	case CodecH264:
		if len(ps) < 2 {
			return d, errors.New("H.264 without SPS/PPS")
		}
		c = &codecs.H264{SPS: ps[0], PPS: ps[1]}
	case CodecH265:
		if len(ps) < 3 {
			return d, errors.New("H.265 without VPS/SPS/PPS")
		}
		c = &codecs.H265{VPS: ps[0], SPS: ps[1], PPS: ps[2]}
	case CodecOpus:
		c = &codecs.Opus{ChannelCount: ch}
		d.Timescale = 48000
	case CodecAAC:
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(t.AACConfig); err != nil {
			return d, fmt.Errorf("AAC config: %w", err)
		}
		c = &codecs.MPEG4Audio{Config: conf}
		if d.Timescale == 0 {
			d.Timescale = uint32(conf.SampleRate)
		}
	case CodecPCMU, CodecPCMA:
		if d.Timescale == 0 {
			d.Timescale = 8000
		}
		d.Entry = g711Entry(t.Codec, ch, d.Timescale)
		return d, nil
	default:
		return d, fmt.Errorf("codec %q cannot be recorded", t.Codec)
	}
	if d.Video {
		d.Timescale = videoTimescale
	}
	if d.Timescale == 0 || d.Timescale > 1_000_000 {
		return d, fmt.Errorf("%s: bad clock rate %d", t.Codec, t.ClockRate)
	}
	entry, err := mediacommonEntry(c, d.Timescale)
	if err != nil {
		return d, fmt.Errorf("%s: %w", t.Codec, err)
	}
	d.Entry = entry
	d.Width, d.Height = entryDimensions(entry, d.Video)
	return d, nil
}

// mediacommonEntry lets mediacommon write an init segment for codec c and
// returns its sample entry box.
func mediacommonEntry(c codecs.Codec, timescale uint32) ([]byte, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: timescale, Codec: c}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	moov, err := childBox(b, "moov")
	if err != nil {
		return nil, err
	}
	stsd, err := boxPath(moov.payload, "trak", "mdia", "minf", "stbl", "stsd")
	if err != nil {
		return nil, err
	}
	if len(stsd.payload) < 8 {
		return nil, errors.New("short stsd")
	}
	first, err := nextBox(stsd.payload[8:])
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), first.raw...), nil
}

// g711Entry is a QuickTime sound sample description (version 0) for
// G.711: one byte per sample and channel, kept exactly as recorded.
func g711Entry(c Codec, channels int, rate uint32) []byte {
	var w boxBuf
	if c == CodecPCMU {
		w.open("ulaw")
	} else {
		w.open("alaw")
	}
	w.zeros(6) // reserved
	w.u16(1)   // data_reference_index
	w.zeros(8) // version, revision, vendor
	w.u16(uint16(channels))
	w.u16(16) // sample size as QuickTime writes it for G.711
	w.u16(0)  // compression id
	w.u16(0)  // packet size
	w.u32(rate << 16)
	w.close()
	return w.b
}

// entryDimensions reads width and height from a visual sample entry.
func entryDimensions(entry []byte, video bool) (uint16, uint16) {
	// header 8, reserved 6, data_reference_index 2, pre_defined/reserved 16
	if !video || len(entry) < 36 {
		return 0, 0
	}
	return binary.BigEndian.Uint16(entry[32:]), binary.BigEndian.Uint16(entry[34:])
}

// writeFtyp writes the file type box.
func (w *boxBuf) writeFtyp(fragmented bool) {
	w.open("ftyp")
	if fragmented {
		w.fourcc("iso6")
		w.u32(1)
		w.fourcc("iso6")
		w.fourcc("iso5")
		w.fourcc("mp41")
	} else {
		w.fourcc("isom")
		w.u32(512)
		w.fourcc("isom")
		w.fourcc("iso2")
		w.fourcc("mp41")
	}
	w.close()
}

func (w *boxBuf) writeMvhd(created time.Time, durationMs uint64, nextTrack uint32) {
	w.openFull("mvhd", 1, 0)
	w.u64(mp4Time(created))
	w.u64(mp4Time(created))
	w.u32(1000)
	w.u64(durationMs)
	w.u32(0x00010000) // rate 1.0
	w.u16(0x0100)     // volume 1.0
	w.zeros(10)
	w.matrix()
	w.zeros(24)
	w.u32(nextTrack)
	w.close()
}

func (w *boxBuf) writeTkhd(d trackDesc, created time.Time, durationMs uint64) {
	w.openFull("tkhd", 1, 3) // enabled, in movie
	w.u64(mp4Time(created))
	w.u64(mp4Time(created))
	w.u32(d.ID)
	w.u32(0)
	w.u64(durationMs)
	w.zeros(8)
	w.u16(0) // layer
	if d.Video {
		w.u16(0) // alternate group
		w.u16(0) // volume
	} else {
		w.u16(1)
		w.u16(0x0100)
	}
	w.u16(0)
	w.matrix()
	w.u32(uint32(d.Width) << 16)
	w.u32(uint32(d.Height) << 16)
	w.close()
}

// writeMediaHeader writes mdhd, hdlr and opens minf with its media header
// and data information; the caller writes stbl and closes minf.
func (w *boxBuf) writeMediaHeader(d trackDesc, created time.Time, duration uint64) {
	w.openFull("mdhd", 1, 0)
	w.u64(mp4Time(created))
	w.u64(mp4Time(created))
	w.u32(d.Timescale)
	w.u64(duration)
	w.u16(0x55c4) // "und"
	w.u16(0)
	w.close()
	w.openFull("hdlr", 0, 0)
	w.u32(0)
	if d.Video {
		w.fourcc("vide")
	} else {
		w.fourcc("soun")
	}
	w.zeros(12)
	if d.Video {
		w.raw([]byte("VideoHandler\x00"))
	} else {
		w.raw([]byte("SoundHandler\x00"))
	}
	w.close()
	w.open("minf")
	if d.Video {
		w.openFull("vmhd", 0, 1)
		w.zeros(8)
	} else {
		w.openFull("smhd", 0, 0)
		w.zeros(4)
	}
	w.close()
	w.open("dinf")
	w.openFull("dref", 0, 0)
	w.u32(1)
	w.openFull("url ", 0, 1)
	w.close()
	w.close()
	w.close()
}

// writeInit writes a fragmented MP4 init segment (ftyp + moov with empty
// sample tables and mvex) for the tracks.
func writeInit(tracks []trackDesc, created time.Time) []byte {
	var w boxBuf
	w.writeFtyp(true)
	w.open("moov")
	w.writeMvhd(created, 0, uint32(len(tracks)+1))
	for _, d := range tracks {
		w.open("trak")
		w.writeTkhd(d, created, 0)
		w.open("mdia")
		w.writeMediaHeader(d, created, 0)
		w.open("stbl")
		w.openFull("stsd", 0, 0)
		w.u32(1)
		w.raw(d.Entry)
		w.close()
		for _, typ := range []string{"stts", "stsc", "stco"} {
			w.openFull(typ, 0, 0)
			w.u32(0)
			w.close()
		}
		w.openFull("stsz", 0, 0)
		w.u32(0)
		w.u32(0)
		w.close()
		w.close() // stbl
		w.close() // minf
		w.close() // mdia
		w.close() // trak
	}
	w.open("mvex")
	for _, d := range tracks {
		w.openFull("trex", 0, 0)
		w.u32(d.ID)
		w.u32(1)
		w.zeros(12)
		w.close()
	}
	w.close()
	w.close() // moov
	return w.b
}
