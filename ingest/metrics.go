package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest Prometheus series (what arrives from cameras),
// shared by all cameras; a camera's up and reconnect series are package
// camera's. Labels are camera and kind only: never per session or per
// address.
type Metrics struct {
	bytes         *prometheus.CounterVec
	frames        *prometheus.CounterVec
	decodeErrors  *prometheus.CounterVec
	tracksDropped *prometheus.CounterVec
	packetsLost   *prometheus.CounterVec
}

// NewMetrics creates the ingest metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ingest_bytes_total", Help: "RTP payload bytes received from the camera on the tracks cordon keeps.",
		}, []string{"camera"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ingest_frames_total", Help: "Video access units and audio frames depacketized from the camera, per kind (video, audio).",
		}, []string{"camera", "kind"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ingest_decode_errors_total", Help: "Non-fatal RTP depacketization errors (lost fragments, malformed packets).",
		}, []string{"camera"}),
		tracksDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ingest_tracks_dropped_total", Help: "Camera tracks not set up because cordon does not re-serve them, per kind (metadata, application, backchannel, video, audio, other); counted per connection.",
		}, []string{"camera", "kind"}),
		packetsLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ingest_packets_lost_total", Help: "RTP packets from the camera detected as lost.",
		}, []string{"camera"}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.frames, m.decodeErrors, m.tracksDropped, m.packetsLost)
	}
	return m
}

// cameraMetrics are one camera's children of the shared vectors, resolved
// once so the packet path does no label lookups.
type cameraMetrics struct {
	bytes        prometheus.Counter
	videoFrames  prometheus.Counter
	audioFrames  prometheus.Counter
	decodeErrors prometheus.Counter
	packetsLost  prometheus.Counter
	dropped      *prometheus.CounterVec
	camera       string
}

func (m *Metrics) forCamera(id string) *cameraMetrics {
	return &cameraMetrics{
		bytes:        m.bytes.WithLabelValues(id),
		videoFrames:  m.frames.WithLabelValues(id, "video"),
		audioFrames:  m.frames.WithLabelValues(id, "audio"),
		decodeErrors: m.decodeErrors.WithLabelValues(id),
		packetsLost:  m.packetsLost.WithLabelValues(id),
		dropped:      m.tracksDropped,
		camera:       id,
	}
}

func (cm *cameraMetrics) trackDropped(kind string) {
	cm.dropped.WithLabelValues(cm.camera, kind).Inc()
}
