package camera

import "github.com/prometheus/client_golang/prometheus"

// Metrics are a camera's lifecycle series, shared by all units. Labels:
// camera only.
type Metrics struct {
	up         *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
}

// NewMetrics creates the camera metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_camera_up", Help: "1 while the camera is connected and playing, else 0.",
		}, []string{"camera"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_reconnects_total", Help: "Connection attempts made after a camera failed or disconnected.",
		}, []string{"camera"}),
	}
	if reg != nil {
		reg.MustRegister(m.up, m.reconnects)
	}
	return m
}
