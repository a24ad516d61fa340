package camnet

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the camera-network series. Labels are camera, vendor and
// reason only: never per address (source addresses are in the egress report
// and logs, for admins).
type Metrics struct {
	dnsQueries  *prometheus.CounterVec
	dnsDropped  *prometheus.CounterVec
	ntpRequests prometheus.Counter
	ntpDropped  *prometheus.CounterVec
}

// NewMetrics creates the camnet metrics and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		dnsQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_dns_queries_total",
			Help: "DNS queries answered (NXDOMAIN) by the camera-side sinkhole, per camera (\"unknown\" for unconfigured sources) and vendor cloud (\"none\" if not in the catalogue).",
		}, []string{"camera", "vendor"}),
		dnsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_dns_dropped_total",
			Help: "DNS packets the sinkhole dropped or refused without recording, per reason (rate_limit, malformed, not_query, tcp_conn_limit).",
		}, []string{"reason"}),
		ntpRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_camera_ntp_requests_total",
			Help: "SNTP client requests answered by the camera-side NTP server.",
		}),
		ntpDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_camera_ntp_dropped_total",
			Help: "NTP packets ignored by the camera-side NTP server, per reason (rate_limit, malformed, not_client).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.dnsQueries, m.dnsDropped, m.ntpRequests, m.ntpDropped)
	}
	return m
}
