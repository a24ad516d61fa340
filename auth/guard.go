package auth

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// DefaultGuardInterval is how often a Guard re-checks every live session
// even without a Change (directory identities expire by time; a missed
// notification is caught). With it, a session no longer allowed ends
// within 5 s whatever the cause.
const DefaultGuardInterval = 2 * time.Second

// Live is one thing a principal holds open: a viewing session, an RTSP
// connection, a PTZ control.
type Live struct {
	ID        string
	Principal *Principal
	Right     Right
	Camera    string
}

// Guard ends live sessions that may no longer continue. A door's session
// registry wires it in a few lines:
//
//	g := &auth.Guard{Service: svc,
//		List: func() []auth.Live { ... the registry's sessions ... },
//		End:  func(l auth.Live, err error) { ... end l.ID, audit view_end with auth.EndReason(err) ... }}
//	if err := g.Initialize(); err != nil { ... }
//	defer g.Close()
//
// On every Change (logout, reload, directory re-check) it re-checks the
// sessions the change affects at once, on its own goroutine; every
// Interval it re-checks all of them. End is called from that goroutine
// (or from Sweep's caller), never with a lock of the Guard held; it must
// be idempotent, since a session may be found twice before it is gone
// from List.
type Guard struct {
	Service  *Service
	List     func() []Live
	End      func(l Live, reason error)
	Interval time.Duration // 0 = DefaultGuardInterval
	Logger   *slog.Logger

	mu      sync.Mutex
	pending []Change
	all     bool // a full sweep is due
	kick    chan struct{}
	flushes chan chan struct{} // tests: a barrier through the goroutine
	stop    chan struct{}
	done    chan struct{}
	unsub   func()
}

// Initialize subscribes to the Service and starts the guard goroutine.
func (g *Guard) Initialize() error {
	switch {
	case g.Service == nil:
		return errors.New("auth guard: no service")
	case g.List == nil || g.End == nil:
		return errors.New("auth guard: List and End are required")
	case g.Interval < 0:
		return errors.New("auth guard: negative interval")
	}
	if g.Interval == 0 {
		g.Interval = DefaultGuardInterval
	}
	if g.Logger == nil {
		g.Logger = slog.Default()
	}
	g.kick = make(chan struct{}, 1)
	g.flushes = make(chan chan struct{})
	g.stop = make(chan struct{})
	g.done = make(chan struct{})
	g.unsub = g.Service.Subscribe(g.notify)
	go g.run()
	return nil
}

// Close stops the guard and waits for it.
func (g *Guard) Close() {
	if g.unsub == nil {
		return
	}
	g.unsub()
	close(g.stop)
	<-g.done
	g.unsub = nil
}

func (g *Guard) notify(c Change) {
	g.mu.Lock()
	if c.Kind == DirectoryChanged {
		g.all = true
	} else if !g.all && len(g.pending) < 1024 {
		g.pending = append(g.pending, c)
	} else {
		g.all = true
	}
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *Guard) run() {
	defer close(g.done)
	t := time.NewTicker(g.Interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.kick:
			g.sweepPending()
		case done := <-g.flushes:
			g.sweepPending()
			close(done)
		case <-t.C:
			g.sweep(true, nil)
		}
	}
}

// sweepPending sweeps for the changes notified so far. Called on the
// guard goroutine.
func (g *Guard) sweepPending() {
	g.mu.Lock()
	all, pending := g.all, g.pending
	g.all, g.pending = false, nil
	g.mu.Unlock()
	g.sweep(all, pending)
}

// flush returns once every change notified before the call has been swept
// (tests: a signal instead of a wait).
func (g *Guard) flush() {
	done := make(chan struct{})
	select {
	case g.flushes <- done:
		<-done
	case <-g.done:
	}
}

// Sweep re-checks every live session now and ends the ones no longer
// allowed; it returns how many it ended. Safe to call from any goroutine
// (e.g. right after a reload, to log the count).
func (g *Guard) Sweep() int { return g.sweep(true, nil) }

func (g *Guard) sweep(all bool, changes []Change) int {
	if !all && len(changes) == 0 {
		return 0
	}
	ended := 0
	for _, l := range g.List() {
		if !all && !affected(changes, l.Principal) {
			continue
		}
		if err := g.Service.Recheck(l.Principal, l.Right, l.Camera); err != nil {
			name := ""
			if l.Principal != nil {
				name = l.Principal.Name
			}
			g.Logger.Info("ending a session no longer allowed", "session", l.ID, "actor", name, "camera", l.Camera, "right", string(l.Right), "reason", EndReason(err))
			g.End(l, err)
			ended++
		}
	}
	return ended
}

func affected(changes []Change, p *Principal) bool {
	for _, c := range changes {
		if c.Affects(p) {
			return true
		}
	}
	return false
}
