package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"cordon/relay"
	"cordon/relay/sanitize"
)

// maxEarlyUnits bounds the units buffered between PLAY and CameraConnected.
const maxEarlyUnits = 256

// trackState is one kept track of a connection. It is used only under
// session.mu.
type trackState struct {
	idx       int
	kind      relay.Kind
	clockRate int64
	media     *description.Media
	decode    func(*rtp.Packet) ([][]byte, error)
	video     bool
	// a video access unit being assembled (its RTP timestamp and PTS):
	// decoders that split units by timestamp return it on the next one.
	pending    bool
	pendingTS  uint32
	pendingPTS time.Duration
	pendingOK  bool // pendingPTS is known

	h265 bool
	// bounds (see hostile.go): bytes of the access unit being received, and
	// the previous unit's PTS
	auStarted bool
	auTS      uint32
	auBytes   int
	lastPTS   time.Duration
	havePTS   bool
}

type earlyUnit struct {
	u    relay.Unit
	kind relay.Kind
}

// session is one RTSP connection to the camera.
type session struct {
	c      *Puller
	sink   Sink
	obs    Observer
	client *gortsplib.Client

	mu         sync.Mutex // serializes depacketizing and Sink.WriteUnit
	open       bool       // CameraConnected done: write units to the sink
	early      []earlyUnit
	earlyBytes int
	failed     atomic.Bool
	sinkErr    chan error // cap 1

	// the camera's first violation of a bound (see hostile.go); faultCh is
	// closed when it is set
	fault    atomic.Pointer[Violation]
	faultCh  chan struct{}
	rate     *byteBucket
	channels channelSet // interleaved channels set up
	media    mediaGuard // under mu, except its RTCP counter

	lastPacket atomic.Int64 // unix nanoseconds of the last RTP packet on a kept track

	// media sections cut from DESCRIBE (written on the client's goroutine
	// before Describe returns)
	unparseable atomic.Int32
}

func (c *Puller) protocol() *gortsplib.Protocol {
	var p gortsplib.Protocol
	switch c.Transport {
	case "tcp":
		p = gortsplib.ProtocolTCP
	case "udp":
		p = gortsplib.ProtocolUDP
	default:
		return nil
	}
	return &p
}

// Pull connects, plays and forwards to sink until the connection ends or
// ctx is done. It returns why the connection ended: a redacted camera error
// (a bound the camera broke, see hostile.go, wins over its consequence), or
// context.Cause(ctx) when its owner stopped it. No call to sink or obs
// happens after Pull returns.
func (c *Puller) Pull(ctx context.Context, sink Sink, obs Observer) error {
	s := &session{
		c: c, sink: sink, obs: obs, sinkErr: make(chan error, 1), faultCh: make(chan struct{}),
		rate:  newByteBucket(c.Limits.MaxBitrate, c.Limits.BitrateWindow),
		media: newMediaGuard(),
	}
	s.lastPacket.Store(time.Now().UnixNano())
	client := s.newClient()
	if err := client.Start(); err != nil {
		return c.red.wrap(err)
	}
	stop := context.AfterFunc(ctx, client.Close)
	defer func() {
		stop()
		client.Close()
	}()
	tracks, sel, err := s.handshake()
	if err != nil {
		if ctx.Err() != nil {
			return stopped(ctx)
		}
		return c.red.wrap(s.cause(err))
	}
	s.lastPacket.Store(time.Now().UnixNano())
	if err := sink.CameraConnected(tracks); err != nil {
		return c.red.wrap(err)
	}
	s.mu.Lock()
	for _, e := range s.early {
		s.write(e.u, e.kind)
	}
	s.early = nil
	s.open = true
	s.mu.Unlock()

	video, audio := sel.codecs()
	obs.Playing(Connection{Transport: s.transport(), VideoCodec: video, AudioCodec: audio})

	err = s.loop(ctx)
	// Close the client first so no callback runs after Pull returns.
	stop()
	client.Close()
	return c.red.wrap(s.cause(err))
}

// newClient is the session's gortsplib client: every connection, datagram
// and name lookup a camera could cause goes through the guard (guard.go),
// every answer through onResponse (hostile.go).
func (s *session) newClient() *gortsplib.Client {
	c := s.c
	guard := &netGuard{addr: canonicalAddr(c.URL), limits: &c.Limits, s: s, tls: c.TLSConfig}
	s.client = &gortsplib.Client{
		Scheme:                c.URL.Scheme,
		Host:                  c.URL.Host,
		ReadTimeout:           c.ReadTimeout,
		WriteTimeout:          c.WriteTimeout,
		InitialUDPReadTimeout: c.UDPFallbackTimeout,
		Protocol:              c.protocol(),
		DialContext:           guard.dial,
		DialTLSContext:        guard.dialTLS,
		ListenPacket:          guard.listenPacket,
		ResolveIPAddr:         guard.resolve,
		OnResponse:            s.onResponse,
		OnTransportSwitch: func(err error) {
			// the new transport gets a fresh read-timeout window
			s.lastPacket.Store(time.Now().UnixNano())
			c.log.Info("camera transport switch", "reason", c.red.string(err.Error()))
		},
		OnPacketsLost: func(lost uint64) {
			c.m.packetsLost.Add(float64(lost))
		},
		OnDecodeError: func(err error) {
			c.m.decodeErrors.Inc()
			c.log.Debug("camera RTP decode error", "err", c.red.string(err.Error()))
		},
	}
	return s.client
}

// handshake describes, sets up and plays, within Limits.HandshakeTimeout.
func (s *session) handshake() ([]relay.Track, selection, error) {
	c := s.c
	timer := time.AfterFunc(c.Limits.HandshakeTimeout, func() {
		s.violate(&Violation{Reason: ReasonHandshakeTimeout, Msg: fmt.Sprintf(
			"the camera did not complete DESCRIBE, SETUP and PLAY within %s", c.Limits.HandshakeTimeout)})
		s.client.Close()
	})
	tracks, sel, err := s.setup()
	if err == nil {
		_, err = s.client.Play(nil)
	}
	if !timer.Stop() && err == nil {
		err = errors.New("handshake timed out") // the violation is the cause
	}
	return tracks, sel, err
}

// transport is the protocol in use ("UDP", "TCP"), "" before SETUP.
func (s *session) transport() string {
	if tr := s.client.Transport(); tr != nil && tr.Session != nil {
		return tr.Session.Protocol.String()
	}
	return ""
}

// setup describes the camera, selects tracks and sets up the kept ones.
func (s *session) setup() ([]relay.Track, selection, error) {
	c := s.c
	u := *c.URL
	desc, _, err := s.client.Describe((*base.URL)(&u))
	if err != nil {
		return nil, selection{}, err
	}
	sel := selectTracks(desc)
	for range s.unparseable.Load() {
		sel.dropped = append(sel.dropped, sanitize.Dropped{Kind: sanitize.TrackOther, Label: "other: media type not parseable"})
	}
	dropped := make([]string, len(sel.dropped))
	for i, d := range sel.dropped {
		dropped[i] = d.Label
		c.m.trackDropped(d.Kind)
	}
	s.obs.Described(dropped)
	// one info line per camera (again only if the set changes)
	if list := strings.Join(dropped, "; "); list != "" && list != c.loggedDropped {
		c.log.Info("camera tracks dropped (not re-served)", "dropped", list)
		c.loggedDropped = list
	}
	if len(sel.kept) == 0 {
		return nil, sel, relay.ErrNoTracks
	}
	if desc.BaseURL == nil {
		desc.BaseURL = (*base.URL)(&u)
	}
	tracks := make([]relay.Track, len(sel.kept))
	for i, k := range sel.kept {
		dec, err := newDecoder(k.forma)
		if err != nil {
			return nil, sel, err
		}
		if _, err := s.client.Setup(desc.BaseURL, k.media, 0, 0); err != nil {
			return nil, sel, err
		}
		t := &trackState{
			idx: i, kind: k.track.Kind, clockRate: int64(k.forma.ClockRate()), media: k.media,
			decode: dec, video: k.track.Kind == relay.KindVideo, h265: k.track.Codec == relay.CodecH265,
		}
		s.client.OnPacketRTP(k.media, k.forma, func(p *rtp.Packet) { s.onRTP(t, p) })
		tracks[i] = k.track
	}
	s.client.OnPacketRTCPAny(func(*description.Media, rtcp.Packet) { s.onRTCP() })
	return tracks, sel, nil
}

// loop waits for the end of the connection.
func (s *session) loop(ctx context.Context) error {
	c := s.c
	waitCh := make(chan error, 1)
	go func() { waitCh <- s.client.Wait() }()
	defer func() {
		s.client.Close()
		<-waitCh
	}()
	check := time.NewTicker(min(time.Second, max(c.MediaTimeout/4, 10*time.Millisecond)))
	defer check.Stop()
	transport := s.transport()
	for {
		select {
		case <-ctx.Done():
			return stopped(ctx)
		case err := <-waitCh:
			waitCh <- err // for the deferred receive
			if ctx.Err() != nil {
				return stopped(ctx)
			}
			return err
		case err := <-s.sinkErr:
			return err
		case <-s.faultCh:
			return s.fault.Load()
		case <-check.C:
			if tr := s.transport(); tr != "" && tr != transport {
				transport = tr
				s.obs.TransportChanged(tr) // auto: UDP may have become TCP
			}
			last := time.Unix(0, s.lastPacket.Load())
			if d := time.Since(last); d >= c.MediaTimeout {
				return fmt.Errorf("no media from the camera for %s", d.Round(time.Second))
			}
		}
	}
}

// onRTP runs on gortsplib's reader goroutines.
func (s *session) onRTP(t *trackState, p *rtp.Packet) {
	s.lastPacket.Store(time.Now().UnixNano())
	s.c.m.bytes.Add(float64(len(p.Payload)))
	if s.failed.Load() {
		return
	}
	ticks, ptsOK := s.client.PacketPTS(t.media, p)
	pts := toDuration(ticks, t.clockRate)

	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.checkPacket(t, p); v != nil {
		s.violate(v)
		return
	}
	au, err := t.decode(p)
	switch {
	case errors.Is(err, errMore):
		// a unit starts: either nothing was pending, or the decoder dropped
		// what was (on a new timestamp it returns the pending unit instead
		// of errMore)
		if t.video && (!t.pending || p.Timestamp != t.pendingTS) {
			t.pending, t.pendingTS, t.pendingPTS, t.pendingOK = true, p.Timestamp, pts, ptsOK
		}
		return
	case err != nil:
		s.c.m.decodeErrors.Inc()
		s.c.log.Debug("camera depacketization error", "track", t.idx, "err", s.c.red.string(err.Error()))
		return
	}
	if t.video && t.pending && p.Timestamp != t.pendingTS {
		// the decoder returned the previous unit (split by timestamp); the
		// current packet is buffered as the start of the next one.
		pts, ptsOK, t.pendingTS, t.pendingPTS, t.pendingOK = t.pendingPTS, t.pendingOK, p.Timestamp, pts, ptsOK
	} else {
		t.pending = false
	}
	if !ptsOK || len(au) == 0 {
		return
	}
	if v := s.checkUnit(t, au, pts, time.Now()); v != nil {
		s.violate(v)
		return
	}
	u := relay.Unit{Track: t.idx, PTS: pts, AU: au}
	if !s.open {
		if n := auSize(au); len(s.early) < maxEarlyUnits && s.earlyBytes+n <= earlyBufferBytes {
			s.earlyBytes += n
			u.AU = copyAU(u.AU)
			s.early = append(s.early, earlyUnit{u: u, kind: t.kind})
		}
		return
	}
	s.write(u, t.kind)
}

// write hands one unit to the sink. Called under s.mu.
func (s *session) write(u relay.Unit, kind relay.Kind) {
	if s.failed.Load() {
		return
	}
	if err := s.sink.WriteUnit(u); err != nil {
		s.failed.Store(true)
		select {
		case s.sinkErr <- err:
		default:
		}
		return
	}
	if kind == relay.KindVideo {
		s.c.m.videoFrames.Inc()
	} else {
		s.c.m.audioFrames.Inc()
	}
}

func auSize(au [][]byte) int {
	n := 0
	for _, b := range au {
		n += len(b)
	}
	return n
}

func copyAU(au [][]byte) [][]byte {
	out := make([][]byte, len(au))
	for i, b := range au {
		out[i] = append([]byte(nil), b...)
	}
	return out
}
