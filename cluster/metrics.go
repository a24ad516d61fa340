package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cluster's Prometheus metrics. Labels are fixed words,
// never node, camera or token ids.
type Metrics struct {
	// Degraded is 1 while etcd cannot be reached (cordon_cluster_degraded).
	Degraded prometheus.Gauge
	// Members is the number of live nodes this node sees.
	Members prometheus.Gauge
	// Owned is the number of cameras this node owns.
	Owned prometheus.Gauge
	// OwnershipChanges counts this node's ownership changes by change:
	// acquired, released (handover or removal), lost (another node owns a
	// camera this node was still pulling, after an etcd outage).
	OwnershipChanges *prometheus.CounterVec
	// RenewalFailures counts failed lease renewals.
	RenewalFailures prometheus.Counter
	// Revocations counts revocations by direction: published, received.
	Revocations *prometheus.CounterVec
	// Writes counts this node's etcd writes by kind (claim, release,
	// status, lockout, report, revocation, register): the cluster's write
	// load at a glance.
	Writes *prometheus.CounterVec
	// ReconcileSeconds times the ownership passes (one per change seen,
	// and a few per second).
	ReconcileSeconds prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil =
// unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Degraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_cluster_degraded",
			Help: "1 while etcd cannot be reached: the node keeps what it owns and changes no ownership."}),
		Members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_cluster_members",
			Help: "Live cluster nodes seen by this node."}),
		Owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cordon_cluster_cameras_owned",
			Help: "Cameras this node owns (pulls from the camera)."}),
		OwnershipChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_cluster_ownership_changes_total",
			Help: "Camera ownership changes of this node, by change (acquired, released, lost)."}, []string{"change"}),
		RenewalFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_cluster_lease_renewal_failures_total",
			Help: "Failed renewals of this node's etcd lease."}),
		Revocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_cluster_revocations_total",
			Help: "Token revocations shared through etcd, by direction (published, received)."}, []string{"direction"}),
		Writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_cluster_etcd_writes_total",
			Help: "Writes this node made to etcd, by kind."}, []string{"kind"}),
		ReconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_cluster_reconcile_seconds",
			Help:    "Duration of one ownership pass over every camera (including its etcd writes).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
	}
	if reg != nil {
		reg.MustRegister(m.Degraded, m.Members, m.Owned, m.OwnershipChanges, m.RenewalFailures, m.Revocations, m.Writes, m.ReconcileSeconds)
	}
	return m
}
