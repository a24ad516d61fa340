package auth

import "cordon/auth/audit"

// HostileAuditor takes the audit events an attacker can trigger at will and
// writes them aggregated; *audit.Aggregator implements it.
type HostileAuditor interface {
	Record(source, kind string, e audit.Event)
}

// auditHostile records a failed sign-in: through Hostile (keyed by the
// remote address, never by the name the attacker sent) when set, else
// straight to the log.
func (s *Service) auditHostile(e audit.Event) {
	if s.Hostile != nil {
		s.Hostile.Record(e.Remote, e.Event, e)
		return
	}
	_ = s.audit(e)
}
