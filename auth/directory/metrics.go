package directory

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the directory sign-ins. Labels: source (ldap, oidc) and
// result; never a user or an address.
type Metrics struct {
	// Requests counts sign-ins and re-checks by result: ok, invalid
	// (bad credentials or token), gone (re-check: removed or disabled),
	// unavailable (directory unreachable), error (anything else).
	Requests *prometheus.CounterVec
	// Up is 1 while the last exchange with the directory worked, 0 after
	// it failed to reach it.
	Up *prometheus.GaugeVec
	// Duration of sign-ins and re-checks.
	Duration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (nil = not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_directory_requests_total",
			Help: "Directory sign-ins and re-checks by source (ldap, oidc) and result (ok, invalid, gone, unavailable, error).",
		}, []string{"source", "result"}),
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cordon_directory_up",
			Help: "1 while the last exchange with the directory worked, 0 while it is unreachable.",
		}, []string{"source"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cordon_directory_request_seconds",
			Help:    "Time a directory sign-in or re-check took.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Up, m.Duration)
	}
	return m
}

// resultOf names err for the Requests metric.
func resultOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid"
	case errors.Is(err, ErrGone):
		return "gone"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// health remembers whether a directory was last reachable.
type health struct {
	source  string
	metrics *Metrics
	mu      sync.Mutex
	err     error
	since   time.Time
}

func (h *health) init(source string, m *Metrics) {
	h.source, h.metrics = source, m
	if m != nil {
		m.Up.WithLabelValues(source).Set(1)
	}
}

// observe records the outcome of one request and its duration.
func (h *health) observe(start time.Time, now time.Time, err error) {
	if h.metrics != nil {
		h.metrics.Requests.WithLabelValues(h.source, resultOf(err)).Inc()
		h.metrics.Duration.WithLabelValues(h.source).Observe(now.Sub(start).Seconds())
	}
	down := errors.Is(err, ErrUnavailable)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case down && h.err == nil:
		h.err, h.since = err, now
	case down:
		h.err = err
	case !down && err == nil || errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrGone):
		// the directory answered
		h.err, h.since = nil, time.Time{}
	default:
		return
	}
	if h.metrics != nil {
		v := 1.0
		if h.err != nil {
			v = 0
		}
		h.metrics.Up.WithLabelValues(h.source).Set(v)
	}
}

// up records that the directory answered outside a counted request (the
// OIDC discovery document arrived).
func (h *health) up() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.since = nil, time.Time{}
	if h.metrics != nil {
		h.metrics.Up.WithLabelValues(h.source).Set(1)
	}
}

// status returns nil while the directory answers, or an error naming
// since when it does not (for /healthz).
func (h *health) status() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return &UnavailableError{Source: h.source, Reason: unwrapReason(h.err) + " (since " + h.since.UTC().Format(time.RFC3339) + ")"}
}

func unwrapReason(err error) string {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return err.Error()
}
