package harden

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the hardening series. Labels: camera, result; never per
// address.
type Metrics struct {
	ok     *prometheus.GaugeVec
	checks *prometheus.CounterVec
}

// NewMetrics creates the hardening metrics and registers them on reg
// (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ok: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_camera_hardening_ok",
			Help: "1 when every outbound setting of the camera was as wanted at its last check, 0 when one drifted or could not be read.",
		}, []string{"camera"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_hardening_checks_total",
			Help: "Hardening checks of cameras' outbound settings, per result (ok, drift, error).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.ok, m.checks)
	}
	return m
}

func (m *Metrics) observe(camera string, r *CameraResult) {
	v, result := 0.0, "drift"
	switch {
	case r.OK():
		v, result = 1, "ok"
	case r.Error != "":
		result = "error"
	}
	m.ok.WithLabelValues(camera).Set(v)
	m.checks.WithLabelValues(result).Inc()
}

func (m *Metrics) forget(camera string) { m.ok.DeleteLabelValues(camera) }
