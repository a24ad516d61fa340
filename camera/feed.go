package camera

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"cordon/ingest"
	"cordon/internal/clock"
	"cordon/relay"
)

// feed is one stream of a camera with its source and the lifecycle around
// it: demand and linger, reconnects with backoff, state, events. It
// implements relay.Demand for its stream and ingest.Observer for its source.
type feed struct {
	u      *Unit
	name   string // "" = main
	stream *relay.Stream
	source Source
	// onDemand: pull only while readers are attached (and Linger after)
	onDemand bool
	clk      clock.Clock
	log      *slog.Logger
	// main-stream series only (cordon_camera_up{camera} is per camera);
	// nil for other streams
	up         prometheus.Gauge
	reconnects prometheus.Counter

	ctx    context.Context // the feed's life: canceled by stop
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu         sync.Mutex
	wanted     bool
	demandCh   chan struct{} // cap 1: "demand changed"
	linger     clock.Timer   // running while an on-demand feed is unwanted
	pullCancel context.CancelCauseFunc
	parked     bool          // run waits for demand (an unwanted on-demand feed)
	pullDone   chan struct{} // closed when the current pull has ended
	// remote: another node pulls the camera (a cluster node that does not
	// own it); the source relays it from there only while readers want it
	remote   bool
	repullCh chan struct{} // cap 1: "skip the retry delay" (see repull)
	st       StreamState

	lastLogged string // last failure logged at warn level (run goroutine only)
}

func (u *Unit) newFeed(spec SourceSpec) (*feed, error) { return u.newFeedOn(spec, nil) }

// newFeedOn starts a feed on stream, or on a new stream when nil.
func (u *Unit) newFeedOn(spec SourceSpec, stream *relay.Stream) (*feed, error) {
	src, err := u.NewSource(spec)
	if err != nil {
		return nil, err
	}
	if stream == nil {
		stream = &relay.Stream{
			Camera:   spec.Camera.ID,
			Name:     spec.Stream,
			Sanitize: u.Sanitize,
			Clock:    u.Clock,
			Metrics:  u.RelayMetrics,
			Log:      u.Logger,
		}
		if err := stream.Initialize(); err != nil {
			return nil, err
		}
		if u.Hub != nil {
			u.Hub.Put(stream)
		}
	}
	f := &feed{u: u, name: spec.Stream, stream: stream, source: src, onDemand: spec.Camera.OnDemand, clk: u.Clock, log: u.log,
		demandCh: make(chan struct{}, 1), repullCh: make(chan struct{}, 1), done: make(chan struct{}), remote: u.remote}
	if spec.Stream != "" {
		f.log = f.log.With("stream", spec.Stream)
	} else {
		f.up = u.Metrics.up.WithLabelValues(spec.Camera.ID)
		f.reconnects = u.Metrics.reconnects.WithLabelValues(spec.Camera.ID)
		f.up.Set(0)
	}
	f.ctx, f.cancel = context.WithCancelCause(context.Background())
	stream.SetDemand(f) // tells the feed whether readers are attached now
	go f.run()
	return f, nil
}

// stop ends the source (the stream stays, with its readers) and waits.
func (f *feed) stop() {
	f.cancel(ErrStopped)
	<-f.done
	f.mu.Lock()
	if f.linger != nil {
		f.linger.Stop()
		f.linger = nil
	}
	f.mu.Unlock()
}

// close stops the source and closes the stream: its readers end.
func (f *feed) close() {
	f.stop()
	if f.u.Hub != nil {
		f.u.Hub.RemoveStream(f.stream)
	}
	f.stream.Close()
}

// SetDemand implements relay.Demand: it never blocks and never calls back.
// Losing the last reader starts the linger; when it runs out with nobody
// back, the pull stops. Demand matters to on-demand cameras only.
func (f *feed) SetDemand(wanted bool) {
	f.mu.Lock()
	f.wanted = wanted
	switch {
	case wanted && f.linger != nil:
		f.linger.Stop()
		f.linger = nil
	case !wanted && f.demandOnly() && f.linger == nil && f.ctx.Err() == nil:
		f.linger = f.clk.AfterFunc(f.u.Linger, f.idle)
	}
	f.mu.Unlock()
	select {
	case f.demandCh <- struct{}{}:
	default: // a notification is already pending; the loop reads f.wanted
	}
}

// idle runs when the linger ran out.
func (f *feed) idle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linger = nil
	if !f.wanted && f.pullCancel != nil {
		f.pullCancel(ErrIdle)
	}
}

// run is the feed's only long-lived goroutine: pull, and on failure retry
// after a doubling, capped, jittered delay; an on-demand feed pulls only
// while wanted.
func (f *feed) run() {
	defer close(f.done)
	bo := backoff{min: f.u.BackoffMin, max: f.u.BackoffMax}
	retry := false
	for {
		ctx, ok := f.nextPull()
		if !ok {
			return
		}
		if retry {
			if f.reconnects != nil {
				f.reconnects.Inc()
			}
			f.update(func(s *StreamState) { s.Reconnects++ })
		}
		online, err := f.pull(ctx)
		if errors.Is(err, ErrStopped) || f.ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrIdle) || errors.Is(err, errRepull) {
			retry, f.lastLogged = false, ""
			bo.reset()
			continue
		}
		if online >= f.u.HealthyAfter {
			bo.reset()
		}
		delay := jitter(bo.next())
		retry = true
		if online > 0 {
			f.lastLogged = "" // log the next failure again
		}
		f.log.Debug("camera retry scheduled", "retry_in", delay.Round(time.Millisecond).String())
		t := f.clk.NewTimer(delay)
		select {
		case <-t.C():
		case <-f.repullCh: // the source's upstream changed: try it now
			t.Stop()
			retry = false
			bo.reset()
		case <-f.ctx.Done():
			t.Stop()
			return
		}
	}
}

// nextPull waits until the feed should pull (at once unless on demand and
// unwanted) and returns the pull's context; false when the feed stopped.
func (f *feed) nextPull() (context.Context, bool) {
	for {
		f.mu.Lock()
		if f.ctx.Err() != nil {
			f.mu.Unlock()
			return nil, false
		}
		if !f.demandOnly() || f.wanted {
			ctx, cancel := context.WithCancelCause(f.ctx)
			f.pullCancel, f.parked, f.pullDone = cancel, false, make(chan struct{})
			select { // a repull asked for before this pull is moot
			case <-f.repullCh:
			default:
			}
			f.mu.Unlock()
			return ctx, true
		}
		f.parked = true
		f.mu.Unlock()
		select {
		case <-f.demandCh:
		case <-f.ctx.Done():
			return nil, false
		}
	}
}

// pull runs one connection and returns how long it was online (0: never)
// and why it ended.
func (f *feed) pull(ctx context.Context) (time.Duration, error) {
	obs := &observer{f: f}
	err := f.source.Pull(ctx, f.stream, obs)
	if ctx.Err() != nil && !errors.Is(err, ErrIdle) && !errors.Is(err, ErrStopped) {
		err = context.Cause(ctx) // a source that did not report the cause
	}
	if err == nil {
		err = errors.New("the camera connection ended")
	}
	switched := errors.Is(err, errRepull)
	intentional := errors.Is(err, ErrIdle) || errors.Is(err, ErrStopped) || switched
	defer func() {
		f.mu.Lock()
		f.pullCancel(nil)
		f.pullCancel = nil
		close(f.pullDone)
		f.mu.Unlock()
	}()
	if !obs.playing {
		if !intentional {
			f.fail(err)
		}
		return 0, err
	}
	online := f.clk.Now().Sub(obs.since)
	f.update(func(s *StreamState) {
		s.Online, s.Since, s.Transport = false, f.clk.Now(), ""
		s.LastError = ""
		if !intentional {
			s.LastError = err.Error()
		}
	})
	if f.up != nil {
		f.up.Set(0)
	}
	if intentional {
		f.stream.CameraDisconnected(nil)
	} else {
		f.stream.CameraDisconnected(err)
	}
	if f.u.Events != nil && f.name == "" && !switched {
		f.u.Events.CameraOffline(f.u.id, err)
	}
	if intentional {
		f.log.Info("camera offline", "reason", err.Error(), "online_for", online.Round(time.Second).String())
	} else {
		f.log.Warn("camera offline", "err", err.Error(), "online_for", online.Round(time.Second).String())
	}
	return online, err
}

// fail records a connection attempt that did not get online. Repeated
// identical failures are logged at debug level only.
func (f *feed) fail(err error) {
	if msg := err.Error(); msg != f.lastLogged {
		f.log.Warn("camera connection failed", "err", msg)
		f.lastLogged = msg
	} else {
		f.log.Debug("camera connection failed", "err", msg)
	}
	f.update(func(s *StreamState) {
		s.LastError = err.Error()
		if s.Since.IsZero() {
			s.Since = f.clk.Now()
		}
	})
	f.stream.CameraDisconnected(err)
}

// waitingForDemand reports whether the feed is parked until a reader
// arrives.
func (f *feed) waitingForDemand() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parked
}

func (f *feed) update(fn func(*StreamState)) {
	f.mu.Lock()
	fn(&f.st)
	f.mu.Unlock()
}

// state is the feed's state with its stream's viewers.
func (f *feed) state() StreamState {
	f.mu.Lock()
	s := f.st
	f.mu.Unlock()
	s.DroppedTracks = slices.Clone(s.DroppedTracks)
	in := f.stream.Info()
	s.Readers = maps.Clone(in.Readers)
	s.Viewers = in.Viewers()
	return s
}

// observer is one pull's ingest.Observer.
type observer struct {
	f       *feed
	playing bool // only written by Pull's calls, read after it returns
	since   time.Time
}

func (o *observer) Described(dropped []string) {
	o.f.update(func(s *StreamState) { s.DroppedTracks = dropped })
}

func (o *observer) Playing(c ingest.Connection) {
	f := o.f
	o.playing, o.since = true, f.clk.Now()
	f.update(func(s *StreamState) {
		s.Online, s.Since, s.LastError, s.Transport = true, o.since, "", c.Transport
		s.VideoCodec, s.AudioCodec = c.VideoCodec, c.AudioCodec
	})
	if f.up != nil {
		f.up.Set(1)
	}
	f.log.Info("camera online", "transport", c.Transport, "video", c.VideoCodec, "audio", c.AudioCodec)
	if f.u.Events != nil && f.name == "" {
		f.u.Events.CameraOnline(f.u.id)
	}
	if f.u.Connected != nil && f.name == "" {
		f.u.Connected(f.u.id)
	}
}

func (o *observer) TransportChanged(tr string) {
	o.f.update(func(s *StreamState) { s.Transport = tr })
}
