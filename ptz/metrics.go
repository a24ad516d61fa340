package ptz

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the PTZ series (labels: camera, result; never per principal).
type Metrics struct {
	commands  *prometheus.CounterVec
	takeovers *prometheus.CounterVec
}

// NewMetrics creates the PTZ metrics and registers them on reg (nil: not
// registered, for tests). One Metrics serves every camera's Control.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ptz_commands_total",
			Help: "PTZ commands per camera and result (ok, conflict, invalid, rate_limited, camera_error, forbidden, other).",
		}, []string{"camera", "result"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_ptz_takeovers_total",
			Help: "PTZ control taken over by a higher priority, per camera.",
		}, []string{"camera"}),
	}
	if reg != nil {
		reg.MustRegister(m.commands, m.takeovers)
	}
	return m
}

func (m *Metrics) command(camera string, err error) {
	if m == nil {
		return
	}
	res := "other"
	switch StatusCode(err) {
	case 204:
		res = "ok"
	case 409:
		res = "conflict"
	case 400:
		res = "invalid"
	case 429:
		res = "rate_limited"
	case 502:
		res = "camera_error"
	case 403:
		res = "forbidden"
	}
	m.commands.WithLabelValues(camera, res).Inc()
}

func (m *Metrics) takeover(camera string) {
	if m != nil {
		m.takeovers.WithLabelValues(camera).Inc()
	}
}
