package connlimit

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the connection caps. Labels: protocol, reason (never the
// address).
type Metrics struct {
	Open     *prometheus.GaugeVec   // protocol
	Rejected *prometheus.CounterVec // protocol, reason: total, per_address
	TimedOut *prometheus.CounterVec // protocol, reason: handshake, idle
}

// NewMetrics creates the metrics and registers them with reg (nil = not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_connections_open",
			Help: "Open operator-side TCP connections by protocol (http, rtsp, ice_tcp).",
		}, []string{"protocol"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_connections_rejected_total",
			Help: "TCP connections refused over a cap (limits.*): reason total or per_address.",
		}, []string{"protocol", "reason"}),
		TimedOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_connections_timed_out_total",
			Help: "TCP connections closed for sending nothing (handshake) or for being idle.",
		}, []string{"protocol", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.Open, m.Rejected, m.TimedOut)
	}
	return m
}

func (m *Metrics) opened(p string) {
	if m != nil {
		m.Open.WithLabelValues(p).Inc()
	}
}

func (m *Metrics) closed(p string) {
	if m != nil {
		m.Open.WithLabelValues(p).Dec()
	}
}

func (m *Metrics) rejected(p, reason string) {
	if m != nil {
		m.Rejected.WithLabelValues(p, reason).Inc()
	}
}

func (m *Metrics) timedOut(p, reason string) {
	if m != nil {
		m.TimedOut.WithLabelValues(p, reason).Inc()
	}
}
