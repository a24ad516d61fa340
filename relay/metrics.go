package relay

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the relay's Prometheus series. Labels are camera and protocol
// only: never per session or per address.
type Metrics struct {
	viewers          *prometheus.GaugeVec
	dropped          *prometheus.CounterVec
	sanitizerDropped *prometheus.CounterVec
}

// NewMetrics creates the relay metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		viewers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_viewers", Help: "Readers attached per camera and protocol (webrtc, rtsp).",
		}, []string{"camera", "protocol"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_viewer_frames_dropped_total", Help: "Frames dropped because a viewer's queue was full (slow viewer), per camera and protocol.",
		}, []string{"camera", "protocol"}),
		sanitizerDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_sanitizer_dropped_nalus_total", Help: "NAL units removed by the sanitizer, per camera and reason.",
		}, []string{"camera", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.viewers, m.dropped, m.sanitizerDropped)
	}
	return m
}

// FrameDropped counts a frame an output dropped for a slow viewer on its
// own side (e.g. an RTSP client's write queue overflowed).
func (m *Metrics) FrameDropped(camera, protocol string) {
	m.dropped.WithLabelValues(camera, protocol).Inc()
}
