package whepclient

import (
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// What a client receives: its tracks are read here, video access units
// assembled and handed out, and the session's statistics kept (Stats, the
// join's phases, the headers seen). whepclient.go sets the session up.

// Stats are what a Client saw so far.
type Stats struct {
	VideoPackets, VideoBytes int64
	Frames                   int64 // complete video access units
	SeqGaps, TSBackwards     int   // video RTP continuity faults
	AudioPackets             int64
	VideoCodec, AudioCodec   string // negotiated MIME types, once media flows
	VideoPT                  uint8
	// FirstKey is the time from the POST to the first keyframe (0: none yet).
	FirstKey time.Duration
	// The join's phases, each from the POST (0: not reached yet): the
	// answer received, ICE connected, DTLS done (the PeerConnection
	// connected), the first video RTP datagram at the socket.
	Answered, ICEConnected, Connected, FirstPacket time.Duration
	// FirstAU tells whether an access unit was decoded; FirstAUKey whether
	// the first one was a keyframe.
	FirstAU, FirstAUKey bool
}

// phase records the time since the POST in *d, once.
func (c *Client) phase(d *time.Duration) {
	c.mu.Lock()
	if *d == 0 && !c.Posted.IsZero() {
		*d = max(time.Since(c.Posted), time.Nanosecond)
	}
	c.mu.Unlock()
}

// Stats returns what arrived so far.
func (c *Client) Stats() Stats {
	c.wire.mu.Lock()
	first := c.wire.st.First
	c.wire.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	if !first.IsZero() && !c.Posted.IsZero() {
		st.FirstPacket = max(first.Sub(c.Posted), time.Nanosecond)
	}
	return st
}

// Headers returns copies of the headers of the video packets received
// (the first 100000).
func (c *Client) Headers() []rtp.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rtp.Header(nil), c.headers...)
}

// Wire returns what the client's sockets saw of the video track.
func (c *Client) Wire() WireStats { return c.wire.stats() }

func (c *Client) readAudio(tr *webrtc.TrackRemote) {
	c.mu.Lock()
	c.st.AudioCodec = tr.Codec().MimeType
	c.mu.Unlock()
	for {
		if _, _, err := tr.ReadRTP(); err != nil {
			return
		}
		c.mu.Lock()
		c.st.AudioPackets++
		c.mu.Unlock()
	}
}

func (c *Client) readVideo(tr *webrtc.TrackRemote) {
	mime := tr.Codec().MimeType
	c.mu.Lock()
	c.st.VideoCodec = mime
	c.mu.Unlock()
	h265 := strings.EqualFold(mime, webrtc.MimeTypeH265)
	var decode func(*rtp.Packet) ([][]byte, error)
	if h265 {
		d := &rtph265.Decoder{}
		_ = d.Init()
		decode = d.Decode
	} else {
		d := &rtph264.Decoder{PacketizationMode: 1}
		_ = d.Init()
		decode = d.Decode
	}
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		c.record(pkt)
		nalus, err := decode(pkt)
		if err != nil {
			continue
		}
		au := AU{NALUs: nalus, TS: pkt.Timestamp, At: time.Now(), Key: isKey(nalus, h265)}
		c.mu.Lock()
		c.st.Frames++
		if !c.st.FirstAU {
			c.st.FirstAU, c.st.FirstAUKey = true, au.Key
		}
		if au.Key && c.st.FirstKey == 0 {
			c.st.FirstKey = max(au.At.Sub(c.Posted), time.Nanosecond)
			if c.light {
				c.wire.light.Store(true)
			}
		}
		c.mu.Unlock()
		select {
		case c.aus <- au:
		default:
		}
	}
}

func (c *Client) record(p *rtp.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.headers) < 100000 && !c.noHdrs {
		c.headers = append(c.headers, p.Header.Clone())
	}
	c.st.VideoPackets++
	c.st.VideoBytes += int64(len(p.Payload))
	c.st.VideoPT = p.PayloadType
	if c.haveSeq {
		if p.SequenceNumber != c.lastSeq+1 {
			c.st.SeqGaps++
		}
		if int32(p.Timestamp-c.lastTS) < 0 {
			c.st.TSBackwards++
		}
	}
	c.haveSeq, c.lastSeq, c.lastTS = true, p.SequenceNumber, p.Timestamp
}
