// Package camera is the one owner of each configured camera: a Unit holds
// the camera's config, its relay stream(s) (main, and the sub stream of
// cameras[].sub_url), the source feeding each stream (ingest's puller
// today, a cluster node's relay later), demand and linger for on-demand cameras, and the camera's
// single state (online, codecs, last error, reconnects, viewers). Reload
// applies a changed config without dropping viewers; a Registry holds the
// units of a config. What hangs off a camera (a PTZ controller, a
// recorder's bookkeeping) attaches to its Unit. The package has no other
// home: ingest is one connection, relay one stream, gateway only wires.
package camera

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"cordon/config"
	"cordon/ingest"
	"cordon/internal/clock"
	"cordon/relay"
	"cordon/relay/sanitize"
)

// Reasons a connection ends that are not camera failures (the cause a
// Source sees on its context).
var (
	// ErrIdle: an on-demand camera stopped pulling because nobody watched.
	ErrIdle = errors.New("on-demand camera stopped: no viewers")
	// ErrStopped: the camera was closed (shutdown or configuration change).
	ErrStopped = errors.New("camera stopped")
)

// Defaults of the tunables.
const (
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultHealthyAfter = time.Minute
	DefaultLinger       = 10 * time.Second
)

// Events receives camera online/offline transitions (for the audit log).
// Calls are made from the camera's goroutines and should not block for long.
type Events interface {
	CameraOnline(id string)
	// CameraOffline is called when a camera that was online goes offline;
	// err is redacted and may be ErrIdle or ErrStopped.
	CameraOffline(id string, err error)
}

// Attachment is something that lives as long as a camera unit and follows
// its config: a PTZ controller (issue 14: built from cameras[].onvif and
// attached under "ptz", then found by the PTZ API with Unit.Attachment), a
// recorder's per-camera state, a hardening watcher. Reload is called after
// every config change of the camera; Close when the unit closes.
type Attachment interface {
	Reload(config.Camera)
	Close()
}

// Unit owns one camera. Set the exported fields, then Initialize; Close
// stops it. Reload applies a new config of the same camera id.
type Unit struct {
	Config config.Camera
	// Hub is where the unit registers its streams for the outputs
	// (optional).
	Hub      *relay.Hub
	Sanitize sanitize.Options
	// NewSource builds each stream's source; nil = ingest's RTSP puller
	// (with IngestMetrics and Redactor).
	NewSource SourceFactory
	Events    Events // optional
	// Connected, when set, is called after each connect of the camera's
	// main stream (every PLAY answered), from the connection's goroutine;
	// it must not block (e.g. the hardening watcher's check at connect).
	Connected func(id string)
	// Hostile receives the default puller's reports of a camera breaking
	// its bounds (refused redirects, limits), e.g. the audit aggregator.
	Hostile  ingest.HostileEvents
	Logger   *slog.Logger
	Redactor *config.Redactor // nil: each puller redacts its own URL's secrets
	Clock    clock.Clock      // nil: wall clock

	Metrics       *Metrics        // nil: unregistered
	RelayMetrics  *relay.Metrics  // nil: unregistered
	IngestMetrics *ingest.Metrics // nil: unregistered

	// Tunables; zero means the Default* value.
	BackoffMin   time.Duration // first retry delay
	BackoffMax   time.Duration // retry delay cap
	HealthyAfter time.Duration // a connection up this long resets the backoff
	Linger       time.Duration // on-demand: keep pulling this long after the last reader

	// Remote starts the unit as a relay of another node's pull (a cluster
	// node until it owns the camera): see SetLocal.
	Remote bool

	log *slog.Logger
	id  string // Config.ID, which never changes: read without the lock

	localMu     sync.Mutex // serializes SetLocal
	mu          sync.Mutex
	closed      bool
	remote      bool    // see SetLocal
	feeds       []*feed // main first
	attachments map[string]Attachment
}

// Initialize creates the camera's streams and starts their sources (an
// on-demand camera waits for its first reader).
func (u *Unit) Initialize() error {
	if u.Config.ID == "" {
		return errors.New("camera: id is empty")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&u.BackoffMin, DefaultBackoffMin)
	def(&u.BackoffMax, DefaultBackoffMax)
	def(&u.HealthyAfter, DefaultHealthyAfter)
	def(&u.Linger, DefaultLinger)
	u.BackoffMax = max(u.BackoffMax, u.BackoffMin)
	u.Clock = clock.Or(u.Clock)
	if u.Logger == nil {
		u.Logger = slog.Default()
	}
	if u.Metrics == nil {
		u.Metrics = NewMetrics(nil)
	}
	if u.RelayMetrics == nil {
		u.RelayMetrics = relay.NewMetrics(nil)
	}
	if u.IngestMetrics == nil {
		u.IngestMetrics = ingest.NewMetrics(nil)
	}
	if u.NewSource == nil {
		u.NewSource = u.pullerSource
	}
	u.id = u.Config.ID
	u.log = u.Logger.With("camera", u.Config.ID)
	u.attachments = map[string]Attachment{}
	u.remote = u.Remote
	specs, err := streamSpecs(u.Config)
	if err != nil {
		return err
	}
	for _, spec := range specs {
		f, err := u.newFeed(spec)
		if err != nil {
			u.Close()
			return err
		}
		u.feeds = append(u.feeds, f)
	}
	u.log.Info("camera configured", "url", u.Config.SafeURL(), "transport", u.Config.Transport, "on_demand", u.Config.OnDemand)
	return nil
}

// pullerSource is the default SourceFactory: ingest's RTSP puller, bounded
// by the camera's limits.
func (u *Unit) pullerSource(spec SourceSpec) (Source, error) {
	p := &ingest.Puller{
		ID:        spec.Camera.ID,
		URL:       spec.URL,
		Transport: spec.Camera.Transport,
		Logger:    u.Logger,
		Metrics:   u.IngestMetrics,
		Redactor:  u.Redactor,
		Hostile:   u.Hostile,
		Limits:    ingest.Limits{MaxBitrate: spec.Camera.MaxBitrate()},
	}
	if err := p.Initialize(); err != nil {
		return nil, err
	}
	return p, nil
}

// ID is the camera id.
func (u *Unit) ID() string {
	if u.id != "" {
		return u.id
	}
	return u.Config.ID // before Initialize
}

// Current returns the camera's current config.
func (u *Unit) Current() config.Camera {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.Config
}

// Stream returns the named stream ("" = main), nil when the camera has none
// by that name.
func (u *Unit) Stream(name string) *relay.Stream {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, f := range u.feeds {
		if f.name == name {
			return f.stream
		}
	}
	return nil
}

// Reload applies a new config of the same camera. A change that affects
// pulling (URL, credentials, transport, on_demand) restarts the sources;
// the streams stay, so viewers stay attached and resume. Attachments are
// told every change.
func (u *Unit) Reload(c config.Camera) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return ErrStopped
	}
	if c.ID != u.Config.ID {
		u.mu.Unlock()
		return fmt.Errorf("camera %s: reload with the config of %s", u.Config.ID, c.ID)
	}
	old := u.Config
	u.Config = c
	atts := u.attachmentList()
	u.mu.Unlock()
	var err error
	if !pullSettingsEqual(old, c) {
		err = u.restart(c)
		u.log.Info("camera reconfigured", "url", c.SafeURL(), "transport", c.Transport, "on_demand", c.OnDemand)
	}
	for _, a := range atts {
		a.Reload(c)
	}
	return err
}

// restart replaces every stream's source; streams named in the new config
// keep their readers, others close.
func (u *Unit) restart(c config.Camera) error {
	specs, err := streamSpecs(c)
	if err != nil {
		return err
	}
	u.mu.Lock()
	old := u.feeds
	u.feeds = nil
	u.mu.Unlock()
	var errs []error
	var feeds []*feed
	for _, spec := range specs {
		var keep *relay.Stream
		for i, f := range old {
			if f != nil && f.name == spec.Stream {
				f.stop()
				keep, old[i] = f.stream, nil
			}
		}
		f, err := u.newFeedOn(spec, keep)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		feeds = append(feeds, f)
	}
	for _, f := range old {
		if f != nil {
			f.close()
		}
	}
	u.mu.Lock()
	u.feeds = feeds
	u.mu.Unlock()
	return errors.Join(errs...)
}

// SetSanitize applies new sanitizer options to every stream.
func (u *Unit) SetSanitize(opts sanitize.Options) {
	u.mu.Lock()
	u.Sanitize = opts
	feeds := slices.Clone(u.feeds)
	u.mu.Unlock()
	for _, f := range feeds {
		f.stream.SetSanitize(opts)
	}
}

// Attach hangs a (PTZ controller, ...) off the camera under name,
// replacing (and closing) any previous one. A LocalAware attachment is
// told at once whether the unit is local.
func (u *Unit) Attach(name string, a Attachment) {
	u.localMu.Lock()
	defer u.localMu.Unlock()
	u.mu.Lock()
	prev := u.attachments[name]
	closed, local := u.closed, !u.remote
	if !closed {
		u.attachments[name] = a
	}
	u.mu.Unlock()
	if prev != nil {
		prev.Close()
	}
	if closed {
		a.Close()
		return
	}
	if la, ok := a.(LocalAware); ok {
		la.SetLocal(local)
	}
}

// Detach removes (and closes) what is attached under name, if anything.
func (u *Unit) Detach(name string) {
	u.mu.Lock()
	prev := u.attachments[name]
	delete(u.attachments, name)
	u.mu.Unlock()
	if prev != nil {
		prev.Close()
	}
}

// Attachment returns what is attached under name, or nil.
func (u *Unit) Attachment(name string) Attachment {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.attachments[name]
}

func (u *Unit) attachmentList() []Attachment {
	out := make([]Attachment, 0, len(u.attachments))
	for _, a := range u.attachments {
		out = append(out, a)
	}
	return out
}

// Close stops the sources, ends every reader and closes the attachments.
func (u *Unit) Close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	feeds := u.feeds
	u.feeds = nil
	atts := u.attachmentList()
	u.attachments = map[string]Attachment{}
	u.mu.Unlock()
	for _, f := range feeds {
		f.close()
	}
	for _, a := range atts {
		a.Close()
	}
}

// StreamState is the state of one stream of a camera.
type StreamState struct {
	Online     bool
	LastError  string // redacted: never credentials
	Reconnects uint64
	// Transport is "UDP" or "TCP" while online.
	Transport  string
	VideoCodec string
	AudioCodec string
	// Since is when Online last changed (zero before the first attempt ends).
	Since time.Time
	// DroppedTracks names the camera tracks not set up, as "type: reason".
	DroppedTracks []string
	// Viewers counts attached viewers, all protocols; Readers by protocol.
	Viewers int
	Readers map[string]int
}

// State is a camera's one state: its main stream's, and each other
// stream's by name.
type State struct {
	StreamState
	Streams map[string]StreamState // other than main ("sub")
}

// State returns a snapshot of the camera's state.
func (u *Unit) State() State {
	u.mu.Lock()
	feeds := slices.Clone(u.feeds)
	u.mu.Unlock()
	var st State
	for _, f := range feeds {
		s := f.state()
		if f.name == "" {
			st.StreamState = s
			continue
		}
		if st.Streams == nil {
			st.Streams = map[string]StreamState{}
		}
		st.Streams[f.name] = s
	}
	return st
}
