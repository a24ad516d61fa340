package harden

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"cordon/auth/audit"
)

// Auditor receives the watcher's events (audit.HardeningDrift,
// audit.CameraHardened). The gateway passes the audit log, or its
// aggregator (a hostile camera can flip its settings at will).
type Auditor interface {
	Record(audit.Event) error
}

// AuditorFunc adapts a function (e.g. (*audit.Log).Append) to Auditor.
type AuditorFunc func(audit.Event) error

// Record calls f.
func (f AuditorFunc) Record(e audit.Event) error { return f(e) }

// Watcher defaults.
const (
	DefaultInterval = 6 * time.Hour
	DefaultMinGap   = time.Minute
	DefaultWorkers  = 4
)

// Watcher is the drift watch: it checks every camera (read only) every
// Interval and on demand (CameraConnected, at each camera connect),
// keeps the last result per camera, exports
// cordon_camera_hardening_ok{camera} (1 as wanted, 0 otherwise, unknown
// included), and audits hardening_drift when a setting that was as wanted
// (or, at the first check, any setting) is not, and camera_hardened when
// Apply changed a camera or a camera is as wanted again. Set the exported
// fields, SetTargets, then Initialize; Close when done.
type Watcher struct {
	Wanted Wanted
	// Interval between periodic checks of every camera (0 = 6 h).
	Interval time.Duration
	// Options bound each check (timeouts, sizes); Apply and Reboot are
	// ignored by periodic checks.
	Options Options
	// MinGap: a camera is checked at most once per MinGap on demand;
	// calls in between are coalesced into one check at the gap's end
	// (0 = 1 min). It bounds what a camera reconnecting in a loop costs.
	MinGap time.Duration
	// Workers checks at once (0 = 4).
	Workers int
	Auditor Auditor      // nil: no audit
	Metrics *Metrics     // nil: unregistered
	Logger  *slog.Logger // nil: discard
	// Now is the clock for timestamps and MinGap (nil = time.Now).
	Now func() time.Time
	// Ticker makes the periodic tick (nil = time.NewTicker); tests inject
	// their own channel.
	Ticker func(time.Duration) (<-chan time.Time, func())
	// OnResult, when set, is called after each recorded result (outside
	// the watcher's locks), e.g. to push it to an admin page.
	OnResult func(CameraResult)
	// Elsewhere, when set, reports the cameras another process reaches (a
	// cluster node that does not own the camera): they are neither checked
	// nor changed here (ErrElsewhere), so a camera hears from one node.
	Elsewhere func(camera string) bool

	log     *slog.Logger
	metrics *Metrics
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{}

	mu      sync.Mutex
	order   []string
	targets map[string]Target
	cams    map[string]*camState
	queue   []string
	queued  map[string]bool
	closed  bool
}

type camState struct {
	run    sync.Mutex // one check or apply of this camera at a time
	result *CameraResult
	known  map[string]bool // last known ok per setting
	last   time.Time       // start of the last check
	timer  *time.Timer     // a deferred on-demand check
	// refused: the camera refused the credentials at the last check; no
	// on-demand checks until the next periodic one or new credentials.
	refused bool
}

// Initialize starts the workers and the periodic check, and queues a
// first check of every camera.
func (w *Watcher) Initialize() error {
	w.log = w.Logger
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.metrics = w.Metrics
	if w.metrics == nil {
		w.metrics = NewMetrics(nil)
	}
	w.Interval = orDefault(w.Interval, DefaultInterval)
	w.MinGap = orDefault(w.MinGap, DefaultMinGap)
	if w.Workers <= 0 {
		w.Workers = DefaultWorkers
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	w.Options.Now = w.Now
	w.wake = make(chan struct{}, 1)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.mu.Lock()
	w.ensureMaps()
	w.mu.Unlock()
	tick, stop := w.ticker()
	w.wg.Add(1 + w.Workers)
	go w.tickLoop(tick, stop)
	for i := 0; i < w.Workers; i++ {
		go w.worker()
	}
	w.CheckAll()
	return nil
}

func (w *Watcher) ticker() (<-chan time.Time, func()) {
	if w.Ticker != nil {
		return w.Ticker(w.Interval)
	}
	t := time.NewTicker(w.Interval)
	return t.C, t.Stop
}

func (w *Watcher) ensureMaps() {
	if w.targets == nil {
		w.targets, w.cams, w.queued = map[string]Target{}, map[string]*camState{}, map[string]bool{}
	}
}

// Close stops the watcher and waits for running checks to end.
func (w *Watcher) Close() {
	w.mu.Lock()
	w.closed = true
	for _, st := range w.cams {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
	w.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

// SetTargets replaces the cameras (at start and on reload). Removed
// cameras lose their results and metric; new ones are checked.
func (w *Watcher) SetTargets(ts []Target) {
	w.mu.Lock()
	w.ensureMaps()
	next := map[string]Target{}
	w.order = w.order[:0]
	for _, t := range ts {
		next[t.Camera] = t
		w.order = append(w.order, t.Camera)
		st := w.cams[t.Camera]
		if st == nil {
			w.cams[t.Camera] = &camState{known: map[string]bool{}}
			continue
		}
		if old := w.targets[t.Camera]; old.Username != t.Username || old.Password != t.Password || urlString(old.Base) != urlString(t.Base) {
			st.refused = false
		}
	}
	for id, st := range w.cams {
		if _, ok := next[id]; !ok {
			if st.timer != nil {
				st.timer.Stop()
			}
			delete(w.cams, id)
			if w.metrics != nil {
				w.metrics.forget(id)
			}
		}
	}
	w.targets = next
	started := w.wake != nil
	w.mu.Unlock()
	if started {
		w.CheckAll()
	}
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// CheckAll queues a check of every camera.
func (w *Watcher) CheckAll() {
	w.mu.Lock()
	for _, id := range w.order {
		w.enqueueLocked(id)
	}
	w.mu.Unlock()
}

// CameraConnected queues a check of one camera; the camera unit calls it
// at each camera connect. It never blocks: within MinGap of the camera's
// last check the call is coalesced into one check at the gap's end.
func (w *Watcher) CameraConnected(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.cams[id]
	if st == nil || w.closed || w.wake == nil {
		return
	}
	if st.refused {
		w.log.Debug("hardening check at connect skipped: the camera refused the credentials last time", "camera", id)
		return
	}
	if wait := st.last.Add(w.MinGap).Sub(w.Now()); !st.last.IsZero() && wait > 0 {
		if st.timer == nil {
			st.timer = time.AfterFunc(wait, func() {
				w.mu.Lock()
				defer w.mu.Unlock()
				if cur := w.cams[id]; cur == st {
					st.timer = nil
					w.enqueueLocked(id)
				}
			})
		}
		return
	}
	w.enqueueLocked(id)
}

func (w *Watcher) enqueueLocked(id string) {
	if w.closed || w.queued[id] || w.cams[id] == nil {
		return
	}
	w.queued[id] = true
	w.queue = append(w.queue, id)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) tickLoop(tick <-chan time.Time, stop func()) {
	defer w.wg.Done()
	defer stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-tick:
			w.CheckAll()
		}
	}
}

func (w *Watcher) worker() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		var id string
		if len(w.queue) > 0 {
			id = w.queue[0]
			w.queue = w.queue[1:]
			delete(w.queued, id)
		}
		more := len(w.queue) > 0
		w.mu.Unlock()
		if more {
			select { // let another worker take the next one
			case w.wake <- struct{}{}:
			default:
			}
		}
		if id != "" {
			if _, err := w.Check(w.ctx, id); err != nil && !errors.Is(err, context.Canceled) {
				w.log.Debug("hardening check not run", "camera", id, "error", err)
			}
			continue
		}
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		}
	}
}

// Detail prefixes of hardening_drift: DriftFirstCheck at a camera's first
// check (once per camera and process: not something a camera can repeat),
// DriftChangedBack when settings that were as wanted are not any more (a
// camera can repeat that at will, so the gateway aggregates it).
const (
	DriftFirstCheck  = "not as wanted at the first check: "
	DriftChangedBack = "settings changed back: "
)

// ErrUnknownCamera: no such camera among the targets.
var ErrUnknownCamera = errors.New("unknown camera")

// ErrElsewhere: another process reaches this camera (Watcher.Elsewhere).
var ErrElsewhere = errors.New("the camera is reached by another node of the cluster")

// Check checks one camera now (read only) and records the result.
func (w *Watcher) Check(ctx context.Context, id string) (CameraResult, error) {
	return w.run(ctx, id, Options{}, "")
}

// Apply sets one camera's settings as wanted (and reboots it when reboot
// is set and a change needs it), records the result, and audits
// camera_hardened with actor when anything was changed.
func (w *Watcher) Apply(ctx context.Context, id string, reboot bool, actor string) (CameraResult, error) {
	return w.run(ctx, id, Options{Apply: true, Reboot: reboot}, actor)
}

func (w *Watcher) run(ctx context.Context, id string, mode Options, actor string) (CameraResult, error) {
	w.mu.Lock()
	t, ok := w.targets[id]
	st := w.cams[id]
	w.mu.Unlock()
	if !ok || st == nil {
		return CameraResult{}, fmt.Errorf("%w %q", ErrUnknownCamera, clean(id, 64))
	}
	if w.Elsewhere != nil && w.Elsewhere(id) {
		return CameraResult{}, fmt.Errorf("%w: %q", ErrElsewhere, clean(id, 64))
	}
	st.run.Lock()
	defer st.run.Unlock()
	if err := ctx.Err(); err != nil {
		return CameraResult{}, err
	}
	w.mu.Lock()
	st.last = w.Now()
	w.mu.Unlock()
	o := w.Options
	o.Apply, o.Reboot = mode.Apply, mode.Reboot
	res := Run(ctx, t, w.Wanted, o)
	if ctx.Err() != nil {
		return res, ctx.Err() // cut short: not a verdict about the camera
	}
	w.record(id, st, res, mode.Apply, actor)
	return res, nil
}

// Results returns the last result of every camera, in target order;
// cameras not checked yet have no checked_at and no settings.
func (w *Watcher) Results() []CameraResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]CameraResult, 0, len(w.order))
	for _, id := range w.order {
		st := w.cams[id]
		if st == nil || st.result == nil {
			out = append(out, CameraResult{Camera: id, Vendor: w.targets[id].Vendor, Settings: []SettingResult{}})
			continue
		}
		r := *st.result
		r.Settings = append([]SettingResult(nil), r.Settings...)
		out = append(out, r)
	}
	return out
}

// Handler serves Results as JSON (GET /api/v1/admin/hardening); the
// caller checks that the principal is an admin.
func (w *Watcher) Handler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = rw.Write([]byte(`{"error":"method not allowed"}` + "\n"))
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(rw).Encode(w.Results())
	})
}

// record stores a result, updates the metric, and audits transitions.
func (w *Watcher) record(id string, st *camState, res CameraResult, applied bool, actor string) {
	w.mu.Lock()
	if w.cams[id] != st { // removed meanwhile
		w.mu.Unlock()
		return
	}
	first := len(st.known) == 0
	prevErr := st.result != nil && st.result.Error != ""
	wasBad := false
	for _, ok := range st.known {
		wasBad = wasBad || !ok
	}
	var drifted []string
	for _, s := range res.Settings {
		if s.Status == StatusUnknown {
			continue
		}
		if !s.OK && (first || st.known[s.Name]) {
			drifted = append(drifted, fmt.Sprintf("%s: want %s, have %s", s.Name, clean(s.Want, 40), clean(s.Have, 40)))
		}
		st.known[s.Name] = s.OK
	}
	r := res
	st.result = &r
	st.refused = res.AuthRefused
	w.mu.Unlock()
	if w.metrics != nil {
		w.metrics.observe(id, &res)
	}
	switch {
	case res.Error != "" && !prevErr:
		w.log.Warn("camera hardening check failed", "camera", id, "error", res.Error)
	case res.Error == "" && prevErr:
		w.log.Info("camera hardening check works again", "camera", id)
	}
	switch {
	case applied && res.Changed():
		w.audit(audit.CameraHardened, actor, id, appliedDetail(&res))
	case len(drifted) > 0:
		prefix := DriftChangedBack
		if first {
			prefix = DriftFirstCheck
		}
		w.log.Warn("camera hardening drift", "camera", id, "vendor", res.Vendor, "settings", strings.Join(drifted, "; "))
		w.audit(audit.HardeningDrift, "", id, prefix+strings.Join(drifted, "; "))
	case res.OK() && wasBad:
		w.audit(audit.CameraHardened, "", id, "all settings as wanted again (changed outside serve, e.g. cordon harden --apply)")
	}
	if w.OnResult != nil {
		w.OnResult(res)
	}
}

func appliedDetail(res *CameraResult) string {
	var set, bad []string
	for _, s := range res.Settings {
		if s.Status == StatusSet {
			set = append(set, s.Name)
		}
		if !s.OK {
			bad = append(bad, s.Name+" ("+s.Status+")")
		}
	}
	d := "set: " + strings.Join(set, ", ")
	if res.Rebooted {
		d += "; rebooted"
	}
	if len(bad) == 0 {
		return d + "; all settings as wanted"
	}
	return d + "; still not as wanted: " + strings.Join(bad, ", ")
}

func (w *Watcher) audit(event, actor, camera, detail string) {
	if w.Auditor == nil {
		return
	}
	if err := w.Auditor.Record(audit.Event{Event: event, Actor: actor, Camera: camera, Protocol: "harden", Detail: detail}); err != nil {
		w.log.Error("audit failed", "event", event, "camera", camera, "error", err)
	}
}
