package onvifserve

import "github.com/prometheus/client_golang/prometheus"

// Request results (the result label).
const (
	resultOK           = "ok"
	resultFault        = "fault"
	resultUnsupported  = "unsupported"
	resultUnauthorized = "unauthorized"
	resultRateLimited  = "rate_limited"
	resultBusy         = "busy"
)

// Metrics are the ONVIF face's series. Labels are bounded: the operation
// is one the face implements, or "unknown"; never per address or
// principal.
type Metrics struct {
	requests *prometheus.CounterVec
	probes   *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_onvif_requests_total",
			Help: "ONVIF requests to cordon's device face per operation and result (ok, fault, unsupported, unauthorized, rate_limited, busy).",
		}, []string{"operation", "result"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_onvif_discovery_probes_total",
			Help: "WS-Discovery messages received by the responder per result (answered, ignored, rate_limited, malformed).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.probes)
	}
	return m
}

func (m *Metrics) request(op, result string) {
	if m == nil {
		return
	}
	if op == "" {
		op = "unknown"
	}
	m.requests.WithLabelValues(op, result).Inc()
}

func (m *Metrics) probe(result string) {
	if m != nil {
		m.probes.WithLabelValues(result).Inc()
	}
}
