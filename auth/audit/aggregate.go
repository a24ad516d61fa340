package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Appender is what an Aggregator writes to (*Log).
type Appender interface {
	Append(Event) error
}

// Defaults of the Aggregator.
const (
	DefaultAggregateInterval   = time.Minute
	DefaultMaxKindsPerSource   = 4
	DefaultMaxLinesPerInterval = 120
)

// OverflowSource is the source under which an Aggregator counts events from
// sources beyond its per-interval budget.
const OverflowSource = "*"

// Aggregator writes events a hostile party can trigger at will (failed
// authentication, sinkhole queries, a camera's protocol violations) to the
// audit log without letting them fill it or delay anything else:
//
//   - per source (a camera, an address) and interval, the first event of
//     each kind is written, up to MaxKindsPerSource kinds;
//   - repeats are counted, and when the interval ends each source with
//     repeats gets one `suppressed` line with the count per kind;
//   - at most MaxLines first events and MaxLines summaries are written per
//     interval across all sources (sources beyond that are counted together
//     under OverflowSource, summed up in one more line);
//   - Record never blocks and never waits for the log: lines are written by
//     the Aggregator's own goroutine, at least MinGap apart, so a login or a
//     view start contends with at most one hostile line (one fsync) for the
//     log's lock, and rarely with any.
//
// So one source adds at most MaxKindsPerSource+1 lines per interval, and
// all sources together at most 2*MaxLines+1.
type Aggregator struct {
	// Log receives the lines. Required.
	Log Appender
	// Interval is the aggregation period (default one minute).
	Interval time.Duration
	// MaxKindsPerSource bounds the first events written per source and
	// interval (default 4).
	MaxKindsPerSource int
	// MaxLines bounds the first events written per interval across all
	// sources, and the sources tracked (default 120).
	MaxLines int
	// MinGap spaces the hostile lines written (default 10 ms: at most 100
	// a second).
	MinGap time.Duration
	// Logger receives write failures (nil = slog.Default()).
	Logger *slog.Logger

	mu        sync.Mutex
	sources   map[string]*aggSource
	lines     int // first events queued this interval
	queue     chan Event
	flushReq  chan chan struct{}
	stop      chan struct{}
	done      chan struct{}
	written   uint64
	suppCount uint64
	closed    bool
	began     time.Time
}

type aggSource struct {
	written    []string       // kinds written this interval
	suppressed map[string]int // kind -> repeats not written
	total      int
	sample     Event // camera/remote/protocol for the summary line
	sources    int   // OverflowSource only: distinct sources folded in
	seen       map[string]struct{}
}

// Initialize checks the configuration and starts the writer.
func (a *Aggregator) Initialize() error {
	if a.Log == nil {
		return errors.New("audit aggregator: no log")
	}
	if a.Interval <= 0 {
		a.Interval = DefaultAggregateInterval
	}
	if a.MaxKindsPerSource <= 0 {
		a.MaxKindsPerSource = DefaultMaxKindsPerSource
	}
	if a.MaxLines <= 0 {
		a.MaxLines = DefaultMaxLinesPerInterval
	}
	if a.MinGap <= 0 {
		a.MinGap = 10 * time.Millisecond
	}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	a.sources = map[string]*aggSource{}
	a.queue = make(chan Event, a.MaxLines+16)
	a.flushReq = make(chan chan struct{})
	a.stop = make(chan struct{})
	a.done = make(chan struct{})
	a.began = time.Now()
	go a.run()
	return nil
}

// Close writes the pending summaries and stops the writer.
func (a *Aggregator) Close() {
	a.mu.Lock()
	if a.closed || a.stop == nil {
		a.mu.Unlock()
		return
	}
	a.closed = true
	a.mu.Unlock()
	close(a.stop)
	<-a.done
}

// Record takes one hostile event. source identifies who caused it (e.g.
// "camera:gate-1", "10.0.0.7"), kind groups it in summaries (e.g.
// "login_failed", "redirect"). It never blocks.
func (a *Aggregator) Record(source, kind string, e Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.sources == nil {
		return
	}
	st := a.sources[source]
	if st == nil {
		if len(a.sources) >= a.MaxLines {
			st = a.overflowLocked(source)
		} else {
			st = &aggSource{suppressed: map[string]int{}}
			a.sources[source] = st
		}
	}
	if source != OverflowSource && st.sources == 0 && a.firstLocked(st, kind) {
		select {
		case a.queue <- e:
			st.written = append(st.written, kind)
			a.lines++
			return
		default: // the writer is behind: count it instead
		}
	}
	if st.total == 0 {
		st.sample = Event{Camera: e.Camera, Remote: e.Remote, Protocol: e.Protocol}
	}
	st.suppressed[kind]++
	st.total++
	a.suppCount++
}

func (a *Aggregator) firstLocked(st *aggSource, kind string) bool {
	if a.lines >= a.MaxLines || len(st.written) >= a.MaxKindsPerSource {
		return false
	}
	for _, k := range st.written {
		if k == kind {
			return false
		}
	}
	return true
}

func (a *Aggregator) overflowLocked(source string) *aggSource {
	st := a.sources[OverflowSource]
	if st == nil {
		st = &aggSource{suppressed: map[string]int{}, seen: map[string]struct{}{}}
		a.sources[OverflowSource] = st
	}
	if _, ok := st.seen[source]; !ok && len(st.seen) < 1<<16 {
		st.seen[source] = struct{}{}
	}
	st.sources = len(st.seen)
	return st
}

// Flush ends the current interval now (summaries are written) and waits
// until every queued line is written. For tests and shutdown.
func (a *Aggregator) Flush() {
	done := make(chan struct{})
	select {
	case a.flushReq <- done:
		<-done
	case <-a.done:
	}
}

// Stats returns how many lines were written (first events and summaries)
// and how many events were counted into summaries, since Initialize.
func (a *Aggregator) Stats() (written, suppressed uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.written, a.suppCount
}

func (a *Aggregator) run() {
	defer close(a.done)
	tick := time.NewTicker(a.Interval)
	defer tick.Stop()
	// hostile lines (first events and summaries) are paced MinGap apart, so
	// a legitimate event rarely finds one holding the log's lock, and never
	// more than one
	pace := time.NewTimer(0)
	defer pace.Stop()
	var pending []Event // summaries of ended intervals, oldest first
	ready := true
	for {
		queue := a.queue
		if !ready {
			queue = nil
		}
		if ready && len(pending) > 0 {
			select {
			case e := <-a.queue:
				a.write(e)
			default:
				a.write(pending[0])
				pending = pending[1:]
			}
			ready = false
			pace.Reset(a.MinGap)
			continue
		}
		select {
		case e := <-queue:
			a.write(e)
			ready = false
			pace.Reset(a.MinGap)
		case <-pace.C:
			ready = true
		case <-tick.C:
			pending = append(pending, a.endInterval()...)
		case done := <-a.flushReq:
			a.drain()
			a.writeAll(pending)
			a.writeAll(a.endInterval())
			pending = nil
			close(done)
		case <-a.stop:
			a.drain()
			a.writeAll(pending)
			a.writeAll(a.endInterval())
			return
		}
	}
}

func (a *Aggregator) drain() {
	for {
		select {
		case e := <-a.queue:
			a.write(e)
		default:
			return
		}
	}
}

func (a *Aggregator) writeAll(events []Event) {
	for _, e := range events {
		a.write(e)
	}
}

func (a *Aggregator) write(e Event) {
	if err := a.Log.Append(e); err != nil {
		a.Logger.Error("audit: writing a hostile event failed", "event", e.Event, "err", err)
		return
	}
	a.mu.Lock()
	a.written++
	a.mu.Unlock()
}

// endInterval starts a new interval and returns one summary per source
// with suppressed events.
func (a *Aggregator) endInterval() []Event {
	a.mu.Lock()
	sources := a.sources
	a.sources = map[string]*aggSource{}
	a.lines = 0
	span := time.Since(a.began).Round(time.Second)
	a.began = time.Now()
	a.mu.Unlock()
	names := make([]string, 0, len(sources))
	for name, st := range sources {
		if st.total > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]Event, 0, len(names))
	for _, name := range names {
		st := sources[name]
		e := st.sample
		e.Event = Suppressed
		e.Detail = summary(name, st, span)
		if name == OverflowSource {
			e.Camera, e.Remote, e.Protocol = "", "", ""
		}
		out = append(out, e)
	}
	return out
}

func summary(source string, st *aggSource, span time.Duration) string {
	kinds := make([]string, 0, len(st.suppressed))
	for k := range st.suppressed {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	if source == OverflowSource {
		fmt.Fprintf(&b, "%d more events from %d other sources suppressed in %s:", st.total, st.sources, span)
	} else {
		fmt.Fprintf(&b, "%d repeated events from %s suppressed in %s:", st.total, source, span)
	}
	for i, k := range kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %d", k, st.suppressed[k])
	}
	return b.String()
}
