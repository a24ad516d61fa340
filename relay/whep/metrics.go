package whep

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the WHEP series. Labels: camera and reason only.
type Metrics struct {
	setup    prometheus.Histogram
	sessions *prometheus.CounterVec
	errors   *prometheus.CounterVec
	rtx      rtxMetrics
	send     sendMetrics
	// candidates: remote ICE candidates refused, per reason; dropped:
	// datagrams and ICE-TCP connections from addresses the policy refuses.
	candidates *prometheus.CounterVec
	dropped    prometheus.Counter
}

// NewMetrics creates the WHEP metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cordon_whep_session_setup_seconds",
			Help:    "Time from a WHEP POST to the SDP answer being sent, successful sessions only.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_whep_sessions_total", Help: "WHEP sessions started, per camera.",
		}, []string{"camera"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_whep_session_errors_total", Help: "WHEP requests refused and sessions ended abnormally, per reason.",
		}, []string{"reason"}),
		rtx:  newRTXMetrics(),
		send: newSendMetrics(),
		candidates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_whep_candidates_refused_total", Help: "Remote ICE candidates refused (too_many, address, hostname, malformed).",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_whep_ice_refused_total", Help: "ICE datagrams and ICE-TCP connections from addresses the ICE policy refuses, dropped.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.setup, m.sessions, m.errors, m.candidates, m.dropped, m.rtx.resent, m.rtx.refused, m.send.calls, m.send.packets)
	}
	return m
}
