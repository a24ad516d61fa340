package directory

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Looker re-reads one signed-in user from a directory (*LDAP): by its
// Subject (the entry it signed in as), never by re-running the sign-in
// search with its name.
type Looker interface {
	Reread(ctx context.Context, prev Identity) (Identity, error)
}

// RecheckOwner is what a Rechecker needs from its owner (package auth's
// session registry, through the wiring).
type RecheckOwner interface {
	// SignedIn returns the directory identities that hold live sessions
	// or tokens now (only those with Source SourceLDAP are re-read).
	SignedIn() []Identity
	// Rechecked reports a user whose directory state changed. err is
	// ErrGone when the user was removed or disabled (end every session);
	// otherwise err is nil and now carries the new groups and roles (end
	// what the new roles no longer allow).
	Rechecked(prev, now Identity, err error)
}

// RecheckResult counts what one pass found.
type RecheckResult struct {
	Checked, Changed, Gone, Unavailable int
}

// Rechecker re-reads signed-in directory users every Interval, so rights
// follow the directory: a user who left a group or was disabled loses
// access within one interval. While the directory is unreachable, sessions
// are kept (a directory outage must not blind a control room) and the
// pass is counted as Unavailable. Set the fields, then Initialize.
type Rechecker struct {
	Directory Looker
	Owner     RecheckOwner
	// Interval between passes (0 = DefaultRecheckInterval).
	Interval time.Duration
	Logger   *slog.Logger

	cancel  context.CancelFunc
	trigger chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex // one pass at a time
}

// Initialize starts the periodic re-check.
func (r *Rechecker) Initialize() error {
	if r.Directory == nil || r.Owner == nil {
		return errors.New("rechecker: Directory and Owner are required")
	}
	if r.Interval <= 0 {
		r.Interval = DefaultRecheckInterval
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.trigger = make(chan struct{}, 1)
	r.wg.Add(1)
	go r.loop(ctx)
	return nil
}

// Close stops the re-check and waits for a running pass to end.
func (r *Rechecker) Close() {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
}

// Trigger asks for a pass now (e.g. after a config reload) without waiting.
func (r *Rechecker) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

func (r *Rechecker) loop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.trigger:
		}
		res := r.Recheck(ctx)
		if res.Unavailable > 0 {
			r.Logger.Warn("directory re-check: directory unavailable; sessions kept", "users", res.Unavailable)
		}
	}
}

// Recheck runs one pass now and reports what it found.
func (r *Rechecker) Recheck(ctx context.Context) RecheckResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	var res RecheckResult
	seen := map[string]bool{}
	for _, prev := range r.Owner.SignedIn() {
		key := prev.Name + "\x00" + prev.Subject
		if prev.Source != SourceLDAP || seen[key] || ctx.Err() != nil {
			continue
		}
		seen[key] = true
		res.Checked++
		now, err := r.Directory.Reread(ctx, prev)
		switch {
		case errors.Is(err, ErrGone) || errors.Is(err, ErrInvalidCredentials):
			res.Gone++
			r.Logger.Info("directory re-check: user removed or disabled", "user", prev.Name)
			r.Owner.Rechecked(prev, Identity{}, ErrGone)
		case err != nil:
			res.Unavailable++
		case !sameMembership(prev, now):
			res.Changed++
			r.Logger.Info("directory re-check: groups changed", "user", prev.Name, "roles", now.Roles)
			r.Owner.Rechecked(prev, now, nil)
		}
	}
	return res
}

// sameMembership compares groups (case-insensitively, any order) and roles.
func sameMembership(a, b Identity) bool {
	fold := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = strings.ToLower(s)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(fold(a.Groups), fold(b.Groups)) && slices.Equal(a.Roles, b.Roles) && a.Subject == b.Subject
}
