package democam

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/pion/rtp"
)

const (
	videoClock     = 90000
	frameTicks     = videoClock / FPS // 6000
	gopFrames      = 2 * FPS
	audioPacketDur = 20 * time.Millisecond
	audioSamples   = 160
	payloadMax     = 1400 // leaves room for CSRCs, extensions and padding
)

// emitter is the camera's sensor: it sends frames on the wall-clock schedule
// to whatever stream is current.
type emitter struct {
	c      *Camera
	anchor time.Time // start of the minute (monotonic reading kept)

	g        int64 // next video frame, decode order, global
	k        int64 // next audio packet
	m        int64 // next metadata second
	vBase    uint32
	aBase    uint32
	mBase    uint32
	vSeq     uint16
	aSeq     uint16
	mSeq     uint16
	enc264   *rtph264.Encoder
	enc265   *rtph265.Encoder
	onvifSeq uint8
}

func newEmitter(c *Camera) (*emitter, error) {
	now := time.Now()
	e := &emitter{
		c:      c,
		anchor: now.Add(-time.Duration(now.UnixNano() % int64(time.Minute))),
	}
	elapsed := now.Sub(e.anchor)
	// start at the keyframe of the current GOP (the last even second of the
	// minute); the frames already due go out at once, before any client can
	// have connected.
	e.g = int64(elapsed/(2*time.Second)) * gopFrames
	if c.audio != nil {
		e.k = int64(math.Ceil(float64(elapsed) / float64(c.audio.every)))
	}
	e.m = int64(math.Ceil(elapsed.Seconds()))
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	e.vBase = binary.BigEndian.Uint32(b[0:4])
	e.aBase = binary.BigEndian.Uint32(b[4:8])
	e.mBase = e.vBase
	e.vSeq = binary.BigEndian.Uint16(b[8:10])
	e.aSeq = e.vSeq ^ 0x5555
	e.mSeq = e.vSeq ^ 0xaaaa
	if c.clip.Codec == CodecH265 {
		e.enc265 = &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: payloadMax}
		if err := e.enc265.Init(); err != nil {
			return nil, err
		}
	} else {
		e.enc264 = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: payloadMax}
		if err := e.enc264.Init(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *emitter) videoAt(g int64) time.Time {
	return e.anchor.Add(time.Duration(g) * time.Second / FPS)
}
func (e *emitter) audioAt(k int64) time.Time { return e.anchor.Add(time.Duration(k) * e.c.audio.every) }
func (e *emitter) metaAt(m int64) time.Time  { return e.anchor.Add(time.Duration(m) * time.Second) }

func (e *emitter) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := e.videoAt(e.g)
		if e.c.audio != nil {
			if t := e.audioAt(e.k); t.Before(next) {
				next = t
			}
		}
		if e.c.Quirks.DahuaTracks {
			if t := e.metaAt(e.m); t.Before(next) {
				next = t
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		st, medias, reset := e.c.current()
		if reset {
			e.resetClock()
		}
		now := time.Now()
		for !e.videoAt(e.g).After(now) {
			e.sendVideo(st, medias.video)
			e.g++
		}
		for e.c.audio != nil && !e.audioAt(e.k).After(now) {
			e.sendAudio(st, medias.audio)
			e.k++
		}
		for e.c.Quirks.DahuaTracks && !e.metaAt(e.m).After(now) {
			e.sendMeta(st, medias.meta)
			e.m++
		}
	}
}

// resetClock makes the next packets of every track start at timestamp 0
// and sequence number 0 (Quirks.TimestampResetOnReconnect).
func (e *emitter) resetClock() {
	e.vBase = -uint32(e.videoPTS(e.g) * frameTicks)
	if e.c.audio != nil {
		e.aBase = -uint32(e.k) * e.c.audio.samples
	}
	e.mBase = -uint32(e.m * videoClock)
	e.vSeq, e.aSeq, e.mSeq = 0, 0, 0
}

// videoPTS is the global presentation index of global decode index g.
func (e *emitter) videoPTS(g int64) int64 {
	n := int64(len(e.c.clip.AUs))
	loop, i := g/n, g%n
	return loop*n + int64(e.c.clip.AUs[i].PTS)
}

func (e *emitter) write(st *gortsplib.ServerStream, m *description.Media, pkt *rtp.Packet, ntp time.Time) {
	if st == nil || m == nil || e.c.paused.Load() {
		return
	}
	if err := st.WritePacketRTPWithNTP(m, pkt, ntp); err != nil {
		e.c.log.Debug("write RTP", "err", err)
	}
}

func (e *emitter) sendVideo(st *gortsplib.ServerStream, m *description.Media) {
	clip := e.c.clip
	au := clip.AUs[e.g%int64(len(clip.AUs))]
	pts := e.videoPTS(e.g)
	ts := e.vBase + uint32(pts*frameTicks)
	ntp := e.videoAt(pts)
	pkts, err := e.packetize(e.c.quirkAU(au))
	if err != nil {
		e.c.log.Error("packetize", "err", err)
		return
	}
	for i, p := range pkts {
		p.Timestamp = ts
		p.SequenceNumber = e.vSeq
		e.vSeq++
		if e.c.Quirks.HeaderExtensions {
			e.addExtensions(p, i == 0, ntp)
		}
		if e.c.Quirks.NoMarker {
			p.Marker = false
		}
		e.write(st, m, p, ntp)
	}
}

func (e *emitter) packetize(nalus [][]byte) ([]*rtp.Packet, error) {
	q := e.c.Quirks
	codec := e.c.clip.Codec
	if q.PacketizationMode0 && codec == CodecH264 {
		out := make([]*rtp.Packet, len(nalus))
		for i, n := range nalus {
			if len(n) > payloadMax {
				return nil, fmt.Errorf("NAL unit of %d bytes does not fit packetization-mode=0", len(n))
			}
			marker := i == len(nalus)-1 || q.MarkerOnParamSets && isParamSet(codec, n)
			out[i] = &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: marker}, Payload: n}
		}
		return out, nil
	}
	var out []*rtp.Packet
	if q.MarkerOnParamSets {
		rest := nalus[:0:0]
		for _, n := range nalus {
			if isParamSet(codec, n) {
				out = append(out, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: true}, Payload: n})
			} else {
				rest = append(rest, n)
			}
		}
		nalus = rest
	}
	var pkts []*rtp.Packet
	var err error
	if codec == CodecH265 {
		pkts, err = e.enc265.Encode(nalus)
	} else {
		pkts, err = e.enc264.Encode(nalus)
	}
	return append(out, pkts...), err
}

// addExtensions adds CSRCs, padding and a header extension to a packet.
func (e *emitter) addExtensions(p *rtp.Packet, first bool, ntp time.Time) {
	p.CSRC = []uint32{0x11111111, 0x22222222}
	p.Padding = true
	p.PaddingSize = 4
	if first {
		// ONVIF Streaming Spec 6.3: NTP timestamp (8), C E D T + mbz (1),
		// CSeq (1), padding (2). Not RFC 8285 shaped.
		var b [12]byte
		secs := uint64(ntp.Unix() + 2208988800)
		frac := uint64(ntp.Nanosecond()) << 32 / 1e9
		binary.BigEndian.PutUint64(b[0:8], secs<<32|frac)
		b[8] = 0x80 | 0x40 // C (clean point) and E (end of contiguous section) flags
		b[9] = e.onvifSeq
		e.onvifSeq++
		p.Extension = true
		p.ExtensionProfile = 0xABAC
		_ = p.SetExtension(0, b[:])
		return
	}
	p.Extension = true
	p.ExtensionProfile = rtp.ExtensionProfileOneByte
	_ = p.SetExtension(1, []byte{0x12, 0x34, 0x56})
}

func (e *emitter) sendAudio(st *gortsplib.ServerStream, m *description.Media) {
	a := e.c.audio
	for _, p := range a.packets() {
		p.SequenceNumber = e.aSeq
		p.Timestamp = e.aBase + uint32(e.k)*a.samples
		e.aSeq++
		e.write(st, m, p, e.audioAt(e.k))
	}
}

func (e *emitter) sendMeta(st *gortsplib.ServerStream, m *description.Media) {
	at := e.metaAt(e.m)
	xml := `<?xml version="1.0" encoding="UTF-8"?><tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">` +
		`<tt:VideoAnalytics><tt:Frame UtcTime="` + at.UTC().Format("2006-01-02T15:04:05.000Z") + `">` +
		`<tt:Object ObjectId="1"><tt:Appearance><tt:Class><tt:Type Likelihood="0.93">Human</tt:Type></tt:Class></tt:Appearance></tt:Object>` +
		`</tt:Frame></tt:VideoAnalytics></tt:MetadataStream>`
	p := &rtp.Packet{
		Header: rtp.Header{
			Version: 2, PayloadType: 107, Marker: true,
			SequenceNumber: e.mSeq, Timestamp: e.mBase + uint32(e.m*videoClock),
		},
		Payload: []byte(xml),
	}
	e.mSeq++
	e.write(st, m, p, at)
}

// pcmuTone returns 20 ms of a 500 Hz tone at -12 dBFS, G.711 mu-law. 500 Hz
// is 16 samples a period, so every packet is the same.
func pcmuTone() []byte {
	out := make([]byte, audioSamples)
	for i := range out {
		s := 0.25 * math.Sin(2*math.Pi*500*float64(i)/8000)
		out[i] = linearToMulaw(int16(s * 32767))
	}
	return out
}

// linearToMulaw is the ITU-T G.711 mu-law encoder.
func linearToMulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x := int(s)
	sign := 0
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > clip {
		x = clip
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}
