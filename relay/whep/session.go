package whep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"cordon/relay"
	"cordon/relay/session"
)

// badOfferError is a 400: pion refused the offer.
type badOfferError struct{ msg string }

func (e badOfferError) Error() string { return e.msg }

// peer is one viewer's session: a PeerConnection, a relay reader and ONE
// goroutine (run) moving packets from the reader to the tracks. It is a
// session.Session of the server's registry.
type peer struct {
	srv     *Server
	id      string
	etag    string
	camera  string
	stream  string // "" = main, "sub"
	viewer  Viewer
	started time.Time
	bytes   atomic.Uint64

	pc          *webrtc.PeerConnection
	cork        *corkGroup // batches each frame's UDP sends (cork.go)
	localUfrag  string
	reader      *relay.Reader
	tracks      []*webrtc.TrackLocalStaticRTP // by out-track index; nil = not sent
	video       int                           // the video out-track's index; -1 = none
	senders     []*webrtc.RTPSender
	remoteUfrag string
	cands       int // remote candidates seen (offer and PATCHes), under mu

	ctx       context.Context
	cancel    context.CancelFunc
	connected chan struct{} // closed on the first PeerConnectionStateConnected
	finished  chan struct{} // closed when everything is freed
	helpers   sync.WaitGroup

	mu        sync.Mutex
	reason    string
	connOnce  bool
	discTimer *time.Timer
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) newPeer(ctx context.Context, camera string, v Viewer, reader *relay.Reader,
	tracks []relay.OutTrack, picks []pick, offerSDP string,
) (*peer, string, error) {
	pc, cork, ufrag, err := s.newPeerConnection(picks)
	if err != nil {
		return nil, "", err
	}
	ss := &peer{
		srv: s, id: session.NewID(), etag: randHex(8), camera: camera, viewer: v, started: time.Now(),
		pc: pc, cork: cork, localUfrag: ufrag, reader: reader, tracks: make([]*webrtc.TrackLocalStaticRTP, len(tracks)),
		remoteUfrag: ufragOf(offerSDP), video: -1,
		connected: make(chan struct{}), finished: make(chan struct{}),
	}
	ss.ctx, ss.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*peer, string, error) {
		ss.cancel()
		_ = pc.Close()
		s.udpMux.forget(ufrag)
		return nil, "", err
	}
	pc.OnConnectionStateChange(ss.onState)

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return fail(badOfferError{"the offer was refused: " + err.Error()})
	}
	for _, p := range picks {
		tr, err := webrtc.NewTrackLocalStaticRTP(p.codec.RTPCodecCapability, p.kind.String(), "cordon")
		if err != nil {
			return fail(err)
		}
		snd, err := pc.AddTrack(tr)
		if err != nil {
			return fail(err)
		}
		ss.tracks[p.track.Index] = tr
		ss.senders = append(ss.senders, snd)
		if p.kind == webrtc.RTPCodecTypeVideo {
			ss.video = p.track.Index
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(badOfferError{"cannot answer the offer: " + err.Error()})
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(badOfferError{"cannot answer the offer: " + err.Error()})
	}
	// Host candidates only: gathering is immediate.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(errors.New("ICE gathering did not complete"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	// Every chosen track must have landed on an m-line the client receives.
	for i, snd := range ss.senders {
		if len(snd.GetParameters().Codecs) == 0 {
			return fail(badOfferError{"the offer's " + picks[i].kind.String() + " m-line does not receive (use a recvonly transceiver)"})
		}
	}
	return ss, pc.LocalDescription().SDP, nil
}

func ufragOf(sdp string) string {
	for line := range strings.SplitSeq(sdp, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// Info implements session.Session.
func (ss *peer) Info() session.Info {
	ss.mu.Lock()
	reason := ss.reason
	ss.mu.Unlock()
	return session.Info{
		ID: ss.id, Camera: ss.camera, Stream: ss.stream, User: ss.viewer.Name, Kind: ss.viewer.Kind, Remote: ss.viewer.Remote,
		TokenID: ss.viewer.TokenID, Protocol: "webrtc", Started: ss.started, Bytes: ss.bytes.Load(),
		Principal: ss.viewer.Principal, Reason: reason,
	}
}

// ownedBy reports whether v is the principal that opened the session.
func (ss *peer) ownedBy(v Viewer) bool {
	return v.Name == ss.viewer.Name && v.Kind == ss.viewer.Kind && v.Source == ss.viewer.Source
}

// End implements session.Session: it asks the session to stop; the first
// reason wins. Never blocks.
func (ss *peer) End(reason string) {
	ss.mu.Lock()
	if ss.reason == "" {
		ss.reason = reason
	}
	ss.mu.Unlock()
	ss.cancel()
}

func (ss *peer) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		ss.mu.Lock()
		if !ss.connOnce {
			ss.connOnce = true
			close(ss.connected)
		}
		if ss.discTimer != nil {
			ss.discTimer.Stop()
			ss.discTimer = nil
		}
		ss.mu.Unlock()
	case webrtc.PeerConnectionStateDisconnected:
		ss.mu.Lock()
		if ss.discTimer == nil && ss.ctx.Err() == nil {
			ss.discTimer = time.AfterFunc(ss.srv.DisconnectTimeout, func() { ss.End("disconnected") })
		}
		ss.mu.Unlock()
	case webrtc.PeerConnectionStateFailed:
		ss.End("ice_failed")
	case webrtc.PeerConnectionStateClosed:
		ss.End("closed")
	}
}

// run is the session's one goroutine: wait for DTLS/SRTP, then move packets
// from the reader to the tracks until something ends the session.
func (ss *peer) run() {
	defer ss.srv.wg.Done()
	defer ss.cleanup()
	if !ss.waitConnected() {
		return
	}
	// frames queued during ICE/DTLS setup are stale: start from the
	// current GOP instead of replaying the backlog
	ss.reader.Flush()
	ss.forward()
}

// waitConnected drains incoming RTCP and waits for ICE, DTLS and SRTP;
// false when the session ended first.
func (ss *peer) waitConnected() bool {
	// Incoming RTCP (receiver reports, NACKs feed the responder inside the
	// interceptor chain, PLIs) is read and dropped so buffers never fill.
	for _, snd := range ss.senders {
		ss.helpers.Add(1)
		go func() {
			defer ss.helpers.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := snd.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	// pion drops packets written before SRTP is up; a zero read deadline
	// blocks exactly until then (or until the PeerConnection closes).
	srtpReady := make(chan struct{})
	ss.helpers.Add(1)
	go func() {
		defer ss.helpers.Done()
		_ = ss.senders[0].SetReadDeadline(time.Time{})
		close(srtpReady)
	}()

	connect := time.NewTimer(ss.srv.ICEConnectTimeout)
	defer connect.Stop()
	for _, ready := range []<-chan struct{}{ss.connected, srtpReady} {
		select {
		case <-ready:
		case <-ss.ctx.Done():
			return false
		case <-ss.reader.Done():
			ss.End("stream_ended")
			return false
		case <-connect.C:
			ss.End("ice_timeout")
			return false
		}
	}
	return ss.ctx.Err() == nil
}

// forward moves packets from the reader to the tracks until the session
// ends, paced (pace.go); no media for IdleTimeout (the camera is gone)
// ends it too.
func (ss *peer) forward() {
	s := ss.srv
	var idle *time.Timer
	if s.IdleTimeout > 0 {
		idle = time.AfterFunc(s.IdleTimeout, func() { ss.End("idle") })
		defer idle.Stop()
	}
	pace := newPacer(s.SendBurst, s.SendRate)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	rs := &restamper{clock: 90000}
	for {
		d, err := ss.reader.Next(ss.ctx)
		if err != nil {
			if ss.ctx.Err() == nil {
				ss.End("stream_ended")
			}
			return
		}
		if idle != nil {
			idle.Reset(s.IdleTimeout)
		}
		if d.Track >= len(ss.tracks) || ss.tracks[d.Track] == nil {
			continue
		}
		var stamp *restamper
		if d.Track == ss.video {
			pace.observe(d.PTS, len(d.Packets))
			stamp = rs
		}
		n, ok := ss.send(ss.tracks[d.Track], &d, pace, wait, stamp)
		ss.bytes.Add(uint64(n))
		if !ok {
			return
		}
	}
}

// send writes one frame in bursts of at most SendBurst packets, each
// batched into as few UDP sends as the kernel allows (cork.go) once the
// pacer allows it; stamp (video only) rewrites the timestamps first. It
// returns the payload bytes sent and false when the session must end.
func (ss *peer) send(tr *webrtc.TrackLocalStaticRTP, d *relay.Delivery, pace *pacer, wait *time.Timer, stamp *restamper) (int, bool) {
	n, burst := 0, ss.srv.SendBurst
	for off := 0; off < len(d.Packets); off += burst {
		end := min(off+burst, len(d.Packets))
		if !paceWait(ss.ctx, wait, pace, end-off) {
			return n, false
		}
		if off == 0 && stamp != nil {
			stamp.apply(d, time.Now())
		}
		ss.cork.Cork()
		for i := off; i < end; i++ {
			// UDP writes do not block; ICE-TCP writes are bounded by
			// tcpWriteTimeout. pion sets SSRC and payload type per binding.
			if err := tr.WriteRTP(&d.Packets[i]); err != nil {
				if errors.Is(err, io.ErrClosedPipe) {
					ss.cork.Flush()
					ss.End("closed")
					return n, false
				}
				continue
			}
			n += len(d.Packets[i].Payload)
		}
		ss.cork.Flush()
	}
	return n, true
}

// teardown frees the PeerConnection, the reader and the helper goroutines.
func (ss *peer) teardown() {
	ss.cancel()
	ss.mu.Lock()
	if ss.discTimer != nil {
		ss.discTimer.Stop()
		ss.discTimer = nil
	}
	ss.mu.Unlock()
	_ = ss.pc.Close()
	ss.srv.udpMux.forget(ss.localUfrag)
	ss.reader.Close()
	ss.helpers.Wait()
}

func (ss *peer) cleanup() {
	ss.teardown()
	s := ss.srv
	s.mu.Lock()
	delete(s.peers, ss.id)
	s.mu.Unlock()
	ss.mu.Lock()
	reason := ss.reason
	ss.mu.Unlock()
	switch reason {
	case "ice_timeout", "ice_failed", "disconnected":
		s.Metrics.errors.WithLabelValues(reason).Inc()
	}
	dur := time.Since(ss.started)
	info := ss.Info()
	if s.Events != nil {
		s.Events.ViewEnd(info, dur, info.Bytes)
	}
	s.Sessions.Remove(ss.id) // listed until its end is recorded
	s.Log.Info("WHEP session ended", "session", ss.id[:8], "camera", ss.camera, "user", ss.viewer.Name,
		"reason", reason, "duration", dur.Round(time.Millisecond).String(), "bytes", info.Bytes)
	close(ss.finished)
}

// trickle applies a PATCH body (application/trickle-ice-sdpfrag). An ICE
// restart (a new ice-ufrag) is refused with 422 and the session kept: the
// client should start a new session.
func (ss *peer) trickle(frag string) (int, string) {
	var cands []string
	for line := range strings.SplitSeq(frag, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			if u := strings.TrimPrefix(line, "a=ice-ufrag:"); u != ss.remoteUfrag {
				return http.StatusUnprocessableEntity, "ICE restart is not supported: start a new session"
			}
		case strings.HasPrefix(line, "a=candidate:"):
			cands = append(cands, strings.TrimPrefix(line, "a="))
		}
	}
	for _, c := range cands {
		ss.mu.Lock()
		ss.cands++
		n := ss.cands
		ss.mu.Unlock()
		if reason, err := ss.srv.admitCandidate(n, c); err != nil {
			// refused candidates are dropped (WHEP lets a server ignore
			// candidates); a malformed one is the client's error
			ss.srv.Metrics.candidates.WithLabelValues(reason).Inc()
			if reason == candMalformed {
				return http.StatusBadRequest, "a candidate could not be parsed"
			}
			ss.srv.Log.Debug("remote ICE candidate refused", "session", ss.id[:8], "reason", reason, "err", err)
			continue
		}
		zero := uint16(0)
		if err := ss.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c, SDPMLineIndex: &zero}); err != nil {
			return http.StatusBadRequest, "a candidate could not be parsed"
		}
	}
	return http.StatusNoContent, ""
}
