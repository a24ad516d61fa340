package rtspserve

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"cordon/relay"
	"cordon/relay/session"
)

// DESCRIBE, SETUP and PLAY: a gortsplib stream per session built from the
// camera's current tracks, a relay reader from PLAY on, and the pump
// copying its frames into the stream.

// describe builds a gortsplib stream for the camera's current tracks.
func (s *Server) describe(camera string, stream *relay.Stream) (*camStream, *base.Response) {
	r, err := stream.AddReader(relay.ReaderConf{} /* a probe: not counted as a viewer */)
	if err != nil {
		return nil, errResponse(base.StatusServiceUnavailable)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.ReadyTimeout)
	tracks, err := r.WaitReady(ctx)
	cancel()
	r.Close()
	if err != nil {
		return nil, errResponse(base.StatusServiceUnavailable)
	}
	desc := &description.Session{}
	medias := make([]*description.Media, len(tracks))
	for i, t := range tracks {
		m := mediaFor(t)
		if m == nil {
			continue
		}
		medias[i] = m
		desc.Medias = append(desc.Medias, m)
	}
	if len(desc.Medias) == 0 {
		return nil, errResponse(base.StatusServiceUnavailable)
	}
	ss := &gortsplib.ServerStream{Server: s.srv, Desc: desc}
	if err := ss.Initialize(); err != nil {
		return nil, errResponse(base.StatusInternalServerError)
	}
	return &camStream{camera: camera, stream: ss, medias: medias, tracks: tracks}, nil
}

// mediaFor describes one out track; nil if RTSP cannot carry it.
func mediaFor(t relay.OutTrack) *description.Media {
	var f format.Format
	kind := description.MediaTypeVideo
	switch t.Codec {
	case relay.CodecH264:
		h := &format.H264{PayloadTyp: t.PayloadType, PacketizationMode: 1}
		if len(t.ParamSets) >= 2 {
			h.SPS, h.PPS = t.ParamSets[0], t.ParamSets[1]
		}
		f = h
	case relay.CodecH265:
		h := &format.H265{PayloadTyp: t.PayloadType}
		if len(t.ParamSets) >= 3 {
			h.VPS, h.SPS, h.PPS = t.ParamSets[0], t.ParamSets[1], t.ParamSets[2]
		}
		f = h
	case relay.CodecPCMU, relay.CodecPCMA:
		kind = description.MediaTypeAudio
		f = &format.G711{PayloadTyp: t.PayloadType, MULaw: t.Codec == relay.CodecPCMU, SampleRate: 8000, ChannelCount: 1}
	case relay.CodecOpus:
		kind = description.MediaTypeAudio
		f = &format.Opus{PayloadTyp: t.PayloadType, ChannelCount: max(t.Channels, 1)}
	case relay.CodecAAC:
		kind = description.MediaTypeAudio
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(t.AACConfig); err != nil {
			return nil
		}
		f = &format.MPEG4Audio{PayloadTyp: t.PayloadType, Config: &conf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
	default:
		return nil
	}
	return &description.Media{Type: kind, Formats: []format.Format{f}}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	st, _, stream, res := s.authorize(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, nil
	}
	if err := s.Access.Ready(); err != nil {
		return errResponse(base.StatusServiceUnavailable), nil, nil
	}
	camera, key := cameraOf(ctx.Path), descKey(ctx.Path)
	cs, res := s.describe(camera, stream)
	if res != nil {
		return res, nil, nil
	}
	s.mu.Lock()
	if old := st.descs[key]; old != nil && !old.owned {
		old.stream.Close()
	}
	st.descs[key] = cs
	s.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, cs.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup. The first SETUP of
// an RTSP session registers it (the caps apply: past one, 503).
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return errResponse(base.StatusMethodNotAllowed), nil, nil
	}
	st, v, stream, res := s.authorize(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, nil
	}
	camera, name, key := cameraOf(ctx.Path), streamOf(ctx.Path), descKey(ctx.Path)
	s.mu.Lock()
	c := s.sessions[ctx.Session]
	s.mu.Unlock()
	if c != nil {
		if c.info.Camera != camera || c.info.Stream != name {
			return errResponse(base.StatusBadRequest), nil, nil
		}
		if !samePrincipal(v, c.viewer) {
			return errResponse(base.StatusSessionNotFound), nil, nil
		}
		s.mu.Lock()
		st.answering = c
		s.mu.Unlock()
		return &base.Response{StatusCode: base.StatusOK}, c.cs.stream, nil
	}
	if err := s.Sessions.Check("rtsp", v.Name); err != nil && v.Kind != session.KindPeer {
		s.Logger.Warn("rtsp session refused", "user", v.Name, "camera", camera, "err", err)
		return errResponse(base.StatusServiceUnavailable), nil, nil
	}
	s.mu.Lock()
	cs := st.descs[key]
	if cs != nil {
		delete(st.descs, key)
		cs.owned = true
	}
	s.mu.Unlock()
	if cs == nil { // client skipped DESCRIBE
		var r *base.Response
		if cs, r = s.describe(camera, stream); r != nil {
			return r, nil, nil
		}
		cs.owned = true
	}
	c = &client{srv: s, cs: cs, ss: ctx.Session, conn: ctx.Conn, viewer: v,
		info: session.Info{ID: session.NewID(), Camera: camera, Stream: name, User: v.Name, Kind: v.Kind, Remote: st.remote, Protocol: "rtsp", Principal: v.Principal}}
	if err := s.Sessions.Add(c); err != nil { // authoritative: SETUPs run concurrently
		cs.stream.Close()
		s.Logger.Warn("rtsp session refused", "user", v.Name, "camera", camera, "err", err)
		return errResponse(base.StatusServiceUnavailable), nil, nil
	}
	s.mu.Lock()
	s.sessions[ctx.Session] = c
	st.answering = c
	s.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, cs.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	_, v, stream, res := s.authorize(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil
	}
	if err := s.Access.Ready(); err != nil {
		return errResponse(base.StatusServiceUnavailable), nil
	}
	s.mu.Lock()
	c := s.sessions[ctx.Session]
	var playing bool
	if c != nil {
		playing = c.reader != nil
	}
	s.mu.Unlock()
	if c == nil || !samePrincipal(v, c.viewer) {
		return errResponse(base.StatusSessionNotFound), nil
	}
	if playing {
		return &base.Response{StatusCode: base.StatusOK}, nil // PLAY after PAUSE
	}
	r, err := s.attach(ctx, c, stream)
	if err != nil {
		return errResponse(base.StatusServiceUnavailable), nil
	}
	pctx, pcancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	c.reader, c.cancel, c.pctx, c.done = r, pcancel, pctx, make(chan struct{})
	c.info.Started = time.Now()
	s.mu.Unlock()
	if s.Events != nil {
		if err := s.Events.ViewStart(c.Info()); err != nil {
			pcancel()
			r.Close()
			s.mu.Lock()
			c.reader, c.cancel = nil, nil
			s.mu.Unlock()
			return errResponse(base.StatusServiceUnavailable), nil
		}
	}
	s.mu.Lock()
	if st := s.conns[ctx.Conn]; st != nil {
		st.pendingPlay = c
	}
	s.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// attach adds the session's relay reader: a viewer from now on, on the
// tracks the client set up, refused when the camera's codecs changed since
// DESCRIBE.
func (s *Server) attach(ctx *gortsplib.ServerHandlerOnPlayCtx, c *client, stream *relay.Stream) (*relay.Reader, error) {
	conf := relay.ReaderConf{Protocol: "rtsp"}
	if c.viewer.Kind == session.KindPeer { // a cluster node relaying the camera: no viewer
		conf = relay.ReaderConf{Consumer: "peer"}
	}
	r, err := stream.AddReader(conf)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(s.ctx, s.ReadyTimeout)
	tracks, err := r.WaitReady(wctx)
	cancel()
	if err == nil && !sameTracks(tracks, c.cs.tracks) {
		err = relay.ErrTracksChanged
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	var sel []int
	for i, m := range c.cs.medias {
		if m != nil && ctx.Session.Medias() != nil && setupped(ctx.Session.Medias(), m) {
			sel = append(sel, i)
		}
	}
	r.SetTracks(sel)
	return r, nil
}

func setupped(ms []*description.Media, m *description.Media) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func sameTracks(a, b []relay.OutTrack) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Codec != b[i].Codec || a[i].PayloadType != b[i].PayloadType {
			return false
		}
	}
	return true
}

// pump copies the reader's frames to the client: over TCP one write per
// frame straight from the relay's shared packets (framewriter.go),
// otherwise into the session's gortsplib stream.
func (s *Server) pump(ctx context.Context, se *client) {
	defer s.wg.Done()
	defer close(se.done)
	fw := newFrameWriter(se.conn, se.ss, se.cs, se.setups, writeTimeout)
	if fw == nil && slices.ContainsFunc(se.setups, func(in interleaved) bool { return in.wire != in.ssrc }) {
		// gortsplib's path would send with its own SSRC, not the one
		// announced: end the session rather than send a wrong stream
		s.pumpEnded(se, errNoFrameWriter)
		return
	}
	if fw != nil {
		for {
			v, err := se.reader.NextView(ctx)
			if err == nil {
				err = fw.add(&v)
			}
			// frames that are queued already (audio with video, or frames
			// the camera sent at once) join this Write: no delay is added
			for err == nil && fw.pending() < frameBufLimit {
				more, ok := se.reader.TryNextView()
				if !ok {
					break
				}
				err = fw.add(&more)
			}
			if err == nil {
				err = fw.flush(fw.now())
			}
			if err != nil {
				s.pumpEnded(se, err)
				return
			}
		}
	}
	for {
		d, err := se.reader.Next(ctx)
		if err != nil {
			s.pumpEnded(se, err)
			return
		}
		m := se.cs.medias[d.Track]
		if m == nil {
			continue
		}
		if se.overflow.Load() {
			if !d.Key {
				if s.FrameDropped != nil {
					s.FrameDropped(se.info.Camera)
				}
				continue
			}
			se.overflow.Store(false)
		}
		for i := range d.Packets {
			// the stream's write queue drops for a slow client; never blocks
			_ = se.cs.stream.WritePacketRTP(m, &d.Packets[i])
		}
	}
}

// errNoFrameWriter: a TCP session whose SETUP answers cannot be matched
// to its medias at PLAY (not expected: every answer is recorded).
var errNoFrameWriter = errors.New("rtsp session set up in a way cordon cannot serve")

// pumpEnded ends the session whose pump stopped on err (unless the server
// or the session cancelled it).
func (s *Server) pumpEnded(se *client, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.Logger.Info("rtsp session ended", "camera", se.info.Camera, "user", se.info.User, "reason", err.Error())
	se.setReason("stream_ended: " + err.Error())
	go se.ss.Close()
}
