// Package ingest pulls cameras over RTSP with gortsplib: transport choice
// (UDP with TCP fallback, TCP, UDP), Basic/Digest auth, keepalives,
// dead-camera detection, reconnects with exponential backoff and jitter, and
// on-demand pulling. It keeps only the tracks cordon can re-serve (first
// H.264/H.265 video, first PCMU/PCMA/Opus/AAC audio), depacketizes them into
// relay.Units and hands them to a Sink (a *relay.Stream).
//
// Camera credentials travel only inside the URL given to gortsplib; logs,
// errors and State show URLs without userinfo and never the password.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"time"

	"cordon/relay"
)

// Sink receives a camera's media. *relay.Stream implements it. Calls for one
// camera are serialized: WriteUnit is never called concurrently with itself.
type Sink interface {
	// CameraConnected is called after every successful PLAY with the kept
	// tracks; an error aborts the connection (it is the camera's last error).
	CameraConnected([]relay.Track) error
	// WriteUnit receives one access unit or audio frame; an error (e.g.
	// relay.ErrBFrames) drops the connection and becomes the last error.
	WriteUnit(relay.Unit) error
	// CameraDisconnected is called when a connection ends, and also after a
	// failed connection attempt so the sink knows why the camera is
	// unreachable. The error is redacted (no credentials); it is nil when
	// the stop was intentional (on-demand idle, Close).
	CameraDisconnected(error)
}

// Events receives camera online/offline transitions (for the audit log).
// Calls are made from the camera's goroutine and should not block for long.
type Events interface {
	CameraOnline(id string)
	// CameraOffline is called when a camera that was online goes offline;
	// err is redacted and may be ErrIdle or ErrStopped.
	CameraOffline(id string, err error)
}

// Reasons a connection ends that are not camera failures.
var (
	// ErrIdle: an on-demand camera stopped pulling because nobody watched.
	ErrIdle = errors.New("on-demand camera stopped: no viewers")
	// ErrStopped: the camera was closed (shutdown or configuration change).
	ErrStopped = errors.New("camera stopped")
)

// Defaults of the tunables.
const (
	DefaultBackoffMin         = 500 * time.Millisecond
	DefaultBackoffMax         = 30 * time.Second
	DefaultHealthyAfter       = time.Minute
	DefaultLinger             = 10 * time.Second
	DefaultReadTimeout        = 10 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultUDPFallbackTimeout = 3 * time.Second
)

// CameraState is a snapshot of one camera's ingest state.
type CameraState struct {
	Online     bool
	LastError  string // redacted: never credentials
	Reconnects uint64
	// Transport is "UDP" or "TCP" while online.
	Transport  string
	VideoCodec string
	AudioCodec string
	// Since is when Online last changed (zero before the first attempt ends).
	Since time.Time
	// DroppedTracks names the camera tracks not set up, as "type/codec".
	DroppedTracks []string
}

// Camera pulls one camera. Set the exported fields, then Initialize; Close
// stops it. It implements relay.Demand (SetDemand).
type Camera struct {
	ID string
	// URL is the camera's rtsp:// or rtsps:// URL with credentials applied.
	// It is never logged or shown.
	URL *url.URL
	// Transport is "auto" (default: UDP, falling back to TCP when no UDP
	// packet arrives), "tcp" or "udp".
	Transport string
	// OnDemand pulls only while SetDemand(true) is in effect, and stops
	// Linger after SetDemand(false).
	OnDemand bool
	Sink     Sink
	Logger   *slog.Logger
	Metrics  *Metrics // nil: unregistered metrics
	Events   Events   // optional
	// Hostile receives the camera's violations of Limits and refused
	// redirects (optional; e.g. the audit aggregator).
	Hostile HostileEvents
	// Limits bound what the camera may send; zero fields take defaults.
	Limits Limits
	// TLSConfig verifies an rtsps:// camera (nil: the system roots, with
	// the URL's host as the server name, as gortsplib does by default).
	TLSConfig *tls.Config

	// Tunables; zero means the Default* value.
	BackoffMin   time.Duration // first retry delay
	BackoffMax   time.Duration // retry delay cap
	HealthyAfter time.Duration // a connection up this long resets the backoff
	Linger       time.Duration // on-demand: keep pulling this long after the last viewer
	// ReadTimeout bounds every RTSP request and is gortsplib's "no data"
	// timeout. gortsplib tracks inbound data with one-second resolution, so
	// values under 2 s are raised to 2 s (they would fire spuriously).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MediaTimeout: a camera that sends no RTP on the kept tracks for this
	// long (while its connection may still carry RTCP or RTSP) is considered
	// dead and reconnected. Default: ReadTimeout.
	MediaTimeout time.Duration
	// UDPFallbackTimeout: with Transport auto, switch to TCP when no UDP
	// packet arrives this long after PLAY.
	UDPFallbackTimeout time.Duration

	log    *slog.Logger
	m      *cameraMetrics
	red    redactor
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	demandMu sync.Mutex
	wanted   bool
	demandCh chan struct{} // cap 1: "demand changed"

	stateMu sync.Mutex
	state   CameraState

	// run goroutine only
	lastLogged    string // last failure logged at warn level
	loggedDropped string // dropped tracks last logged
}

// Initialize validates the configuration and starts pulling (or, on demand,
// waiting for demand).
func (c *Camera) Initialize() error {
	if c.ID == "" {
		return errors.New("camera id is empty")
	}
	if c.URL == nil || (c.URL.Scheme != "rtsp" && c.URL.Scheme != "rtsps") || c.URL.Host == "" {
		return fmt.Errorf("camera %s: url must be an rtsp:// or rtsps:// URL with a host", c.ID)
	}
	switch c.Transport {
	case "":
		c.Transport = "auto"
	case "auto", "tcp", "udp":
	default:
		return fmt.Errorf("camera %s: transport %q: must be auto, tcp or udp", c.ID, c.Transport)
	}
	if c.Sink == nil {
		return fmt.Errorf("camera %s: no sink", c.ID)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.HealthyAfter, DefaultHealthyAfter)
	def(&c.Linger, DefaultLinger)
	def(&c.ReadTimeout, DefaultReadTimeout)
	c.ReadTimeout = max(c.ReadTimeout, 2*time.Second)
	def(&c.MediaTimeout, c.ReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.UDPFallbackTimeout, DefaultUDPFallbackTimeout)
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	c.Limits.setDefaults(c.ReadTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	c.log = c.Logger.With("camera", c.ID)
	c.m = c.Metrics.forCamera(c.ID)
	c.m.up.Set(0)
	c.red = newRedactor(c.URL)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.done = make(chan struct{})
	c.demandMu.Lock()
	c.demandCh = make(chan struct{}, 1)
	c.demandMu.Unlock()
	c.log.Info("camera configured", "url", safeURL(c.URL), "transport", c.Transport, "on_demand", c.OnDemand)
	go c.run()
	return nil
}

// Close stops pulling and waits for every goroutine of the camera to end.
// If the camera was online, the sink gets CameraDisconnected(nil) and Events
// CameraOffline(id, ErrStopped).
func (c *Camera) Close() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
}

// SetDemand implements relay.Demand: it never blocks and never calls back.
func (c *Camera) SetDemand(wanted bool) {
	c.demandMu.Lock()
	c.wanted = wanted
	ch := c.demandCh
	c.demandMu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default: // a notification is already pending; the loop reads c.wanted
		}
	}
}

func (c *Camera) isWanted() bool {
	c.demandMu.Lock()
	defer c.demandMu.Unlock()
	return c.wanted
}

// State returns a snapshot of the camera's state.
func (c *Camera) State() CameraState {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	s := c.state
	s.DroppedTracks = slices.Clone(s.DroppedTracks)
	return s
}

func (c *Camera) updateState(f func(*CameraState)) {
	c.stateMu.Lock()
	f(&c.state)
	c.stateMu.Unlock()
}

// run is the camera's only long-lived goroutine.
func (c *Camera) run() {
	defer close(c.done)
	bo := backoff{min: c.BackoffMin, max: c.BackoffMax}
	retry := false
	for {
		if c.OnDemand && !c.waitDemand() {
			return
		}
		if retry {
			c.m.reconnects.Inc()
			c.updateState(func(s *CameraState) { s.Reconnects++ })
		}
		online, err := c.runSession()
		if errors.Is(err, ErrStopped) || c.ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrIdle) {
			retry, c.lastLogged = false, ""
			bo.reset()
			continue
		}
		if online >= c.HealthyAfter {
			bo.reset()
		}
		delay := jitter(bo.next())
		retry = true
		if online > 0 {
			c.lastLogged = "" // log the next failure again
		}
		c.log.Debug("camera retry scheduled", "retry_in", delay.Round(time.Millisecond).String())
		if !c.sleep(delay) {
			return
		}
	}
}

// backoff doubles from min to max; reset starts over.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // 0: next is min
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// jitter spreads retries of many cameras: a delay in [3/4 b, b].
func jitter(b time.Duration) time.Duration {
	q := int64(b / 4)
	if q <= 0 {
		return b
	}
	return b - time.Duration(rand.Int64N(q+1))
}

func (c *Camera) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// waitDemand blocks until someone wants the camera; false when closed.
func (c *Camera) waitDemand() bool {
	for {
		if c.isWanted() {
			return true
		}
		select {
		case <-c.demandCh:
		case <-c.ctx.Done():
			return false
		}
	}
}

// fail records a connection attempt that did not get online. Repeated
// identical failures are logged at debug level only.
func (c *Camera) fail(err error) error {
	err = c.red.wrap(err)
	if msg := err.Error(); msg != c.lastLogged {
		c.log.Warn("camera connection failed", "err", msg)
		c.lastLogged = msg
	} else {
		c.log.Debug("camera connection failed", "err", msg)
	}
	c.updateState(func(s *CameraState) {
		s.LastError = err.Error()
		if s.Since.IsZero() {
			s.Since = time.Now()
		}
	})
	c.Sink.CameraDisconnected(err)
	return err
}
