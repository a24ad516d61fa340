package audit

import "github.com/prometheus/client_golang/prometheus"

// ForwardMetrics are the forwarder's metrics. No labels.
type ForwardMetrics struct {
	Lag        prometheus.Gauge // lines written but not yet delivered
	LagSeconds prometheus.Gauge // age of the oldest of them
	Connected  prometheus.Gauge
	Sent       prometheus.Counter // lines sent, re-sends included
	Errors     prometheus.Counter // connections that failed or broke
}

// NewForwardMetrics creates the metrics and registers them with reg (nil =
// not registered).
func NewForwardMetrics(reg prometheus.Registerer) *ForwardMetrics {
	m := &ForwardMetrics{
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cordon_audit_forward_lag",
			Help: "Audit lines written but not yet delivered to the syslog collector (audit.forward).",
		}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cordon_audit_forward_lag_seconds",
			Help: "Age of the oldest audit line not yet delivered to the syslog collector (0 when none).",
		}),
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cordon_audit_forward_connected",
			Help: "1 while connected to the syslog collector.",
		}),
		Sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_audit_forward_sent_total",
			Help: "Audit lines sent to the syslog collector, re-sends after a broken connection included.",
		}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_audit_forward_errors_total",
			Help: "Connections to the syslog collector that failed or broke.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Lag, m.LagSeconds, m.Connected, m.Sent, m.Errors)
	}
	return m
}

func (m *ForwardMetrics) lag(lines uint64, secs float64) {
	if m != nil {
		m.Lag.Set(float64(lines))
		m.LagSeconds.Set(secs)
	}
}

func (m *ForwardMetrics) connected(up bool) {
	if m != nil {
		v := 0.0
		if up {
			v = 1
		}
		m.Connected.Set(v)
	}
}

func (m *ForwardMetrics) sent() {
	if m != nil {
		m.Sent.Inc()
	}
}

func (m *ForwardMetrics) failed() {
	if m != nil {
		m.Errors.Inc()
	}
}
