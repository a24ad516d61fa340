package camera

import (
	"errors"
	"slices"
	"time"
)

// Local and remote units. On a single node every unit is local: it pulls
// its camera. In a cluster (issue 13) exactly one node owns each camera
// and pulls it; the others are remote: their source relays the owner's
// sanitized stream, and only while readers on that node want it (a remote
// unit behaves as on demand whatever the camera's on_demand says, so a
// node relays only the cameras someone watches there). Whatever must
// happen once per camera, not once per node (recording, hardening checks,
// the camera_online audit line), happens where the unit is local: such
// attachments implement LocalAware and follow the unit.

// LocalAware is implemented by attachments that act only where the camera
// is pulled from the camera itself (a recorder, a hardening watcher). The
// unit calls SetLocal when the attachment is attached and whenever the
// unit's local state changes; calls for one unit are serialized.
type LocalAware interface {
	SetLocal(local bool)
}

// errRepull is the cause a feed's pull is cancelled with when its source's
// upstream changed (the camera's owner): not a failure; the feed pulls
// again at once.
var errRepull = errors.New("camera source switched")

// repullWait bounds how long SetLocal waits for a pull to end.
const repullWait = 10 * time.Second

// Local reports whether this node pulls the camera itself (always true
// on a single node).
func (u *Unit) Local() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return !u.remote
}

// SetLocal tells the unit whether this node pulls the camera itself
// (true) or another node does (false: the source relays it from there, on
// demand). Every call restarts the pulls at once, without a retry delay,
// since the source's upstream changed (another owner): viewers stay
// attached and resume. It returns once the previous pulls have ended, so
// a node that stops owning a camera has closed its camera connection
// before it says so. LocalAware attachments are told of a change.
func (u *Unit) SetLocal(local bool) {
	u.localMu.Lock() // calls are serialized: attachments see them in order
	defer u.localMu.Unlock()
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	changed := u.remote == local
	u.remote = !local
	feeds := slices.Clone(u.feeds)
	var aware []LocalAware
	if changed {
		for _, a := range u.attachments {
			if la, ok := a.(LocalAware); ok {
				aware = append(aware, la)
			}
		}
	}
	u.mu.Unlock()
	if !local { // stop what must run once per camera before the pull moves
		for _, a := range aware {
			a.SetLocal(false)
		}
	}
	for _, f := range feeds {
		f.setRemote(!local)
	}
	if changed {
		u.log.Info("camera source", "local", local)
	}
	if local {
		for _, a := range aware {
			a.SetLocal(true)
		}
	}
}

// setRemote switches the feed between pulling its camera and relaying it,
// and restarts its pull (see Unit.SetLocal).
func (f *feed) setRemote(remote bool) {
	f.mu.Lock()
	f.remote = remote
	if f.demandOnly() && !f.wanted && f.linger == nil && f.ctx.Err() == nil {
		f.linger = f.clk.AfterFunc(f.u.Linger, f.idle)
	}
	if !f.demandOnly() && f.linger != nil {
		f.linger.Stop()
		f.linger = nil
	}
	cancel, done := f.pullCancel, f.pullDone
	f.mu.Unlock()
	select { // wake a feed parked for demand or waiting to retry
	case f.demandCh <- struct{}{}:
	default:
	}
	select {
	case f.repullCh <- struct{}{}:
	default:
	}
	if cancel == nil {
		return
	}
	cancel(errRepull)
	t := time.NewTimer(repullWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		f.log.Warn("camera source did not stop within the bound after a switch", "bound", repullWait.String())
	}
}

// demandOnly: the feed pulls only while readers want it (and Linger
// after): an on-demand camera, or a camera another node owns. Called with
// f.mu held.
func (f *feed) demandOnly() bool { return f.onDemand || f.remote }
