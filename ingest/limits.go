package ingest

import (
	"fmt"
	"sync"
	"time"
)

// Limits bound what a camera may send. A camera that exceeds one is
// disconnected, the Violation is its last error and it is retried with the
// usual backoff. Zero fields take the Default* values.
type Limits struct {
	// MaxHeaderBytes bounds the status line and headers of one RTSP message
	// from the camera.
	MaxHeaderBytes int
	// MaxBodyBytes bounds the body of one RTSP message (the SDP).
	MaxBodyBytes int
	// MaxTracks bounds the media sections of the camera's SDP.
	MaxTracks int
	// MaxAccessUnitBytes bounds one video access unit (the RTP payload bytes
	// of one timestamp) and one audio frame. gortsplib's depacketizers stop
	// at 8 MiB, so larger values act as 8 MiB.
	MaxAccessUnitBytes int
	// MaxBitrate bounds the camera's sustained rate in bits per second: every
	// byte it sends (TCP and UDP, media or not) drains a bucket that holds
	// BitrateWindow of MaxBitrate and refills at MaxBitrate.
	MaxBitrate    int64
	BitrateWindow time.Duration
	// MaxJunkBytes bounds the bytes between messages that are neither RTSP
	// nor interleaved frames (gortsplib skips them one by one).
	MaxJunkBytes int
	// MaxStrayFrames bounds interleaved frames on channels that were never
	// set up, per connection.
	MaxStrayFrames int
	// MaxParamSetChanges bounds new parameter sets (an SPS, PPS or VPS not
	// among the last few seen) per minute.
	MaxParamSetChanges int
	// MaxTimestampJumps bounds PTS jumps (backwards by more than a second or
	// forwards by more than ten) per minute.
	MaxTimestampJumps int
	// MaxRTCPRate bounds RTCP packets per second, averaged over ten seconds.
	MaxRTCPRate int
	// HandshakeTimeout bounds the time from dialling to a successful PLAY.
	// Default: three times ReadTimeout.
	HandshakeTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxHeaderBytes     = 16 << 10
	DefaultMaxBodyBytes       = 64 << 10
	DefaultMaxTracks          = 16
	DefaultMaxAccessUnitBytes = 8 << 20
	DefaultMaxBitrate         = 64_000_000
	DefaultBitrateWindow      = 4 * time.Second
	DefaultMaxJunkBytes       = 64 << 10
	DefaultMaxStrayFrames     = 100
	DefaultMaxParamSetChanges = 30
	DefaultMaxTimestampJumps  = 10
	DefaultMaxRTCPRate        = 50
	// earlyBufferBytes bounds the media buffered between PLAY and the sink's
	// CameraConnected (besides maxEarlyUnits).
	earlyBufferBytes = 8 << 20
)

func (l *Limits) setDefaults(readTimeout time.Duration) {
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	defInt(&l.MaxBodyBytes, DefaultMaxBodyBytes)
	defInt(&l.MaxTracks, DefaultMaxTracks)
	defInt(&l.MaxAccessUnitBytes, DefaultMaxAccessUnitBytes)
	defInt(&l.MaxJunkBytes, DefaultMaxJunkBytes)
	defInt(&l.MaxStrayFrames, DefaultMaxStrayFrames)
	defInt(&l.MaxParamSetChanges, DefaultMaxParamSetChanges)
	defInt(&l.MaxTimestampJumps, DefaultMaxTimestampJumps)
	defInt(&l.MaxRTCPRate, DefaultMaxRTCPRate)
	if l.MaxBitrate <= 0 {
		l.MaxBitrate = DefaultMaxBitrate
	}
	if l.BitrateWindow <= 0 {
		l.BitrateWindow = DefaultBitrateWindow
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = 3 * readTimeout
	}
}

// Reasons of a Violation: the "reason" label of
// cordon_camera_violations_total (a closed set).
const (
	ReasonRedirect         = "redirect"
	ReasonDialRefused      = "dial_refused"
	ReasonHeaderSize       = "header_size"
	ReasonBodySize         = "body_size"
	ReasonTracks           = "tracks"
	ReasonAccessUnit       = "access_unit"
	ReasonBitrate          = "bitrate"
	ReasonJunk             = "junk"
	ReasonStrayFrames      = "stray_frames"
	ReasonParamSetChurn    = "param_set_churn"
	ReasonTimestamps       = "timestamps"
	ReasonRTCPFlood        = "rtcp_flood"
	ReasonSlow             = "slow"
	ReasonHandshakeTimeout = "handshake_timeout"
)

// Violation is a camera breaking a bound or the protocol. Its message is
// safe to show (never credentials) and names the cause and the bound.
type Violation struct {
	Reason string // one of the Reason* constants
	Msg    string
}

func (v *Violation) Error() string { return v.Msg }

// byteBucket is the bitrate bound: a token bucket in bytes, shared by the
// TCP connection and the UDP sockets of a session.
type byteBucket struct {
	mu       sync.Mutex
	rate     float64 // bytes per second
	capacity float64
	tokens   float64
	last     time.Time
	bitrate  int64
}

func newByteBucket(bitrate int64, window time.Duration) *byteBucket {
	r := float64(bitrate) / 8
	c := r * window.Seconds()
	return &byteBucket{rate: r, capacity: c, tokens: c, bitrate: bitrate}
}

// take drains n bytes; it returns a Violation once the bucket is empty.
func (b *byteBucket) take(n int, now time.Time) *Violation {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.capacity, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return nil
	}
	return &Violation{Reason: ReasonBitrate, Msg: fmt.Sprintf(
		"the camera sent more than %s sustained (the camera's max_bitrate_mbps); check its encoder settings", mbps(b.bitrate))}
}

func mbps(bits int64) string {
	return fmt.Sprintf("%.4g Mbit/s", float64(bits)/1e6)
}

// windowCounter counts events in a sliding window made of two fixed halves
// (an estimate good to a factor of two, in O(1) memory).
type windowCounter struct {
	half       time.Duration
	start      time.Time
	prev, curr int
}

// add counts n events at now and returns the count over about one window.
func (w *windowCounter) add(n int, now time.Time) int {
	if w.start.IsZero() {
		w.start = now
	}
	for now.Sub(w.start) >= w.half {
		w.prev, w.curr = w.curr, 0
		w.start = w.start.Add(w.half)
		if now.Sub(w.start) >= 2*w.half { // idle for long: start over
			w.prev, w.start = 0, now
		}
	}
	w.curr += n
	return w.prev + w.curr
}
