package whep

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
)

// The retransmission index answers a viewer's NACKs (RFC 4585 generic
// NACK) from the relay's shared packets instead of pion's responder, which
// copies every packet it sends into a per-viewer buffer (512 × 1460 B: 0.9
// MB per viewer measured). Every viewer is sent the same payloads (the
// relay packetizes once per camera, reader.go): the index keeps, per
// stream, only the header fields this viewer was sent (its own sequence
// numbers and timestamps) and a reference to the shared, read-only
// payload. A resend is rebuilt from them, byte for byte the packet first
// sent. Payloads stay referenced for one ring span (about 2 s of 1080p
// video), less than the GOP cache already holds.
//
// The payload passed to the writer must stay unchanged while indexed:
// true for the sessions of this package, which write the relay's frames.

// rtxRing is the packets indexed per stream (a power of two): 1024 is
// 2.2 s of 1080p at 4 Mbit/s, far more than a LAN round trip.
const rtxRing = 1024

// Resend bounds per stream: a NACK asks for at most rtxPerNACK packets,
// and a token bucket (rtxRate a second, rtxBurst at once) caps what a
// hostile viewer can make cordon send on top of its stream.
const (
	rtxPerNACK = 256
	rtxRate    = 500
	rtxBurst   = 512
)

// rtxMetrics count what the index resent and refused.
type rtxMetrics struct {
	resent, refused prometheus.Counter
}

func newRTXMetrics() rtxMetrics {
	return rtxMetrics{
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_whep_retransmitted_packets_total", Help: "RTP packets resent to WHEP viewers on their NACKs.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_whep_retransmissions_refused_total", Help: "NACKed packets not resent: no longer indexed, or the viewer's resend budget spent.",
		}),
	}
}

// rtxFactory makes one rtxResponder per PeerConnection.
type rtxFactory struct{ m rtxMetrics }

func (f rtxFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &rtxResponder{m: f.m, streams: map[uint32]*rtxStream{}}, nil
}

// rtxResponder is one PeerConnection's index.
type rtxResponder struct {
	interceptor.NoOp
	m       rtxMetrics
	mu      sync.Mutex
	streams map[uint32]*rtxStream
	now     func() time.Time // tests
}

type rtxStream struct {
	ssrc   uint32
	mu     sync.Mutex
	ring   [rtxRing]rtxEntry
	writer interceptor.RTPWriter
	tokens float64
	last   time.Time
}

// rtxEntry is one sent packet: its header fields and the shared payload.
type rtxEntry struct {
	payload []byte
	ts      uint32
	seq     uint16
	pt      uint8
	marker  bool
	valid   bool
}

func nackable(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

// BindLocalStream indexes every packet of a stream that negotiated NACK.
func (r *rtxResponder) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if !nackable(info) {
		return writer
	}
	st := &rtxStream{ssrc: info.SSRC, writer: writer, tokens: rtxBurst}
	r.mu.Lock()
	r.streams[info.SSRC] = st
	r.mu.Unlock()
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == ssrc && !h.Padding && !h.Extension && len(h.CSRC) == 0 {
			st.mu.Lock()
			st.ring[h.SequenceNumber%rtxRing] = rtxEntry{payload: payload, ts: h.Timestamp, seq: h.SequenceNumber,
				pt: h.PayloadType, marker: h.Marker, valid: true}
			st.mu.Unlock()
		}
		return writer.Write(h, payload, a)
	})
}

// UnbindLocalStream forgets a stream and its payload references.
func (r *rtxResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	st := r.streams[info.SSRC]
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		clear(st.ring[:])
		st.mu.Unlock()
	}
}

// Close forgets every stream.
func (r *rtxResponder) Close() error {
	r.mu.Lock()
	streams := r.streams
	r.streams = map[uint32]*rtxStream{}
	r.mu.Unlock()
	for _, st := range streams {
		st.mu.Lock()
		clear(st.ring[:])
		st.mu.Unlock()
	}
	return nil
}

// BindRTCPReader answers NACKs as the session's RTCP reader reads them, in
// its goroutine (pion's responder starts a goroutine per NACK).
func (r *rtxResponder) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if attr == nil {
			attr = make(interceptor.Attributes)
		}
		pkts, err := attr.GetRTCPPackets(b[:n])
		if err != nil {
			return 0, nil, err
		}
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				r.resend(nack)
			}
		}
		return n, attr, nil
	})
}

// resend writes the NACKed packets still indexed, within the budget.
func (r *rtxResponder) resend(nack *rtcp.TransportLayerNack) {
	r.mu.Lock()
	st := r.streams[nack.MediaSSRC]
	r.mu.Unlock()
	if st == nil {
		return
	}
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	asked := 0
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			asked++
			if asked > rtxPerNACK {
				r.m.refused.Inc()
				return false
			}
			h, payload, ok := st.take(seq, now)
			if !ok {
				r.m.refused.Inc()
				return true
			}
			if _, err := st.writer.Write(&h, payload, interceptor.Attributes{}); err == nil {
				r.m.resent.Inc()
			}
			return true
		})
	}
}

// take returns the indexed packet seq if a resend token is left.
func (st *rtxStream) take(seq uint16, now time.Time) (rtp.Header, []byte, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.last.IsZero() {
		st.tokens = min(rtxBurst, st.tokens+now.Sub(st.last).Seconds()*rtxRate)
	}
	st.last = now
	e := st.ring[seq%rtxRing]
	if !e.valid || e.seq != seq || st.tokens < 1 {
		return rtp.Header{}, nil, false
	}
	st.tokens--
	return rtp.Header{Version: 2, Marker: e.marker, PayloadType: e.pt, SequenceNumber: e.seq, Timestamp: e.ts, SSRC: st.ssrc}, e.payload, true
}
