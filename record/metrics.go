package record

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the recorder's and the exporter's Prometheus series. Labels
// are camera and reason only.
type Metrics struct {
	bytes       *prometheus.CounterVec
	segments    *prometheus.CounterVec
	diskBytes   *prometheus.GaugeVec
	oldest      *prometheus.GaugeVec
	errors      *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	deleted     *prometheus.CounterVec
	clockOffset prometheus.Gauge
	clockSteps  prometheus.Counter
	playbacks   prometheus.Counter
	exports     prometheus.Counter
	exportFail  *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_recording_bytes_total", Help: "Bytes written to recording segments, per camera.",
		}, []string{"camera"}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_recording_segments_total", Help: "Recording segments started, per camera.",
		}, []string{"camera"}),
		diskBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_recording_disk_bytes", Help: "Bytes of recording segments on disk, per camera (exports not included).",
		}, []string{"camera"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_recording_oldest_timestamp_seconds", Help: "Start of the oldest recording kept, per camera (Unix time).",
		}, []string{"camera"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_recording_errors_total", Help: "Recorder errors per camera and reason (disk_full, io, index, source).",
		}, []string{"camera", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_recording_dropped_samples_total", Help: "Samples not recorded because the recorder's queue was full or the stream was unusable, per camera.",
		}, []string{"camera"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_recording_deleted_segments_total", Help: "Segments deleted by retention, per camera and reason (age, quota, missing).",
		}, []string{"camera", "reason"}),
		clockOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cordon_recording_clock_offset_seconds", Help: "Wall clock minus the recording clock (monotonic since its anchor); beyond 2 s the clock is re-anchored at the next segment boundary.",
		}),
		clockSteps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_recording_clock_reanchors_total", Help: "Times the recording clock was re-anchored to a stepped wall clock.",
		}),
		playbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_playback_requests_total", Help: "Playback clips served.",
		}),
		exports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_exports_total", Help: "Evidence exports built.",
		}),
		exportFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_export_failures_total", Help: "Evidence exports refused or failed, per reason (corrupt, no_recording, audit, io).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.segments, m.diskBytes, m.oldest, m.errors, m.dropped,
			m.deleted, m.clockOffset, m.clockSteps, m.playbacks, m.exports, m.exportFail)
	}
	return m
}

// camMetrics are one camera's series.
type camMetrics struct {
	bytes, segments, dropped prometheus.Counter
	m                        *Metrics
	camera                   string
}

func (m *Metrics) forCamera(id string) camMetrics {
	return camMetrics{
		bytes:    m.bytes.WithLabelValues(id),
		segments: m.segments.WithLabelValues(id),
		dropped:  m.dropped.WithLabelValues(id),
		m:        m,
		camera:   id,
	}
}

func (c camMetrics) error(reason string) { c.m.errors.WithLabelValues(c.camera, reason).Inc() }
