package auth

import (
	"time"
)

// State shared between the nodes of a cluster (issue 13). auth knows
// nothing of etcd or the cluster: the gateway hands it a token signing key
// every node derives alike (Service.TokenKey), something that publishes
// revocations (Service.Revocations), and the other nodes' lockout counts
// (Service.SharedLockouts); the cluster hands revocations made elsewhere
// back through Service.Revoked. A *cluster.Node and its Lockouts satisfy
// these interfaces.

// RevocationPublisher shares a token revocation with the other nodes. It
// must not block (publishing happens in the background) and must be safe
// for concurrent use.
type RevocationPublisher interface {
	Revoke(id string, expires time.Time) error
}

// SharedLockouts holds the other nodes' lockout counts. Record tells it
// this node's state of a key after every change (failures 0 = forget);
// Remote returns the failures the other nodes counted for the key and the
// latest lock they hold on it. Both are called with the lockout table's
// lock held: they must be quick and must never call back into auth.
type SharedLockouts interface {
	Record(key string, failures int, lockedUntil, expires time.Time)
	Remote(key string, now time.Time) (failures int, lockedUntil time.Time)
}

// Revoked applies a revocation made on any node of the cluster (this one
// included: it is idempotent). A token revoked for the first time here is
// persisted and its live sessions are ended (subscribers get a
// TokenRevoked). Ids that are not session token ids are ignored.
func (s *Service) Revoked(id string, expires time.Time) {
	if s.revoked == nil || !isHex(id, jtiHexLength) {
		return
	}
	added, err := s.revoked.add(id, expires, s.now())
	if err != nil {
		s.logger().Error("persisting a revocation from another node failed; it is in force until restart", "err", err)
	}
	if added {
		s.publish(Change{Kind: TokenRevoked, TokenID: id})
	}
}

// share tells the other nodes a revocation this node made.
func (s *Service) share(id string, expires time.Time) {
	if s.Revocations == nil {
		return
	}
	if err := s.Revocations.Revoke(id, expires); err != nil {
		s.logger().Error("sharing a token revocation with the cluster failed; it is in force on this node", "err", err)
	}
}

// remote returns the other nodes' failures and lock of key (none on a
// single node). Called with l.mu held.
func (l *lockout) remote(key string, now time.Time) (int, time.Time) {
	if l.shared == nil {
		return 0, time.Time{}
	}
	f, until := l.shared.Remote(key, now)
	return max(f, 0), until
}

// lockedUntil is the latest lock on key, here or on another node. Called
// with l.mu held.
func (l *lockout) lockedUntil(key string, now time.Time) time.Time {
	_, until := l.remote(key, now)
	if e := l.m[key]; e != nil && e.lockedUntil.After(until) {
		until = e.lockedUntil
	}
	return until
}

// share publishes this node's state of key. Called with l.mu held.
func (l *lockout) share(key string, e *lockEntry) {
	if l.shared == nil {
		return
	}
	expires := e.last.Add(l.policy.Decay)
	if e.lockedUntil.After(expires) {
		expires = e.lockedUntil
	}
	l.shared.Record(key, e.failures, e.lockedUntil, expires)
}
