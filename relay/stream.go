package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtp"

	"cordon/internal/clock"
	"cordon/relay/sanitize"
)

// PayloadMaxSize bounds the RTP payloads the Stream produces. It leaves room
// for the RTP header, SRTP's auth tag and one header extension inside the
// 1200-byte packets WebRTC stacks assume.
const PayloadMaxSize = 1100

// Errors a reader or a source can see.
var (
	ErrStreamClosed  = errors.New("camera stream closed")
	ErrTracksChanged = errors.New("camera changed its codecs; reconnect to get the new stream")
	ErrReaderClosed  = errors.New("reader closed")
	// ErrBFrames ends (or refuses) a reader that asked to be refused
	// B-frames (ReaderConf.RefuseBFrames: WebRTC players need presentation
	// order = decode order) on a stream that has them. RTSP readers get
	// such a stream as it is.
	ErrBFrames = errors.New("the camera sends B-frames, which WebRTC players cannot show: set its encoder to a profile without B-frames (baseline, or main/high with B-frames off), or give the camera a sub stream without B-frames (sub_url); RTSP clients get the stream as it is")
	// ErrNoTracks is returned by CameraConnected when nothing can be served.
	ErrNoTracks = errors.New("the camera offers no video or audio format cordon can serve")
)

// Demand is told when a Stream gets its first reader and loses its last
// (viewers and non-viewer readers alike). An on-demand camera starts and
// stops pulling on these calls. Implementations must not block and must not
// call back into the Stream synchronously.
type Demand interface {
	SetDemand(wanted bool)
}

// Frame is one re-originated access unit or audio frame: the packets every
// reader of the camera shares and, for audio, the codec frames they carry.
// A video frame keeps its NAL units only inside the packets' payloads (the
// GOP cache holds a GOP of frames, so a second copy would double it); a
// reader that stores them (the recorder) asks for them
// (ReaderConf.AU) and gets them depacketized from the frame's packets.
// Readers must treat a Frame as read-only.
type Frame struct {
	Track int
	Key   bool          // video frame a decoder can start from (IDR / IRAP with parameter sets)
	PTS   time.Duration // on the stream's own timeline
	// DTS is the decode time on the same timeline: PTS, except for a
	// track with B-frames (OutTrack.BFrames), where DTS <= PTS and DTS
	// grows in delivery order.
	DTS time.Duration
	// Time is the wall-clock time the access unit reached the stream.
	Time time.Time
	// AU is, for audio, the codec frames the packets carry; nil for video
	// (see ReaderConf.AU and Delivery.AU). Shared and read-only.
	AU      [][]byte
	Packets []*rtp.Packet
	Bytes   int // payload bytes

	video bool // the packets carry H.264 or H.265 (h265) access units
	h265  bool
	enc   frameEncoding // an output's shared wire encoding (encoding.go)
}

// Stream is one camera stream's fan-out point. Configure the exported
// fields, then call Initialize. The source side (CameraConnected,
// WriteUnit, CameraDisconnected, source.go) is what a puller calls; readers
// (reader.go) are added by outputs.
type Stream struct {
	Camera string
	// Name tells a camera's streams apart in logs ("" for the main stream,
	// "sub" for the sub stream).
	Name     string
	Sanitize sanitize.Options
	// QueueFrames bounds each reader's queue (frames). Default 256.
	QueueFrames int
	// QueueBytes bounds the payload bytes queued for one reader (a stalled
	// viewer pins no more). Default 32 MiB; a frame is always accepted by
	// an empty queue.
	QueueBytes int
	// MaxGOPBytes bounds the GOP cache. Default 16 MiB; a longer GOP turns
	// the cache off until the next keyframe.
	MaxGOPBytes int
	Demand      Demand      // optional; replace later with SetDemand
	Clock       clock.Clock // nil = wall clock
	Metrics     *Metrics
	Log         *slog.Logger

	mu        sync.Mutex
	closed    bool
	online    bool
	lastErr   error
	ready     chan struct{} // closed while online with tracks
	tracks    []*outTrack
	readers   []*Reader // copy-on-write: replaced, never mutated in place
	gop       gopCache
	timeline  timeline
	loggedAAC bool
	demand    Demand
	// deliveries pools the readers' per-delivery packet header copies
	// (*[]rtp.Packet; a keyframe's slice is tens of KB): a reader holds one
	// only between two calls to Next, so a few serve hundreds of viewers
	// instead of one per viewer sized for the largest keyframe.
	deliveries sync.Pool
}

// Initialize prepares the Stream.
func (s *Stream) Initialize() error {
	if s.QueueFrames <= 0 {
		s.QueueFrames = 256
	}
	if s.QueueBytes <= 0 {
		s.QueueBytes = 32 << 20
	}
	if s.MaxGOPBytes <= 0 {
		s.MaxGOPBytes = 16 << 20
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Metrics == nil {
		s.Metrics = NewMetrics(nil)
	}
	s.Clock = clock.Or(s.Clock)
	s.Log = s.Log.With("camera", s.Camera)
	if s.Name != "" {
		s.Log = s.Log.With("stream", s.Name)
	}
	s.ready = make(chan struct{})
	s.gop = gopCache{track: -1, maxBytes: s.MaxGOPBytes, maxFrames: 4 * s.QueueFrames}
	s.demand = s.Demand
	return nil
}

// SetDemand replaces the Demand (a restarted puller) and tells it whether
// readers are attached now.
func (s *Stream) SetDemand(d Demand) {
	s.mu.Lock()
	s.demand = d
	n := len(s.readers)
	s.mu.Unlock()
	if d != nil {
		d.SetDemand(n > 0)
	}
}

// Close ends every reader with ErrStreamClosed.
func (s *Stream) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	readers := s.readers
	s.readers = nil
	for _, t := range s.tracks {
		t.recent.reset()
	}
	s.mu.Unlock()
	for _, r := range readers {
		r.finish(ErrStreamClosed)
	}
}

// SetSanitize applies new sanitizer options (a config reload changed the
// SEI allow-list) from the next access unit on; readers stay attached.
func (s *Stream) SetSanitize(opts sanitize.Options) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Sanitize = opts
	for _, t := range s.tracks {
		if t.filter == nil {
			continue
		}
		ps := t.filter.ParamSets()
		if ps == nil {
			ps = t.ParamSets
		}
		t.filter = s.newFilter(t.Codec, ps)
	}
}

// Info is a snapshot of the stream's state.
type Info struct {
	Online    bool
	LastError string
	Tracks    []OutTrack
	Readers   map[string]int // viewers by protocol
	// Consumers counts attached non-viewer readers by name ("record",
	// "probe", ...): they keep an on-demand camera pulled but are not viewers.
	Consumers map[string]int
	// BFrames: the video has B-frames (served over RTSP; WebRTC readers
	// are refused with ErrBFrames).
	BFrames bool
}

// Viewers is the number of attached viewers, all protocols.
func (in Info) Viewers() int {
	n := 0
	for _, c := range in.Readers {
		n += c
	}
	return n
}

// Info returns the stream's state.
func (s *Stream) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := Info{Online: s.online, Readers: map[string]int{}, Consumers: map[string]int{}}
	if s.lastErr != nil {
		in.LastError = s.lastErr.Error()
	}
	in.Tracks = s.tracksLocked()
	in.BFrames = s.bframesLocked()
	for _, r := range s.readers {
		if r.protocol != "" {
			in.Readers[r.protocol]++
		} else {
			in.Consumers[r.consumer]++
		}
	}
	return in
}

func (s *Stream) tracksLocked() []OutTrack {
	if s.tracks == nil {
		return nil
	}
	out := make([]OutTrack, len(s.tracks))
	for i, t := range s.tracks {
		out[i] = t.OutTrack
		out[i].BFrames = t.reorders
		if t.filter != nil {
			if ps := t.filter.ParamSets(); len(ps) > 0 {
				out[i].ParamSets = ps
			}
			if t.Codec == CodecH264 && len(out[i].ParamSets) > 0 && len(out[i].ParamSets[0]) >= 4 {
				sps := out[i].ParamSets[0]
				out[i].ProfileLevelID = fmt.Sprintf("%02x%02x%02x", sps[1], sps[2], sps[3])
			}
		}
	}
	return out
}

// borrowPackets takes a delivery slice from the pool (see deliveries).
func (s *Stream) borrowPackets() *[]rtp.Packet {
	if b, ok := s.deliveries.Get().(*[]rtp.Packet); ok {
		return b
	}
	return new([]rtp.Packet)
}
