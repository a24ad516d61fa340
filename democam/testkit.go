package democam

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
)

// The camera side of the tests' needs beyond the demo: other audio codecs,
// a silent-but-connected camera, a session timeout, and counters of what
// clients asked.

// Audio codecs a Camera can send (AudioCodec).
const (
	AudioPCMU = "pcmu" // G.711 mu-law 8 kHz mono, 160-byte frames every 20 ms (the default)
	AudioOpus = "opus" // Opus 48 kHz stereo, one 80-byte packet every 20 ms (not decodable: a stand-in)
	AudioAAC  = "aac"  // AAC-LC 16 kHz mono (config 1408), one 100-byte access unit every 64 ms (a stand-in)
)

// AudioFrameSize is the payload size of one audio frame of codec.
func AudioFrameSize(codec string) int {
	switch codec {
	case AudioOpus:
		return 80
	case AudioAAC:
		return 100
	}
	return audioSamples
}

// audioTrack is how the emitter sends one audio codec.
type audioTrack struct {
	media   *description.Media
	every   time.Duration // one frame per
	samples uint32        // RTP timestamp step per frame
	payload []byte
	aac     *rtpmpeg4audio.Encoder
}

func (c *Camera) audioCodec() string {
	if c.AudioCodec == "" {
		return AudioPCMU
	}
	return strings.ToLower(c.AudioCodec)
}

// newAudioTrack describes the camera's audio track (payload type 0 for
// PCMU, 97 otherwise).
func (c *Camera) newAudioTrack() (*audioTrack, error) {
	switch c.audioCodec() {
	case AudioOpus:
		p := make([]byte, AudioFrameSize(AudioOpus))
		_, _ = rand.Read(p)
		p[0] = 0xfc // TOC: one frame (code 0); code 3 would carry padding, which cordon drops
		return &audioTrack{
			media: &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: 97, ChannelCount: 2}}},
			every: 20 * time.Millisecond, samples: 960, payload: p,
		}, nil
	case AudioAAC:
		conf := &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1}
		f := &format.MPEG4Audio{PayloadTyp: 97, Config: conf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
		enc := &rtpmpeg4audio.Encoder{PayloadType: 97, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
		if err := enc.Init(); err != nil {
			return nil, err
		}
		p := make([]byte, AudioFrameSize(AudioAAC))
		_, _ = rand.Read(p)
		return &audioTrack{
			media: &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{f}},
			every: 64 * time.Millisecond, samples: 1024, payload: p, aac: enc,
		}, nil
	}
	return &audioTrack{
		media: &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{
			PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1,
		}}},
		every: audioPacketDur, samples: audioSamples, payload: pcmuTone(),
	}, nil
}

// packets returns one audio frame's RTP packets (header fields but
// timestamp and sequence number set).
func (a *audioTrack) packets() []*rtp.Packet {
	if a.aac != nil {
		pkts, err := a.aac.Encode([][]byte{a.payload})
		if err != nil {
			return nil
		}
		return pkts
	}
	return []*rtp.Packet{{Header: rtp.Header{Version: 2, PayloadType: a.media.Formats[0].PayloadType()}, Payload: a.payload}}
}

// PauseMedia stops (true) or resumes (false) sending RTP while the RTSP
// server and its sessions stay up: a camera whose encoder hangs.
func (c *Camera) PauseMedia(paused bool) { c.paused.Store(paused) }

// Requests returns how many RTSP requests of a method ("SETUP", "OPTIONS",
// ...) clients sent since Initialize.
func (c *Camera) Requests(method string) int {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return c.requests[base.Method(method)]
}

// Connections returns how many RTSP connections clients opened since
// Initialize.
func (c *Camera) Connections() int {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return c.conns
}

// OpenConnections returns how many RTSP connections are open now.
func (c *Camera) OpenConnections() int {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return c.open
}

// ConnectedAt returns when each RTSP connection was opened, oldest first.
func (c *Camera) ConnectedAt() []time.Time {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return append([]time.Time(nil), c.connTimes...)
}

// OnRequest counts requests.
func (h *handler) OnRequest(_ *gortsplib.ServerConn, req *base.Request) {
	h.c.countMu.Lock()
	if h.c.requests == nil {
		h.c.requests = map[base.Method]int{}
	}
	h.c.requests[req.Method]++
	h.c.countMu.Unlock()
}

// Sessions returns how many RTSP sessions (SETUP to teardown or close) are
// open now: a camera with few stream slots cares about this number.
func (c *Camera) Sessions() int {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return c.sessOpen
}

// SessionsOpened returns how many RTSP sessions clients opened since
// Initialize.
func (c *Camera) SessionsOpened() int {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return c.sessOpened
}

// MaxSessions returns the most RTSP sessions that were open at once since
// Initialize (or since ResetMaxSessions).
func (c *Camera) MaxSessions() int {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	return c.sessMax
}

// ResetMaxSessions starts MaxSessions again from the sessions open now.
func (c *Camera) ResetMaxSessions() {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	c.sessMax = c.sessOpen
}

// OnSessionOpen counts RTSP sessions.
func (h *handler) OnSessionOpen(*gortsplib.ServerHandlerOnSessionOpenCtx) {
	h.c.countMu.Lock()
	h.c.sessOpened++
	h.c.sessOpen++
	h.c.sessMax = max(h.c.sessMax, h.c.sessOpen)
	h.c.countMu.Unlock()
}

// OnSessionClose counts RTSP sessions that ended.
func (h *handler) OnSessionClose(*gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.c.countMu.Lock()
	h.c.sessOpen--
	h.c.countMu.Unlock()
}

// OnConnOpen counts connections.
func (h *handler) OnConnOpen(*gortsplib.ServerHandlerOnConnOpenCtx) {
	h.c.countMu.Lock()
	h.c.conns++
	h.c.open++
	h.c.connTimes = append(h.c.connTimes, time.Now())
	h.c.countMu.Unlock()
}
