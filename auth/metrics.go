package auth

import "github.com/prometheus/client_golang/prometheus"

// Metrics of package auth. No per-user or per-address labels.
type Metrics struct {
	LoginFailures   *prometheus.CounterVec // reason: bad_credentials, locked_out, busy, directory_unavailable
	Logins          prometheus.Counter
	RequestFailures *prometheus.CounterVec // reason: no_credentials, invalid_token, expired, revoked, bad_api_key, locked_out, token_in_query
	TokenCheck      prometheus.Histogram
	HashesInFlight  prometheus.Gauge   // argon2id verifications running
	HashesQueued    prometheus.Gauge   // waiting for a global slot
	HashesRefused   prometheus.Counter // refused: queue full (503)
}

// NewMetrics creates the metrics and registers them with reg (nil = not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LoginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_login_failures_total",
			Help: "Failed sign-ins (HTTP login and RTSP/API-key credentials) by reason.",
		}, []string{"reason"}),
		Logins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_logins_total",
			Help: "Successful sign-ins that issued a session token.",
		}),
		RequestFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_auth_request_failures_total",
			Help: "Requests refused by authentication, by reason.",
		}, []string{"reason"}),
		TokenCheck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cordon_auth_token_check_seconds",
			Help:    "Time to authenticate a request bearing a session token.",
			Buckets: []float64{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2},
		}),
		HashesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cordon_auth_hashes_in_flight",
			Help: "argon2id verifications running now (bounded: one per address, limits.argon2_concurrent in total).",
		}),
		HashesQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cordon_auth_hashes_queued",
			Help: "argon2id verifications waiting for a slot (bounded by limits.argon2_queue).",
		}),
		HashesRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_auth_hashes_refused_total",
			Help: "Sign-ins refused with 503 because the hashing queue was full.",
		}),
	}
	for _, r := range []string{"bad_credentials", "locked_out", "busy"} {
		m.LoginFailures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.LoginFailures, m.Logins, m.RequestFailures, m.TokenCheck, m.HashesInFlight, m.HashesQueued, m.HashesRefused)
	}
	return m
}

func (m *Metrics) hashInflight(delta float64) {
	if m != nil {
		m.HashesInFlight.Add(delta)
	}
}

func (m *Metrics) hashQueued(n int) {
	if m != nil {
		m.HashesQueued.Set(float64(n))
	}
}

func (m *Metrics) hashBusy() {
	if m != nil {
		m.HashesRefused.Inc()
	}
}

func (m *Metrics) loginFailed(reason string) {
	if m != nil {
		m.LoginFailures.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) loginOK() {
	if m != nil {
		m.Logins.Inc()
	}
}

func (m *Metrics) requestFailed(reason string) {
	if m != nil {
		m.RequestFailures.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) tokenChecked(seconds float64) {
	if m != nil {
		m.TokenCheck.Observe(seconds)
	}
}
