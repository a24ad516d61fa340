package relay

// The source side of a Stream: what a puller (ingest, or a cluster node
// relaying another node's stream) calls. Calls for one stream are
// serialized by the source: WriteUnit never runs concurrently with itself.

// CameraConnected is called by the source after every successful PLAY with
// the camera's surviving tracks. If the codecs differ from the previous
// connection, current readers end with ErrTracksChanged.
func (s *Stream) CameraConnected(tracks []Track) error {
	if len(tracks) == 0 {
		return ErrNoTracks
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrStreamClosed
	}
	var kicked []*Reader
	if !sameCodecs(s.tracks, tracks) {
		if s.tracks != nil {
			kicked = s.readers
			s.readers = nil
			s.Log.Warn("camera codecs changed; viewers must reconnect")
		}
		ots, err := s.buildTracks(tracks)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.tracks = ots
		s.gop.reset()
	} else {
		for i, t := range s.tracks {
			if t.filter != nil {
				t.filter.SetSDPParamSets(tracks[i].ParamSets)
			}
		}
	}
	for _, t := range s.tracks {
		t.havePTS = false
	}
	s.connectReorders(tracks)
	s.timeline.reconnect(s.Clock.Now())
	s.online = true
	s.lastErr = nil
	close(s.ready)
	s.mu.Unlock()

	for _, r := range kicked {
		r.finish(ErrTracksChanged)
	}
	return nil
}

// CameraDisconnected is called by the source when the camera connection
// ends (err nil: an intentional stop). Readers stay attached and resume
// when the camera comes back.
func (s *Stream) CameraDisconnected(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if s.online {
		s.goOfflineLocked()
	}
}

func (s *Stream) goOfflineLocked() {
	s.online = false
	s.ready = make(chan struct{})
	s.gop.reset()
	for _, t := range s.tracks {
		t.recent.reset()
	}
}

func sameCodecs(old []*outTrack, tracks []Track) bool {
	if old == nil || len(old) != len(tracks) {
		return false
	}
	for i, t := range tracks {
		o := old[i].Track
		if o.Kind != t.Kind || o.Codec != t.Codec || o.ClockRate != t.ClockRate || max(o.Channels, 1) != max(t.Channels, 1) {
			return false
		}
	}
	return true
}

// WriteUnit sanitizes, re-originates and fans out one unit through the
// track's stages (timeline.go, pipeline.go, reorder.go), caches it (gop.go)
// and offers it to every reader (reader.go). It never blocks on readers. An
// error means the stream cannot be served as sent and the source should
// drop the connection and report it (none today: B-frames are served).
func (s *Stream) WriteUnit(u Unit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.online || u.Track < 0 || u.Track >= len(s.tracks) {
		return nil
	}
	t := s.tracks[u.Track]
	out, ok := s.stamp(t, u.PTS)
	if !ok {
		return nil
	}
	f, au, err := t.process(u.AU)
	if t.sawReorderSPS {
		t.sawReorderSPS = false
		s.reorderLocked(t)
	}
	if err != nil {
		s.Log.Warn("cannot packetize access unit", "codec", string(t.Codec), "err", err)
		return nil
	}
	if f == nil {
		return nil
	}
	f.Track, f.PTS, f.DTS, f.Time = u.Track, out, t.decodeTime(au, out), s.Clock.Now()
	ts := t.tsBase + ticks(out, t.ClockRate)
	for _, p := range f.Packets {
		p.Timestamp += ts
		f.Bytes += len(p.Payload)
	}
	if t.Kind == KindVideo {
		s.gop.add(f)
	}
	t.recent.push(f)
	for _, r := range s.readers {
		r.offer(f)
	}
	return nil
}
