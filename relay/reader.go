package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// ReaderConf configures a reader.
type ReaderConf struct {
	// Protocol makes the reader a viewer: "webrtc" or "rtsp", counted per
	// protocol in metrics, the camera's viewers and the admin listing.
	// "" = not a viewer (see Consumer).
	Protocol string
	// Consumer names a non-viewer reader ("record", "cluster", "probe"):
	// it keeps an on-demand camera pulled like a viewer does but is not
	// counted as one. Used only when Protocol is "". Default "probe".
	Consumer string
	// Tracks selects out-track indexes; nil means all. It may be set later
	// with Reader.SetTracks once the tracks are known.
	Tracks []int
	// QueueFrames overrides the stream's per-reader queue bound (frames).
	QueueFrames int
	// RefuseBFrames: the reader cannot present reordered frames (WebRTC).
	// On a stream with B-frames AddReader returns ErrBFrames, WaitReady
	// too, and a reader attached before the B-frames were seen ends with
	// ErrBFrames.
	RefuseBFrames bool
	// AU: the reader wants access units, not only packets (the recorder).
	// Next then fills Delivery.AU for video frames too, rebuilding the NAL
	// units from the frame's packets for this reader (the stream keeps no
	// copy of them); a frame whose packets cannot be read back is dropped
	// for this reader, counted like a full queue's drops, with the track's
	// following frames until its next keyframe. Outputs that send packets
	// (WHEP, RTSP) leave it false and pay nothing.
	AU bool
}

// Reader is one output's view of a Stream: a bounded queue of frames.
type Reader struct {
	s        *Stream
	protocol string
	consumer string
	refuseB  bool
	wantAU   bool
	ch       chan item
	done     chan struct{}
	once     sync.Once
	err      error

	// producer side, guarded by s.mu
	want     []bool
	waitKey  []bool
	seqDelta []uint16
	primed   bool

	// consumer side: the current delivery's header copies, borrowed from
	// the stream's pool while a frame is handled and returned at the next
	// call to Next (so an idle reader holds none; see Stream.deliveries)
	buf *[]rtp.Packet
	// auSkip[track]: a frame of the track could not be depacketized, the
	// track's frames are dropped until its next keyframe (ReaderConf.AU)
	auSkip   []bool
	auLogged bool

	statsMu sync.Mutex
	dropped uint64
	bytes   uint64
	queued  atomic.Int64 // payload bytes in ch
}

type item struct {
	f        *Frame
	seqDelta uint16
	tsDelta  uint32
	primed   bool // from the GOP cache
}

// AddReader attaches a reader. It works while the camera is offline (an
// on-demand camera is started by it); use Reader.WaitReady for the tracks.
func (s *Stream) AddReader(conf ReaderConf) (*Reader, error) {
	r := &Reader{s: s, protocol: conf.Protocol, refuseB: conf.RefuseBFrames, wantAU: conf.AU, done: make(chan struct{})}
	if r.protocol == "" {
		r.consumer = conf.Consumer
		if r.consumer == "" {
			r.consumer = "probe"
		}
	}
	queue := conf.QueueFrames
	if queue <= 0 {
		queue = s.QueueFrames
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrStreamClosed
	}
	if r.refuseB && s.bframesLocked() {
		s.mu.Unlock()
		return nil, ErrBFrames
	}
	r.ch = make(chan item, queue+len(s.gop.frames))
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
	g := &r.s.gop
	if r.primed || !g.usable(r.want) {
		return
	}
	r.primed = true
	last := g.frames[len(g.frames)-1].Packets[0].Timestamp
	n := len(g.frames)
	// B-frames keep their own timestamps: squeezing would break the
	// presentation order of the frames still to come
	squeeze := !r.s.tracks[g.track].reorders
	for i, f := range g.frames {
		var delta uint32
		if squeeze {
			delta = last - uint32(n-1-i) - f.Packets[0].Timestamp
		}
		select {
		case r.ch <- item{f: f, tsDelta: delta, primed: true}:
			r.queued.Add(int64(f.Bytes))
		default:
			return
		}
	}
	r.waitKey[g.track] = false
}

// Flush drops whatever is queued and re-primes the reader from the current
// GOP, so a viewer whose transport took a while to come up starts at the
// newest keyframe instead of replaying the backlog. Call it only before the
// first Next: sequence numbers restart from the cached keyframe.
func (r *Reader) Flush() {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(r.ch) > 0 {
		it := <-r.ch
		r.queued.Add(-int64(it.f.Bytes))
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
			if r.refuseB && s.bframesLocked() {
				s.mu.Unlock()
				return nil, ErrBFrames
			}
			if len(r.want) != len(s.tracks) {
				r.setTracksLocked(nil, len(s.tracks))
			}
			tr := s.tracksLocked()
			s.mu.Unlock()
			return tr, nil
		}
		ready := s.ready
		lastErr := s.lastErr
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
	r.countDrop()
}

// countDrop counts one frame dropped for this reader.
func (r *Reader) countDrop() {
	r.statsMu.Lock()
	r.dropped++
	r.statsMu.Unlock()
	r.s.Metrics.dropped.WithLabelValues(r.s.Camera, r.label()).Inc()
}

// label names the reader in metrics and logs: its protocol or consumer.
func (r *Reader) label() string {
	if r.protocol == "" {
		return r.consumer
	}
	return r.protocol
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
