package ingest

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/pion/rtp"

	"cordon/config"
)

// HostileEvents receives a camera's protocol violations (a refused
// redirect, an exceeded bound), e.g. for the audit log through an
// aggregator that writes each kind once per camera and interval. reason is
// one of the Reason* constants; detail is the Violation's message (no
// credentials). Called from the camera's goroutines: must not block.
type HostileEvents interface {
	CameraHostile(id, reason, detail string)
}

// violate records the first violation of a session: the connection ends
// with it as the camera's last error. Safe from any goroutine.
func (s *session) violate(v *Violation) {
	if !s.fault.CompareAndSwap(nil, v) {
		return
	}
	s.failed.Store(true)
	close(s.faultCh)
	c := s.c
	c.m.violation(v.Reason)
	// the connection's end logs the message (once while it repeats)
	c.log.Debug("camera violated a bound; disconnecting", "reason", v.Reason, "err", c.red.string(v.Msg))
	if c.Hostile != nil {
		c.Hostile.CameraHostile(c.ID, v.Reason, c.red.string(v.Msg))
	}
}

// cause is the error a connection ended with: the violation, when there
// was one (gortsplib's own error is then only its consequence).
func (s *session) cause(err error) error {
	if v := s.fault.Load(); v != nil {
		return v
	}
	return err
}

// onResponse is gortsplib's OnResponse: it runs on every answer of the
// camera before gortsplib acts on it.
func (s *session) onResponse(res *base.Response) {
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		s.refuseRedirect(res)
		return
	}
	if tr, ok := res.Header["Transport"]; ok {
		res.Header["Transport"] = s.checkTransport(tr)
	}
	if ct := res.Header["Content-Type"]; len(ct) == 1 && strings.HasPrefix(ct[0], "application/sdp") {
		if n := countMedia(res.Body); n > s.c.Limits.MaxTracks {
			s.violate(&Violation{Reason: ReasonTracks, Msg: fmt.Sprintf(
				"the camera's SDP describes %d media sections; the limit is %d", n, s.c.Limits.MaxTracks)})
			res.Body = nil // gortsplib fails on the empty description
			delete(res.Header, "Content-Length")
			return
		}
	}
	s.unparseable.Add(int32(fixDescribeResponse(res)))
}

// refuseRedirect turns a redirect into a plain error status: gortsplib
// follows 301-305 with one Location by calling itself (unbounded
// recursion) and copies the camera's credentials into the new URL.
func (s *session) refuseRedirect(res *base.Response) {
	loc, ok := res.Header["Location"]
	delete(res.Header, "Location")
	target := "an unnamed location"
	if ok && len(loc) > 0 {
		target = redirectTarget(loc[0])
	}
	s.violate(&Violation{Reason: ReasonRedirect, Msg: fmt.Sprintf(
		"the camera answered %d %s redirecting to %s; cordon never follows a camera's redirect (set the camera URL to the real stream)",
		res.StatusCode, res.StatusMessage, target)})
}

// redirectTarget is a Location for the last error: userinfo, query and
// fragment removed, bounded, printable.
func redirectTarget(loc string) string {
	u, err := url.Parse(strings.TrimSpace(loc))
	if err != nil || u.Host == "" {
		return "an unparseable location"
	}
	t := config.SafeURL(u.String())
	if len(t) > 200 {
		t = t[:200] + "..."
	}
	return strconv.QuoteToASCII(t)
}

// checkTransport learns the interleaved channels the camera set up and
// strips "source=" and "destination=": gortsplib would send RTCP to, and
// resolve, whatever host a camera names there.
func (s *session) checkTransport(tr base.HeaderValue) base.HeaderValue {
	out := make(base.HeaderValue, len(tr))
	for i, v := range tr {
		parts := strings.Split(v, ";")
		kept := parts[:0]
		for _, p := range parts {
			k := strings.ToLower(strings.TrimSpace(p))
			if strings.HasPrefix(k, "source=") || strings.HasPrefix(k, "destination=") {
				s.c.log.Debug("camera transport names another host; ignored", "param", s.c.red.string(p))
				continue
			}
			kept = append(kept, p)
		}
		out[i] = strings.Join(kept, ";")
	}
	var th headers.Transport
	if th.Unmarshal(out) == nil && th.InterleavedIDs != nil {
		s.channels.add(th.InterleavedIDs[0])
		s.channels.add(th.InterleavedIDs[1])
	}
	return out
}

// countMedia counts "m=" lines.
func countMedia(sdp []byte) int {
	n := 0
	for rest := sdp; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if bytes.HasPrefix(line, []byte("m=")) {
			n++
		}
	}
	return n
}

// mediaGuard holds a session's media bounds that span packets.
type mediaGuard struct {
	seed     maphash.Seed
	paramLRU [3][4]uint64 // per slot (VPS, SPS, PPS): hashes of recent sets
	changes  windowCounter
	jumps    windowCounter

	rtcpMu sync.Mutex
	rtcp   windowCounter
}

func newMediaGuard() mediaGuard {
	return mediaGuard{
		seed:    maphash.MakeSeed(),
		changes: windowCounter{half: 30 * time.Second},
		jumps:   windowCounter{half: 30 * time.Second},
		rtcp:    windowCounter{half: 5 * time.Second},
	}
}

// checkPacket bounds the size of the access unit p belongs to. Called
// under s.mu.
func (s *session) checkPacket(t *trackState, p *rtp.Packet) *Violation {
	if !t.auStarted || p.Timestamp != t.auTS {
		t.auStarted, t.auTS, t.auBytes = true, p.Timestamp, 0
	}
	t.auBytes += len(p.Payload)
	if t.auBytes > s.c.Limits.MaxAccessUnitBytes {
		what := "an audio frame"
		if t.video {
			what = "a video access unit"
		}
		return &Violation{Reason: ReasonAccessUnit, Msg: fmt.Sprintf(
			"the camera sent %s larger than %d bytes", what, s.c.Limits.MaxAccessUnitBytes)}
	}
	return nil
}

// checkUnit bounds timestamp jumps and parameter-set churn over a
// decoded unit. Called under s.mu.
func (s *session) checkUnit(t *trackState, au [][]byte, pts time.Duration, now time.Time) *Violation {
	g := &s.media
	if t.havePTS {
		if d := pts - t.lastPTS; d < -time.Second || d > 10*time.Second {
			if n := g.jumps.add(1, now); n > s.c.Limits.MaxTimestampJumps {
				return &Violation{Reason: ReasonTimestamps, Msg: fmt.Sprintf(
					"the camera's timestamps jumped %d times within a minute (limit %d)", n, s.c.Limits.MaxTimestampJumps)}
			}
		}
	}
	t.lastPTS, t.havePTS = pts, true
	if !t.video {
		return nil
	}
	for _, nal := range au {
		slot := paramSlot(t.h265, nal)
		if slot < 0 {
			continue
		}
		h := maphash.Bytes(g.seed, nal)
		lru := &g.paramLRU[slot]
		known := false
		for _, x := range lru {
			if x == h {
				known = true
				break
			}
		}
		if known {
			continue
		}
		copy(lru[1:], lru[:len(lru)-1])
		lru[0] = h
		if n := g.changes.add(1, now); n > s.c.Limits.MaxParamSetChanges {
			return &Violation{Reason: ReasonParamSetChurn, Msg: fmt.Sprintf(
				"the camera sent %d different parameter sets (SPS/PPS/VPS) within a minute (limit %d)", n, s.c.Limits.MaxParamSetChanges)}
		}
	}
	return nil
}

// paramSlot is 0, 1, 2 for a VPS, SPS, PPS and -1 for anything else.
func paramSlot(h265 bool, nal []byte) int {
	if len(nal) == 0 {
		return -1
	}
	if h265 {
		switch (nal[0] >> 1) & 0x3f {
		case 32:
			return 0
		case 33:
			return 1
		case 34:
			return 2
		}
		return -1
	}
	switch nal[0] & 0x1f {
	case 7:
		return 1
	case 8:
		return 2
	}
	return -1
}

// onRTCP bounds the camera's RTCP rate.
func (s *session) onRTCP() {
	g := &s.media
	g.rtcpMu.Lock()
	n := g.rtcp.add(1, time.Now())
	g.rtcpMu.Unlock()
	if limit := 10 * s.c.Limits.MaxRTCPRate; n > limit {
		s.violate(&Violation{Reason: ReasonRTCPFlood, Msg: fmt.Sprintf(
			"the camera sent more than %d RTCP packets a second", s.c.Limits.MaxRTCPRate)})
	}
}
