package auth

import "cordon/auth/audit"

// HostileAuditor takes the audit events an attacker can trigger at will and
// writes them aggregated; *audit.Aggregator implements it.
type HostileAuditor interface {
	Record(source, kind string, e audit.Event)
}

// auditHostile records a failed sign-in: through Hostile (keyed by the
// remote address, never by the name the attacker sent) when set, else
// straight to the log. A failure that starts a lockout is always written
// with its duration: locks double (DefaultLockoutPolicy: 1 s to 15 min), so
// an address or name can trigger only a handful of them an hour.
func (s *Service) auditHostile(lockout bool, e audit.Event) {
	if s.Hostile != nil && !lockout {
		s.Hostile.Record(e.Remote, e.Event, e)
		return
	}
	_ = s.audit(e)
}
