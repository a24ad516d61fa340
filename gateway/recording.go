package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"cordon/api"
	"cordon/camera"
	"cordon/config"
	"cordon/record"
	"cordon/relay"
)

// RecorderAttachment is the name under which a camera unit holds its
// recorder attachment (*Recording).
const RecorderAttachment = "recorder"

// initRecording starts the recorder and the exporter when recording.path
// is set: every index is loaded and what a crash left is repaired before
// any camera starts. Cameras are attached by attachRecorders.
func (g *Gateway) initRecording() error {
	rc := g.Config.Recording
	if rc.Path == "" {
		return nil
	}
	g.recorder = &record.Recorder{
		Path:         rc.Path,
		Retain:       rc.RetainDuration(),
		MaxDiskBytes: rc.MaxDiskBytes(),
		Auditor:      record.AuditLog{Trail: g.audit},
		Metrics:      record.NewMetrics(g.reg),
		Log:          g.Logger.With("component", "record"),
	}
	if err := g.recorder.Initialize(); err != nil {
		g.recorder = nil
		return fmt.Errorf("recording.path: %w", err)
	}
	g.exporter = &record.Exporter{
		Recorder: g.recorder,
		StateDir: g.Config.StateDir,
		Node:     nodeName(g.Config),
		Version:  g.Version,
	}
	if err := g.exporter.Initialize(); err != nil {
		return fmt.Errorf("recording: exports: %w", err)
	}
	// create the signing key now: its fingerprint is on the admin API and
	// a state_dir that cannot hold it is a start-up error, not an export's
	if _, err := g.exporter.Key(); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	return nil
}

// nodeName is the manifest's "node": the cluster node id, else the host
// name.
func nodeName(cfg *config.Config) string {
	if cfg.Cluster.NodeID != "" {
		return cfg.Cluster.NodeID
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "cordon"
}

// attachRecorders gives every camera unit its recorder attachment (after
// each registry Apply); the attachment follows the camera's `record`
// setting on every reload.
func (g *Gateway) attachRecorders() {
	if g.recorder == nil {
		return
	}
	for _, u := range g.cameras.Units() {
		if u.Attachment(RecorderAttachment) != nil {
			continue
		}
		a := &Recording{rec: g.recorder, id: u.ID(), stream: mainStream(u), local: true,
			log: g.Logger.With("component", "record", "camera", u.ID())}
		u.Attach(RecorderAttachment, a)
		a.Reload(u.Current())
	}
}

// applyRecording applies a reloaded recording section: retention at once;
// a changed path needs a restart.
func (g *Gateway) applyRecording(old, cfg *config.Config) {
	if old.Recording.Path != cfg.Recording.Path {
		what := "recording continues in the running path"
		if g.recorder == nil {
			what = "recording stays off"
		}
		g.Logger.Warn("recording.path changes need a restart; until then "+what, "running", old.Recording.Path, "configured", cfg.Recording.Path)
	}
	if g.recorder == nil {
		return
	}
	g.recorder.SetRetention(cfg.Recording.RetainDuration(), cfg.Recording.MaxDiskBytes())
	g.attachRecorders()
}

// closeRecording stops every camera's recording (closing their segments)
// after the cameras stopped.
func (g *Gateway) closeRecording() {
	if g.recorder != nil {
		g.recorder.Close()
	}
}

// Recording is one camera's recorder attachment: it records the unit's main
// stream while the camera has `record: true` and this node pulls the camera
// itself (SetLocal; a cluster node relaying a camera another node owns
// does not record it: the owner does).
type Recording struct {
	rec    *record.Recorder
	id     string
	stream func() *relay.Stream // the camera's main stream now (nil: none)
	log    *slog.Logger

	mu      sync.Mutex
	want    bool // the camera's `record`
	local   bool // this node owns (pulls) the camera
	closed  bool
	running bool
}

// Reload follows the camera's `record` setting.
func (a *Recording) Reload(c config.Camera) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.want = c.Record
	a.applyLocked()
}

// SetLocal tells whether this node pulls the camera itself (true on a
// single node; in a cluster, true while this node owns the camera).
func (a *Recording) SetLocal(local bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.local = local
	a.applyLocked()
}

// Active reports whether the camera is being recorded here.
func (a *Recording) Active() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running
}

// Close stops recording (the unit closed: camera removed or shutdown).
func (a *Recording) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.applyLocked()
}

func (a *Recording) applyLocked() {
	should := a.want && a.local && !a.closed
	id := a.id
	switch {
	case should && !a.running:
		if err := a.rec.StartCamera(id, streamSource{stream: a.stream}); err != nil {
			a.log.Error("cannot start recording", "err", err)
			return
		}
		a.running = true
		a.log.Info("recording started")
	case !should && a.running:
		a.rec.StopCamera(id) // closes and indexes the open segment
		a.running = false
		a.log.Info("recording stopped")
	}
}

// streamSource is record.Source over a camera unit's main stream: each
// Open attaches a relay reader that keeps an on-demand camera pulled but
// is not counted as a viewer. Its queue is the relay's bounded one: a
// recorder that falls behind loses frames (counted as dropped for the
// "record" consumer) and resumes at the next keyframe; it never slows the
// live stream.
type streamSource struct{ stream func() *relay.Stream }

// mainStream returns a unit's main stream as it is at each call.
func mainStream(u *camera.Unit) func() *relay.Stream {
	return func() *relay.Stream { return u.Stream("") }
}

var errNoStream = errors.New("the camera has no stream (stopped)")

func (s streamSource) Open(ctx context.Context) (record.Feed, error) {
	st := s.stream()
	if st == nil {
		return nil, errNoStream
	}
	// AU: the recorder stores access units; the relay rebuilds the video
	// NAL units from the packets for this reader only
	r, err := st.AddReader(relay.ReaderConf{Consumer: "record", AU: true})
	if err != nil {
		return nil, err
	}
	out, err := r.WaitReady(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	tracks := make([]record.Track, len(out))
	for i, t := range out {
		tracks[i] = record.Track{
			Codec:     record.Codec(string(t.Codec)),
			ClockRate: t.ClockRate,
			Channels:  t.Channels,
			ParamSets: t.ParamSets,
			AACConfig: t.AACConfig,
		}
	}
	return &streamFeed{r: r, tracks: tracks}, nil
}

// streamFeed is one reader's worth of a camera stream. The relay keeps a
// reader across camera reconnects with the same codecs (its timeline then
// jumps by the time the camera was away, which the recorder turns into a
// new span); different codecs end the reader (ErrTracksChanged) and the
// recorder opens a new feed.
type streamFeed struct {
	r      *relay.Reader
	tracks []record.Track
}

func (f *streamFeed) Tracks() []record.Track { return f.tracks }

// Next returns the next access unit. The relay's AU (video: depacketized
// for this reader into a buffer it never reuses; audio: shared and never
// modified after it is built) stays valid after the next call, so the
// recorder keeps a reference (for the second or so until its fragment is
// written) instead of a copy. A video frame the relay cannot read back
// from its packets is dropped for this reader and counted with its
// drops. Streams with B-frames carry their decode times (DTS <= PTS,
// forward in delivery order); the recorder writes them with their
// presentation offsets.
func (f *streamFeed) Next(ctx context.Context) (record.Sample, error) {
	d, err := f.r.Next(ctx)
	if err != nil {
		return record.Sample{}, err
	}
	return record.Sample{Track: d.Track, Key: d.Key, PTS: d.PTS, DTS: d.DTS, Data: d.AU}, nil
}

func (f *streamFeed) Close() { f.r.Close() }

// startRecorders is the Initialize step after the cameras started.
func (g *Gateway) startRecorders() error {
	g.attachRecorders()
	return nil
}

// registerRecordings mounts the recording and export routes.
func (g *Gateway) registerRecordings(mux *http.ServeMux) {
	rr := &api.Recordings{Auth: g.auth, Cameras: recCameras{g}, Recorder: g.recorder, Exporter: g.exporter,
		Audit: g, Log: g.Logger.With("component", "record")}
	rr.Recording = func(id string) bool {
		u := g.cameras.Get(id)
		if u == nil {
			return false
		}
		a, ok := u.Attachment(RecorderAttachment).(*Recording)
		return ok && a.Active()
	}
	rr.Register(mux)
}

// recCameras names the configured cameras for the recording API.
type recCameras struct{ g *Gateway }

func (c recCameras) CameraName(id string) (string, bool) {
	u := c.g.cameras.Get(id)
	if u == nil {
		return "", false
	}
	cfg := u.Current()
	if cfg.Name == "" {
		return cfg.ID, true
	}
	return cfg.Name, true
}

func (c recCameras) CameraIDs() []string {
	units := c.g.cameras.Units()
	out := make([]string, 0, len(units))
	for _, u := range units {
		out = append(out, u.ID())
	}
	return out
}
