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
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"

	"cordon/relay"
	"cordon/relay/sanitize"
)

// errMore means the decoder needs more packets for a unit (not an error).
var errMore = errors.New("more packets needed")

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
}

type earlyUnit struct {
	u    relay.Unit
	kind relay.Kind
}

// session is one RTSP connection to the camera.
type session struct {
	p      *Puller
	sink   Sink
	obs    Observer
	client *gortsplib.Client

	mu      sync.Mutex // serializes depacketizing and Sink.WriteUnit
	open    bool       // CameraConnected done: write units to the sink
	early   []earlyUnit
	failed  atomic.Bool
	sinkErr chan error // cap 1

	lastPacket atomic.Int64 // unix nanoseconds of the last RTP packet on a kept track

	// media sections cut from DESCRIBE (written on the client's goroutine
	// before Describe returns)
	unparseable atomic.Int32
}

func newDecoder(f format.Format) (func(*rtp.Packet) ([][]byte, error), error) {
	switch f := f.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				return nil, errMore
			}
			return au, err
		}, nil
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			if errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
				return nil, errMore
			}
			return au, err
		}, nil
	case *format.G711:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return oneFrame(d.Decode), nil
	case *format.Opus:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return oneFrame(d.Decode), nil
	case *format.MPEG4Audio:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return func(p *rtp.Packet) ([][]byte, error) {
			aus, err := d.Decode(p)
			if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
				return nil, errMore
			}
			return aus, err
		}, nil
	}
	return nil, fmt.Errorf("no decoder for %T", f)
}

// oneFrame adapts a decoder that yields one audio frame per packet.
func oneFrame(decode func(*rtp.Packet) ([]byte, error)) func(*rtp.Packet) ([][]byte, error) {
	return func(p *rtp.Packet) ([][]byte, error) {
		b, err := decode(p)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
}

// toDuration converts clock-rate ticks to a duration without overflowing.
func toDuration(ticks, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	sec := ticks / rate
	rem := ticks % rate
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/rate)
}

func (p *Puller) protocol() *gortsplib.Protocol {
	var proto gortsplib.Protocol
	switch p.Transport {
	case "tcp":
		proto = gortsplib.ProtocolTCP
	case "udp":
		proto = gortsplib.ProtocolUDP
	default:
		return nil
	}
	return &proto
}

// Pull connects, plays and forwards to sink until the connection ends or
// ctx is done. It returns why the connection ended: a redacted camera
// error, or context.Cause(ctx) when its owner stopped it. No call to sink
// or obs happens after Pull returns.
func (p *Puller) Pull(ctx context.Context, sink Sink, obs Observer) error {
	s := &session{p: p, sink: sink, obs: obs, sinkErr: make(chan error, 1)}
	s.lastPacket.Store(time.Now().UnixNano())
	client := &gortsplib.Client{
		Scheme:                p.URL.Scheme,
		Host:                  p.URL.Host,
		ReadTimeout:           p.ReadTimeout,
		WriteTimeout:          p.WriteTimeout,
		InitialUDPReadTimeout: p.UDPFallbackTimeout,
		Protocol:              p.protocol(),
		OnTransportSwitch: func(err error) {
			// the new transport gets a fresh read-timeout window
			s.lastPacket.Store(time.Now().UnixNano())
			p.log.Info("camera transport switch", "reason", p.red.Redact(err.Error()))
		},
		OnPacketsLost: func(lost uint64) {
			p.m.packetsLost.Add(float64(lost))
		},
		OnDecodeError: func(err error) {
			p.m.decodeErrors.Inc()
			p.log.Debug("camera RTP decode error", "err", p.red.Redact(err.Error()))
		},
	}
	client.OnResponse = func(res *base.Response) { s.unparseable.Add(int32(fixDescribeResponse(res))) }
	s.client = client
	if err := client.Start(); err != nil {
		return p.wrap(err)
	}
	stop := context.AfterFunc(ctx, client.Close)
	defer func() {
		stop()
		client.Close()
	}()

	tracks, sel, err := s.setup()
	if err == nil {
		_, err = client.Play(nil)
	}
	if err != nil {
		if ctx.Err() != nil {
			return stopped(ctx)
		}
		return p.wrap(err)
	}
	s.lastPacket.Store(time.Now().UnixNano())
	if err := sink.CameraConnected(tracks); err != nil {
		return p.wrap(err)
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
	return p.wrap(err)
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
	p := s.p
	u := *p.URL
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
		p.m.trackDropped(d.Kind)
	}
	s.obs.Described(dropped)
	// one info line per camera (again only if the set changes)
	if list := strings.Join(dropped, "; "); list != "" && list != p.loggedDropped {
		p.log.Info("camera tracks dropped (not re-served)", "dropped", list)
		p.loggedDropped = list
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
			decode: dec, video: k.track.Kind == relay.KindVideo,
		}
		s.client.OnPacketRTP(k.media, k.forma, func(p *rtp.Packet) { s.onRTP(t, p) })
		tracks[i] = k.track
	}
	return tracks, sel, nil
}

// loop waits for the end of the connection.
func (s *session) loop(ctx context.Context) error {
	p := s.p
	waitCh := make(chan error, 1)
	go func() { waitCh <- s.client.Wait() }()
	defer func() {
		s.client.Close()
		<-waitCh
	}()
	check := time.NewTicker(min(time.Second, max(p.MediaTimeout/4, 10*time.Millisecond)))
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
		case <-check.C:
			if tr := s.transport(); tr != "" && tr != transport {
				transport = tr
				s.obs.TransportChanged(tr) // auto: UDP may have become TCP
			}
			last := time.Unix(0, s.lastPacket.Load())
			if d := time.Since(last); d >= p.MediaTimeout {
				return fmt.Errorf("no media from the camera for %s", d.Round(time.Second))
			}
		}
	}
}

// onRTP runs on gortsplib's reader goroutines.
func (s *session) onRTP(t *trackState, p *rtp.Packet) {
	s.lastPacket.Store(time.Now().UnixNano())
	s.p.m.bytes.Add(float64(len(p.Payload)))
	if s.failed.Load() {
		return
	}
	ticks, ptsOK := s.client.PacketPTS(t.media, p)
	pts := toDuration(ticks, t.clockRate)

	s.mu.Lock()
	defer s.mu.Unlock()
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
		s.p.m.decodeErrors.Inc()
		s.p.log.Debug("camera depacketization error", "track", t.idx, "err", s.p.red.Redact(err.Error()))
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
	u := relay.Unit{Track: t.idx, PTS: pts, AU: au}
	if !s.open {
		if len(s.early) < maxEarlyUnits {
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
		s.p.m.videoFrames.Inc()
	} else {
		s.p.m.audioFrames.Inc()
	}
}

func copyAU(au [][]byte) [][]byte {
	out := make([][]byte, len(au))
	for i, b := range au {
		out[i] = append([]byte(nil), b...)
	}
	return out
}
