// Package ingest is cordon's RTSP client side: it pulls one camera stream
// over RTSP with gortsplib (transport choice: UDP with TCP fallback, TCP,
// UDP; Basic/Digest auth; keepalives; dead-camera detection), keeps only the
// tracks sanitize.SelectTracks allows, depacketizes them into relay.Units
// and hands them to a Sink (a *relay.Stream). One Pull is one connection:
// the camera unit (package camera) owns the lifecycle around it (demand,
// linger, reconnects with backoff, state, events).
//
// Camera credentials travel only inside the URL given to gortsplib; logs
// and errors show URLs without userinfo and never the password.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"cordon/config"
	"cordon/relay"
)

// Sink receives a camera's media. *relay.Stream implements it. Calls for one
// Pull are serialized: WriteUnit is never called concurrently with itself.
type Sink interface {
	// CameraConnected is called after every successful PLAY with the kept
	// tracks; an error aborts the connection (Pull returns it).
	CameraConnected([]relay.Track) error
	// WriteUnit receives one access unit or audio frame; an error drops
	// the connection and Pull returns it.
	WriteUnit(relay.Unit) error
}

// Observer hears how one connection goes (the camera unit keeps the state).
// Calls come from Pull's goroutines and must not block for long.
type Observer interface {
	// Described: the camera's tracks were selected; dropped names the media
	// not set up ("<type>: <reason>", free of camera text).
	Described(dropped []string)
	// Playing: PLAY succeeded and the sink took the tracks.
	Playing(Connection)
	// TransportChanged: with transport auto, UDP gave way to TCP.
	TransportChanged(transport string)
}

// Connection describes a playing connection.
type Connection struct {
	Transport  string // "UDP" or "TCP"
	VideoCodec string // "" when none
	AudioCodec string
}

// Defaults of the tunables.
const (
	DefaultReadTimeout        = 10 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultUDPFallbackTimeout = 3 * time.Second
)

// Puller pulls one RTSP stream (a camera's, or another cordon node's
// re-serve of it). Set the exported fields, then Initialize; then call Pull
// once per connection, from one goroutine at a time.
type Puller struct {
	// ID is the camera id, for logs and metric labels.
	ID string
	// URL is the rtsp:// or rtsps:// URL with credentials applied. It is
	// never logged or shown.
	URL *url.URL
	// Transport is "auto" (default: UDP, falling back to TCP when no UDP
	// packet arrives), "tcp" or "udp".
	Transport string
	Logger    *slog.Logger
	Metrics   *Metrics // nil: unregistered metrics
	// Redactor cleans errors and log lines; nil: the URL's password and any
	// URL userinfo.
	Redactor *config.Redactor
	// Hostile receives the camera's violations of Limits and refused
	// redirects (optional; e.g. the audit aggregator).
	Hostile HostileEvents
	// Limits bound what the camera may send; zero fields take defaults.
	Limits Limits
	// TLSConfig verifies an rtsps:// camera (nil: the system roots, with
	// the URL's host as the server name, as gortsplib does by default).
	TLSConfig *tls.Config

	// Tunables; zero means the Default* value.
	//
	// ReadTimeout bounds every RTSP request and is gortsplib's "no data"
	// timeout. gortsplib tracks inbound data with one-second resolution, so
	// values under 2 s are raised to 2 s (they would fire spuriously).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MediaTimeout: a camera that sends no RTP on the kept tracks for this
	// long (while its connection may still carry RTCP or RTSP) is considered
	// dead. Default: ReadTimeout.
	MediaTimeout time.Duration
	// UDPFallbackTimeout: with Transport auto, switch to TCP when no UDP
	// packet arrives this long after PLAY.
	UDPFallbackTimeout time.Duration

	log *slog.Logger
	m   *cameraMetrics
	red redactor

	loggedDropped string // dropped tracks last logged (Pull's goroutine only)
}

// Initialize validates the configuration.
func (p *Puller) Initialize() error {
	if p.ID == "" {
		return errors.New("camera id is empty")
	}
	if p.URL == nil || (p.URL.Scheme != "rtsp" && p.URL.Scheme != "rtsps") || p.URL.Host == "" {
		return fmt.Errorf("camera %s: url must be an rtsp:// or rtsps:// URL with a host", p.ID)
	}
	switch p.Transport {
	case "":
		p.Transport = "auto"
	case "auto", "tcp", "udp":
	default:
		return fmt.Errorf("camera %s: transport %q: must be auto, tcp or udp", p.ID, p.Transport)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.ReadTimeout, DefaultReadTimeout)
	p.ReadTimeout = max(p.ReadTimeout, 2*time.Second)
	def(&p.MediaTimeout, p.ReadTimeout)
	def(&p.WriteTimeout, DefaultWriteTimeout)
	def(&p.UDPFallbackTimeout, DefaultUDPFallbackTimeout)
	p.Limits.setDefaults(p.ReadTimeout)
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Metrics == nil {
		p.Metrics = NewMetrics(nil)
	}
	p.log = p.Logger.With("camera", p.ID)
	p.m = p.Metrics.forCamera(p.ID)
	p.red = redactor{redactorFor(p.Redactor, p.URL)}
	return nil
}

// SafeURL is the URL without credentials or credential-like parameters.
func (p *Puller) SafeURL() string { return config.SafeURL(p.URL.String()) }

// wrap redacts an error of this camera's connection.
func (p *Puller) wrap(err error) error { return p.red.wrap(err) }

// stopped returns why ctx ended, for a Pull cut short by its owner.
func stopped(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return context.Canceled
}
