package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

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
	// ErrBFrames is returned by WriteUnit for video whose presentation order
	// differs from decode order: WebRTC players cannot show it correctly.
	ErrBFrames = errors.New("the camera sends B-frames, which WebRTC players cannot show: set its encoder to a profile without B-frames (baseline, or main/high with B-frames off)")
	// ErrNoTracks is returned by CameraConnected when nothing can be served.
	ErrNoTracks = errors.New("the camera offers no video or audio format cordon can serve")
)

// Demand is told when a Stream gets its first reader and loses its last. An
// on-demand camera starts and stops pulling on these calls. Implementations
// must not block and must not call back into the Stream synchronously.
type Demand interface {
	SetDemand(wanted bool)
}

// Frame is one re-originated access unit or audio frame: the packets every
// reader of the camera shares. Readers must treat it as read-only.
type Frame struct {
	Track   int
	Key     bool // video frame a decoder can start from (IDR / IRAP with parameter sets)
	PTS     time.Duration
	Packets []*rtp.Packet
	Bytes   int // payload bytes
}

// Stream is one camera's fan-out point. Configure the exported fields, then
// call Initialize. The source side (CameraConnected, WriteUnit,
// CameraDisconnected) is what ingest calls; readers are added by outputs.
type Stream struct {
	Camera   string
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
	Demand      Demand // optional; replace later with SetDemand
	Metrics     *Metrics
	Log         *slog.Logger

	mu        sync.Mutex
	closed    bool
	online    bool
	lastErr   error
	ready     chan struct{} // closed while online with tracks
	tracks    []*outTrack
	readers   []*Reader // copy-on-write: replaced, never mutated in place
	gop       []*Frame
	gopBytes  int
	gopValid  bool
	gopTrack  int // the video track whose GOP is cached; -1 when none
	timeline  timeline
	loggedAAC bool
	demand    Demand
	// refusedSPS is the SPS of a stream refused for B-frames; a camera that
	// comes back with the same SPS (or none in its SDP) is refused at
	// connect, before anything reaches a viewer, until refusedUntil.
	refusedSPS   []byte
	refusedUntil time.Time
}

type outTrack struct {
	OutTrack
	filter  *sanitize.VideoFilter
	checked []byte // the SPS last checked for frame reordering
	h264    *rtph264.Encoder
	h265    *rtph265.Encoder
	aac     *rtpmpeg4audio.Encoder
	ssrc    uint32
	seq     uint16 // audio (PCMU/PCMA/Opus) sequence
	tsBase  uint32
	lastPTS time.Duration // camera PTS of the previous unit, this connection
	havePTS bool
	lastOut time.Duration
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
	s.Log = s.Log.With("camera", s.Camera)
	s.ready = make(chan struct{})
	s.gopTrack = -1
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
	s.mu.Unlock()
	for _, r := range readers {
		r.finish(ErrStreamClosed)
	}
}

// CameraConnected is called by the source after every successful PLAY with
// the camera's surviving tracks. If the codecs differ from the previous
// connection, current readers end with ErrTracksChanged.
func (s *Stream) CameraConnected(tracks []Track) error {
	if len(tracks) == 0 {
		return ErrNoTracks
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrStreamClosed
	}
	if err := s.stillRefusedLocked(tracks); err != nil {
		s.lastErr = err
		s.mu.Unlock()
		return err
	}
	var kicked []*Reader
	if !sameCodecs(s.tracks, tracks) {
		if s.tracks != nil {
			kicked = s.readers
			s.readers = nil
			s.Log.Warn("camera codecs changed; viewers must reconnect")
		}
		ots, err := s.buildTracks(tracks)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.tracks = ots
		s.resetGOP()
	} else {
		for i, t := range s.tracks {
			if t.filter != nil {
				t.filter.SetSDPParamSets(tracks[i].ParamSets)
			}
		}
	}
	for _, t := range s.tracks {
		t.havePTS = false
	}
	s.timeline.reconnect(time.Now())
	s.online = true
	s.lastErr = nil
	close(s.ready)
	s.mu.Unlock()

	for _, r := range kicked {
		r.finish(ErrTracksChanged)
	}
	return nil
}

// CameraDisconnected is called by the source when the camera connection ends.
// Readers stay attached and resume when the camera comes back.
func (s *Stream) CameraDisconnected(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.online {
		s.lastErr = err
		return
	}
	s.online = false
	s.lastErr = err
	s.ready = make(chan struct{})
	s.resetGOP()
}

func sameCodecs(old []*outTrack, tracks []Track) bool {
	if old == nil || len(old) != len(tracks) {
		return false
	}
	for i, t := range tracks {
		o := old[i].Track
		if o.Kind != t.Kind || o.Codec != t.Codec || o.ClockRate != t.ClockRate || max(o.Channels, 1) != max(t.Channels, 1) {
			return false
		}
	}
	return true
}

func randU32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func (s *Stream) buildTracks(tracks []Track) ([]*outTrack, error) {
	ots := make([]*outTrack, len(tracks))
	var nextDyn uint8 = 96
	for i, t := range tracks {
		ot := &outTrack{OutTrack: OutTrack{Track: t, Index: i}, ssrc: randU32(), tsBase: randU32(), seq: uint16(randU32())}
		if ot.Channels == 0 {
			ot.Channels = 1
		}
		seq := ot.seq
		switch t.Codec {
		case CodecH264, CodecH265:
			ot.PayloadType = nextDyn
			nextDyn++
			codec := sanitize.H264
			if t.Codec == CodecH265 {
				codec = sanitize.H265
			}
			ot.filter = s.newFilter(codec, t.ParamSets)
			if t.Codec == CodecH264 {
				ot.h264 = &rtph264.Encoder{PayloadType: ot.PayloadType, SSRC: &ot.ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: PayloadMaxSize, PacketizationMode: 1}
				if err := ot.h264.Init(); err != nil {
					return nil, err
				}
			} else {
				ot.h265 = &rtph265.Encoder{PayloadType: ot.PayloadType, SSRC: &ot.ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: PayloadMaxSize}
				if err := ot.h265.Init(); err != nil {
					return nil, err
				}
			}
		case CodecPCMU:
			ot.PayloadType = 0
		case CodecPCMA:
			ot.PayloadType = 8
		case CodecOpus:
			ot.PayloadType = nextDyn
			nextDyn++
		case CodecAAC:
			ot.PayloadType = nextDyn
			nextDyn++
			ot.aac = &rtpmpeg4audio.Encoder{PayloadType: ot.PayloadType, SSRC: &ot.ssrc, InitialSequenceNumber: &seq,
				PayloadMaxSize: PayloadMaxSize, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
			if err := ot.aac.Init(); err != nil {
				return nil, err
			}
			if !s.loggedAAC {
				s.loggedAAC = true
				s.Log.Info("camera audio is AAC, which is not a WebRTC codec: WHEP viewers get video only; RTSP clients get the audio")
			}
		default:
			return nil, fmt.Errorf("codec %q cannot be re-served", t.Codec)
		}
		ots[i] = ot
	}
	return ots, nil
}

func (s *Stream) newFilter(codec sanitize.VideoCodec, paramSets [][]byte) *sanitize.VideoFilter {
	f := sanitize.NewVideoFilter(codec, s.Sanitize, paramSets)
	reason, cam := s.Metrics.sanitizerDropped, s.Camera
	f.OnDrop = func(r string) { reason.WithLabelValues(cam, r).Inc() }
	return f
}

// SetSanitize applies new sanitizer options (a config reload changed the
// SEI allow-list) from the next access unit on; viewers stay attached.
func (s *Stream) SetSanitize(opts sanitize.Options) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Sanitize = opts
	for _, t := range s.tracks {
		if t.filter == nil {
			continue
		}
		codec := sanitize.H264
		if t.Codec == CodecH265 {
			codec = sanitize.H265
		}
		ps := t.filter.ParamSets()
		if ps == nil {
			ps = t.ParamSets
		}
		t.filter = s.newFilter(codec, ps)
	}
}

func (s *Stream) resetGOP() {
	clear(s.gop)
	s.gop = s.gop[:0]
	s.gopBytes = 0
	s.gopValid = false
}

// WriteUnit sanitizes, re-originates and fans out one unit. It never blocks
// on readers. An error means the stream cannot be served as sent (ErrBFrames)
// and the source should drop the connection and report it.
func (s *Stream) WriteUnit(u Unit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.online || u.Track < 0 || u.Track >= len(s.tracks) {
		return nil
	}
	t := s.tracks[u.Track]

	if t.havePTS {
		d := u.PTS - t.lastPTS
		switch {
		case d < 0 && d > -time.Second && t.Kind == KindVideo:
			return s.refuseLocked(t)
		case d < 0 && d > -time.Second:
			return nil // late audio frame: drop
		case d < -time.Second || d > 10*time.Second:
			// camera clock reset or jump: re-base instead of passing it through
			s.Log.Info("camera timestamps jumped; re-basing", "jump", d.String())
			s.timeline.rebase(u.PTS)
		}
	}
	t.lastPTS, t.havePTS = u.PTS, true
	out := s.timeline.out(u.PTS)
	if out <= t.lastOut && t.lastOut != 0 {
		out = t.lastOut + time.Millisecond
	}
	t.lastOut = out
	ts := t.tsBase + ticks(out, t.ClockRate)

	f := &Frame{Track: u.Track, PTS: out}
	switch t.Kind {
	case KindVideo:
		au, key := t.filter.Filter(u.AU)
		if len(au) == 0 {
			return nil
		}
		if key {
			// an SPS that announces frame reordering is refused before its
			// first frame leaves
			if ps := t.filter.ParamSets(); len(ps) > 0 {
				sps := ps[0]
				if t.Codec == CodecH265 && len(ps) > 1 {
					sps = ps[1]
				}
				if !bytes.Equal(sps, t.checked) {
					t.checked = sps
					if spsReorders(t.Codec, sps) {
						return s.refuseLocked(t)
					}
				}
			}
		}
		au = copyAU(au)
		var pkts []*rtp.Packet
		var err error
		if t.h264 != nil {
			pkts, err = t.h264.Encode(au)
		} else {
			pkts, err = t.h265.Encode(au)
		}
		if err != nil {
			s.Log.Warn("cannot packetize access unit", "err", err)
			return nil
		}
		f.Key = key
		f.Packets = pkts
	case KindAudio:
		if t.aac != nil {
			pkts, err := t.aac.Encode(copyAU(u.AU))
			if err != nil {
				s.Log.Warn("cannot packetize AAC", "err", err)
				return nil
			}
			f.Packets = pkts
		} else {
			for _, fr := range u.AU {
				t.seq++
				f.Packets = append(f.Packets, &rtp.Packet{
					Header:  rtp.Header{Version: 2, PayloadType: t.PayloadType, SequenceNumber: t.seq, SSRC: t.ssrc},
					Payload: append([]byte(nil), fr...),
				})
			}
		}
	}
	for _, p := range f.Packets {
		p.Timestamp += ts
		f.Bytes += len(p.Payload)
	}
	if len(f.Packets) == 0 {
		return nil
	}
	s.cache(f)
	for _, r := range s.readers {
		r.offer(f)
	}
	return nil
}

// refuseLocked refuses a B-frame stream: it goes offline at once (no more
// frames leave) and stays refused on reconnect; see stillRefusedLocked.
func (s *Stream) refuseLocked(t *outTrack) error {
	s.refusedSPS = nil
	if ps := t.filter.ParamSets(); len(ps) > 0 {
		s.refusedSPS = append([]byte(nil), ps[len(ps)-2]...)
	}
	s.refusedUntil = time.Now().Add(refuseFor)
	if s.online {
		s.online = false
		s.ready = make(chan struct{})
		s.resetGOP()
	}
	s.lastErr = ErrBFrames
	s.Log.Warn("camera refused: its stream has B-frames", "err", ErrBFrames.Error())
	return ErrBFrames
}

// refuseFor is how long a B-frame refusal holds for a camera whose SDP
// does not show a changed SPS; then one more attempt is allowed.
const refuseFor = 5 * time.Minute

// stillRefusedLocked keeps a B-frame refusal across reconnects unless the
// camera now announces another SPS.
func (s *Stream) stillRefusedLocked(tracks []Track) error {
	if s.refusedUntil.IsZero() {
		return nil
	}
	var sdpSPS []byte
	for _, t := range tracks {
		if t.Kind == KindVideo && len(t.ParamSets) >= 2 {
			sdpSPS = t.ParamSets[len(t.ParamSets)-2]
		}
	}
	if time.Now().Before(s.refusedUntil) && (sdpSPS == nil || s.refusedSPS == nil || bytes.Equal(sdpSPS, s.refusedSPS)) {
		return ErrBFrames
	}
	s.refusedUntil, s.refusedSPS = time.Time{}, nil
	return nil
}

// spsReorders reports whether an SPS announces frame reordering
// (B-frames): H.264 VUI max_num_reorder_frames > 0, H.265
// sps_max_num_reorder_pics > 0. An SPS that does not say (no VUI
// bitstream restriction) is not refused here; the timestamp check catches
// it on the first out-of-order frame.
func spsReorders(codec Codec, sps []byte) bool {
	switch codec {
	case CodecH264:
		var p h264.SPS
		if p.Unmarshal(sps) != nil || p.VUI == nil || p.VUI.BitstreamRestriction == nil {
			return false
		}
		return p.VUI.BitstreamRestriction.MaxNumReorderFrames > 0
	case CodecH265:
		var p h265.SPS
		if p.Unmarshal(sps) != nil {
			return false
		}
		for _, n := range p.MaxNumReorderPics {
			if n > 0 {
				return true
			}
		}
	}
	return false
}

func copyAU(au [][]byte) [][]byte {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(au))
	for i, b := range au {
		buf = append(buf, b...)
		out[i] = buf[len(buf)-len(b):]
	}
	return out
}

// cache keeps the frames of the first video track since its last keyframe.
func (s *Stream) cache(f *Frame) {
	t := s.tracks[f.Track]
	if t.Kind != KindVideo {
		return
	}
	if s.gopTrack == -1 {
		s.gopTrack = f.Track
	}
	if f.Track != s.gopTrack {
		return
	}
	if f.Key {
		s.resetGOP()
		s.gopValid = true
	}
	if !s.gopValid {
		return
	}
	if s.gopBytes+f.Bytes > s.MaxGOPBytes || len(s.gop) >= 4*s.QueueFrames {
		s.resetGOP()
		return
	}
	s.gop = append(s.gop, f)
	s.gopBytes += f.Bytes
}

// ticks converts a duration to clock-rate units without overflowing.
func ticks(d time.Duration, rate int) uint32 {
	sec := int64(d / time.Second)
	rem := int64(d % time.Second)
	return uint32(sec*int64(rate) + rem*int64(rate)/int64(time.Second))
}

// timeline maps camera PTS onto the stream's own continuous clock.
type timeline struct {
	started  bool
	origin   time.Duration // camera PTS that maps to base
	base     time.Duration
	pending  bool // next unit sets the origin
	last     time.Duration
	lastWall time.Time
	gap      time.Duration
}

func (tl *timeline) reconnect(now time.Time) {
	tl.pending = true
	if tl.started {
		tl.gap = max(now.Sub(tl.lastWall), time.Millisecond)
	}
}

func (tl *timeline) rebase(pts time.Duration) {
	tl.pending = true
	tl.gap = 40 * time.Millisecond
	_ = pts
}

func (tl *timeline) out(pts time.Duration) time.Duration {
	if tl.pending {
		tl.pending = false
		tl.origin = pts
		if tl.started {
			tl.base = tl.last + tl.gap
		}
		tl.started = true
	}
	o := tl.base + pts - tl.origin
	if o > tl.last {
		tl.last = o
		tl.lastWall = time.Now()
	}
	return o
}

// Info is a snapshot of the stream's state.
type Info struct {
	Online    bool
	LastError string
	Tracks    []OutTrack
	Readers   map[string]int // by protocol
}

// Info returns the stream's state.
func (s *Stream) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := Info{Online: s.online, Readers: map[string]int{}}
	if s.lastErr != nil {
		in.LastError = s.lastErr.Error()
	}
	in.Tracks = s.tracksLocked()
	for _, r := range s.readers {
		if r.protocol != "" {
			in.Readers[r.protocol]++
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

// ReaderConf configures a reader.
type ReaderConf struct {
	Protocol string // "webrtc" or "rtsp": metrics and admin listing; "" = a probe, not counted
	// Tracks selects out-track indexes; nil means all. It may be set later
	// with Reader.SetTracks once the tracks are known.
	Tracks []int
}

// AddReader attaches a reader. It works while the camera is offline (an
// on-demand camera is started by it); use Reader.WaitReady for the tracks.
func (s *Stream) AddReader(conf ReaderConf) (*Reader, error) {
	r := &Reader{s: s, protocol: conf.Protocol, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrStreamClosed
	}
	r.ch = make(chan item, s.QueueFrames+len(s.gop))
	r.setTracksLocked(conf.Tracks, len(s.tracks))
	readers := make([]*Reader, len(s.readers), len(s.readers)+1)
	copy(readers, s.readers)
	s.readers = append(readers, r)
	n := len(s.readers)
	d := s.demand
	s.mu.Unlock()
	if r.protocol != "" {
		s.Metrics.viewers.WithLabelValues(s.Camera, r.protocol).Inc()
	}
	if n == 1 && d != nil {
		d.SetDemand(true)
	}
	return r, nil
}

func (s *Stream) removeReader(r *Reader) bool {
	s.mu.Lock()
	idx := -1
	for i, x := range s.readers {
		if x == r {
			idx = i
			break
		}
	}
	if idx < 0 {
		s.mu.Unlock()
		return false
	}
	readers := make([]*Reader, 0, len(s.readers)-1)
	readers = append(readers, s.readers[:idx]...)
	readers = append(readers, s.readers[idx+1:]...)
	s.readers = readers
	n := len(readers)
	d := s.demand
	s.mu.Unlock()
	if n == 0 && d != nil {
		d.SetDemand(false)
	}
	return true
}

// Reader is one output's view of a Stream: a bounded queue of frames.
type Reader struct {
	s        *Stream
	protocol string
	ch       chan item
	done     chan struct{}
	once     sync.Once
	err      error

	// producer side, guarded by s.mu
	want     []bool
	waitKey  []bool
	seqDelta []uint16
	primed   bool

	// consumer side
	buf []rtp.Packet

	statsMu sync.Mutex
	dropped uint64
	bytes   uint64
	queued  atomic.Int64 // payload bytes in ch
}

type item struct {
	f        *Frame
	seqDelta uint16
	tsDelta  uint32
}

// Delivery is what Next returns: packets of one frame, headers copied for
// this reader (sequence numbers continuous for it), payloads shared and
// read-only. Valid until the next call to Next.
type Delivery struct {
	Track   int
	Key     bool
	PTS     time.Duration
	Packets []rtp.Packet
}

func (r *Reader) setTracksLocked(sel []int, n int) {
	if len(r.want) != n {
		r.want = make([]bool, n)
		r.waitKey = make([]bool, n)
		r.seqDelta = make([]uint16, n)
		for i := range n {
			r.waitKey[i] = r.s.tracks[i].Kind == KindVideo
		}
	}
	for i := range n {
		r.want[i] = sel == nil
	}
	for _, i := range sel {
		if i >= 0 && i < n {
			r.want[i] = true
		}
	}
	if n > 0 {
		r.primeLocked()
	}
}

// primeLocked queues the cached GOP so the reader starts on a keyframe at
// once. Cached frames get timestamps squeezed up to the newest one, so a
// player shows them at once and then runs live.
func (r *Reader) primeLocked() {
	s := r.s
	if r.primed || !s.gopValid || len(s.gop) == 0 || !r.want[s.gopTrack] {
		return
	}
	r.primed = true
	last := s.gop[len(s.gop)-1].Packets[0].Timestamp
	n := len(s.gop)
	for i, f := range s.gop {
		want := last - uint32(n-1-i)
		select {
		case r.ch <- item{f: f, tsDelta: want - f.Packets[0].Timestamp}:
			r.queued.Add(int64(f.Bytes))
		default:
			return
		}
	}
	r.waitKey[s.gopTrack] = false
}

// Flush drops whatever is queued and re-primes the reader from the current
// GOP, so a viewer whose transport took a while to come up starts at the
// newest keyframe instead of replaying the backlog. Call it only before the
// first Next: sequence numbers restart from the cached keyframe.
func (r *Reader) Flush() {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		select {
		case it := <-r.ch:
			r.queued.Add(-int64(it.f.Bytes))
			continue
		default:
		}
		break
	}
	for i := range r.want {
		r.seqDelta[i] = 0
		r.waitKey[i] = s.tracks[i].Kind == KindVideo
	}
	r.primed = false
	if len(r.want) > 0 {
		r.primeLocked()
	}
}

// SetTracks selects the out tracks this reader wants (after WaitReady).
func (r *Reader) SetTracks(sel []int) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r.setTracksLocked(sel, len(s.tracks))
}

// WaitReady blocks until the camera is online and returns its tracks.
func (r *Reader) WaitReady(ctx context.Context) ([]OutTrack, error) {
	for {
		s := r.s
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrStreamClosed
		}
		if s.online && s.tracks != nil {
			if len(r.want) != len(s.tracks) {
				r.setTracksLocked(nil, len(s.tracks))
			}
			tr := s.tracksLocked()
			s.mu.Unlock()
			return tr, nil
		}
		ready := s.ready
		var lastErr error = s.lastErr
		s.mu.Unlock()
		select {
		case <-ready:
		case <-r.done:
			return nil, r.err
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("camera unreachable: %w", lastErr)
			}
			return nil, fmt.Errorf("camera unreachable: %w", ctx.Err())
		}
	}
}

// offer queues f without blocking; a full queue (QueueFrames frames or
// QueueBytes bytes) drops the frame, and for video every following frame
// until the next keyframe. Called under s.mu.
func (r *Reader) offer(f *Frame) {
	if f.Track >= len(r.want) || !r.want[f.Track] {
		return
	}
	if r.waitKey[f.Track] {
		if !f.Key {
			r.drop(f)
			return
		}
		r.waitKey[f.Track] = false
	}
	full := r.queued.Load() > 0 && r.queued.Load()+int64(f.Bytes) > int64(r.s.QueueBytes)
	if !full {
		select {
		case r.ch <- item{f: f, seqDelta: r.seqDelta[f.Track]}:
			r.queued.Add(int64(f.Bytes))
			return
		default:
		}
	}
	r.drop(f)
	if r.s.tracks[f.Track].Kind == KindVideo {
		r.waitKey[f.Track] = true
	}
}

func (r *Reader) drop(f *Frame) {
	r.seqDelta[f.Track] += uint16(len(f.Packets))
	r.statsMu.Lock()
	r.dropped++
	r.statsMu.Unlock()
	r.s.Metrics.dropped.WithLabelValues(r.s.Camera, r.protocol).Inc()
}

// Next blocks until the next frame for this reader, the reader's end, or ctx.
func (r *Reader) Next(ctx context.Context) (Delivery, error) {
	var it item
	select {
	case it = <-r.ch:
		r.queued.Add(-int64(it.f.Bytes))
	case <-r.done:
		return Delivery{}, r.err
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
	r.buf = r.buf[:0]
	n := 0
	for _, p := range it.f.Packets {
		c := *p
		c.SequenceNumber -= it.seqDelta
		c.Timestamp += it.tsDelta
		r.buf = append(r.buf, c)
		n += len(p.Payload)
	}
	r.statsMu.Lock()
	r.bytes += uint64(n)
	r.statsMu.Unlock()
	return Delivery{Track: it.f.Track, Key: it.f.Key, PTS: it.f.PTS, Packets: r.buf}, nil
}

// Done is closed when the reader has ended; Err tells why.
func (r *Reader) Done() <-chan struct{} { return r.done }

// Err is why the reader ended (nil while running).
func (r *Reader) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Stats returns frames dropped for this reader and payload bytes delivered.
func (r *Reader) Stats() (dropped, bytes uint64) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	return r.dropped, r.bytes
}

// Kick ends the reader with err (e.g. permission revoked).
func (r *Reader) Kick(err error) {
	r.s.removeReader(r)
	r.finish(err)
}

// Close detaches the reader.
func (r *Reader) Close() { r.Kick(ErrReaderClosed) }

func (r *Reader) finish(err error) {
	r.once.Do(func() {
		r.err = err
		close(r.done)
		if r.protocol != "" {
			r.s.Metrics.viewers.WithLabelValues(r.s.Camera, r.protocol).Dec()
		}
	})
}
