package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// runRTSP reads the camera from an RTSP server until ctx ends; reader i
// connects from 127.0.0.(1 + i mod --sources) and, given API keys
// (--token, --token-file: "key:NAME:SECRET"), signs in with key i mod
// their count as user NAME, password SECRET.
func runRTSP(ctx context.Context, e *env, i int, c *client) error {
	o := e.o
	raw := o.rtspURL
	if raw == "" {
		raw = fmt.Sprintf("rtsp://%s@%s/%s", url.UserPassword(o.user, o.password).String(), o.rtsp, url.PathEscape(o.camera))
	}
	u, err := base.ParseURL(raw)
	if err != nil {
		return err
	}
	if tok := e.token(i); tok != "" {
		name, secret, ok := strings.Cut(strings.TrimPrefix(tok, "key:"), ":")
		if !ok || !strings.HasPrefix(tok, "key:") {
			return errors.New("RTSP readers sign in with API keys only (key:NAME:SECRET)")
		}
		u.User = url.UserPassword(name, secret)
	}
	proto := gortsplib.ProtocolTCP
	if !o.tcp && o.rtspURL == "" {
		proto = gortsplib.ProtocolUDP
	}
	start := time.Now()
	cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second}
	if o.sources > 1 {
		cl.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%o.sources))}, Timeout: 10 * time.Second}).DialContext
	}
	if err := cl.Start(); err != nil {
		return err
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, cl.Close)
	defer stop()
	desc, _, err := cl.Describe(u)
	if err != nil {
		return err
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if medi == nil {
		return errors.New("no H.264 track")
	}
	dec, err := h264.CreateDecoder()
	if err != nil {
		return err
	}
	if _, err := cl.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return err
	}
	rd := &rtspCounter{c: c, start: start, decode: dec.Decode}
	cl.OnPacketRTP(medi, h264, rd.packet)
	if _, err := cl.Play(nil); err != nil {
		return err
	}
	err = cl.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// rtspCounter counts one RTSP reader's packets (gortsplib calls it from
// one goroutine).
type rtspCounter struct {
	c         *client
	start     time.Time
	decode    func(*rtp.Packet) ([][]byte, error)
	last      uint16
	have      bool
	lastFrame time.Time
	gaps      gapHist
}

func (r *rtspCounter) packet(p *rtp.Packet) {
	c, now := r.c, time.Now()
	if r.have && p.SequenceNumber != r.last+1 {
		n := int64(p.SequenceNumber - r.last - 1)
		c.lost.Add(n)
		if c.ttff.Load() == 0 || now.Sub(r.start)-time.Duration(c.ttff.Load()) < 3*time.Second {
			c.lostEarly.Add(n)
		}
	}
	r.have, r.last = true, p.SequenceNumber
	c.packets.Add(1)
	c.bytes.Add(int64(len(p.Payload)))
	au, err := r.decode(p)
	if err != nil {
		return
	}
	c.frames.Add(1)
	if !r.lastFrame.IsZero() {
		r.gaps.add(now.Sub(r.lastFrame))
		c.gapP95.Store(int64(r.gaps.p95()))
	}
	r.lastFrame = now
	key := false
	for _, n := range au {
		key = key || (len(n) > 0 && n[0]&0x1f == 5)
	}
	v := int32(2)
	if key {
		v = 1
		c.ttff.CompareAndSwap(0, int64(now.Sub(r.start)))
	}
	c.firstAU.CompareAndSwap(0, v)
}

// gapHist is a histogram of frame gaps in milliseconds.
type gapHist struct {
	n   [2001]uint32
	all uint64
}

func (g *gapHist) add(d time.Duration) {
	g.n[min(int(d/time.Millisecond), len(g.n)-1)]++
	g.all++
}

func (g *gapHist) p95() time.Duration {
	want, acc := (g.all*95+99)/100, uint64(0)
	for i, n := range g.n {
		acc += uint64(n)
		if acc >= want {
			return time.Duration(i) * time.Millisecond
		}
	}
	return 0
}
