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
	violations    *prometheus.CounterVec
	redirects     *prometheus.CounterVec
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
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_violations_total", Help: "Connections dropped because the camera broke a bound or the protocol, per reason (redirect, header_size, body_size, tracks, access_unit, bitrate, junk, stray_frames, param_set_churn, timestamps, rtcp_flood, slow, handshake_timeout, dial_refused).",
		}, []string{"camera", "reason"}),
		redirects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_redirects_refused_total", Help: "RTSP redirects from the camera that cordon refused to follow.",
		}, []string{"camera"}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.frames, m.decodeErrors, m.tracksDropped, m.packetsLost, m.violations, m.redirects)
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
	redirects    prometheus.Counter
	dropped      *prometheus.CounterVec
	violations   *prometheus.CounterVec
	camera       string
}

func (m *Metrics) forCamera(id string) *cameraMetrics {
	return &cameraMetrics{
		bytes:        m.bytes.WithLabelValues(id),
		videoFrames:  m.frames.WithLabelValues(id, "video"),
		audioFrames:  m.frames.WithLabelValues(id, "audio"),
		decodeErrors: m.decodeErrors.WithLabelValues(id),
		packetsLost:  m.packetsLost.WithLabelValues(id),
		redirects:    m.redirects.WithLabelValues(id),
		dropped:      m.tracksDropped,
		violations:   m.violations,
		camera:       id,
	}
}

func (cm *cameraMetrics) trackDropped(kind string) {
	cm.dropped.WithLabelValues(cm.camera, kind).Inc()
}

func (cm *cameraMetrics) violation(reason string) {
	cm.violations.WithLabelValues(cm.camera, reason).Inc()
	if reason == ReasonRedirect {
		cm.redirects.Inc()
	}
}
