package auth

import "cordon/auth/audit"

// HostileAuditor takes the audit events an attacker can trigger at will and
// writes them aggregated; *audit.Aggregator implements it.
type HostileAuditor interface {
	Record(source, kind string, e audit.Event)
}

// Kinds of the events auth aggregates (HostileAuditor.Record's kind).
const (
	// KindLockout: a failed sign-in that started (or extended) a lock; its
	// detail keeps the lock's duration.
	KindLockout = "lockout"
	// kindDenied prefixes a refused action's kind ("denied_http", ...).
	kindDenied = "denied_"
)

// auditHostile records a failed sign-in: through Hostile when set, keyed
// by the address (AddrID: IPv6 per /64, as the lockout; never by the name
// the attacker sent), else straight to the log. A failure that starts a
// lockout is of kind KindLockout, so per address and interval the first
// one is written with its duration and later ones are counted: a botnet
// of fresh addresses adds at most the aggregator's bound of lines, not one
// per address.
func (s *Service) auditHostile(lockout bool, e audit.Event) {
	if s.Hostile == nil {
		_ = s.audit(e)
		return
	}
	kind := e.Event
	if lockout {
		kind = KindLockout
	}
	s.Hostile.Record(AddrID(e.Remote), kind, e)
}

// RecordDenied records a denial a door decided itself (e.g. a camera not
// permitted, before the door calls Authorize) the way Authorize records
// its own: aggregated per principal when Hostile is set. An error means
// the audit log is unavailable (only without Hostile).
func (s *Service) RecordDenied(e audit.Event) error {
	e.Event = audit.Denied
	return s.auditDenied(e)
}

// auditDenied records a refused action of an authenticated principal
// (a right not granted, the admin API without admin): through Hostile
// when set, keyed by the principal (one may repeat a refused request at
// will), one kind per protocol; else straight to the log, where an error
// means the audit is unavailable.
func (s *Service) auditDenied(e audit.Event) error {
	if s.Hostile == nil {
		return s.audit(e)
	}
	s.Hostile.Record("actor:"+e.Actor, kindDenied+e.Protocol, e)
	return nil
}
