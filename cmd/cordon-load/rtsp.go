package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// runRTSP reads the camera from the RTSP re-serve until ctx ends.
func runRTSP(ctx context.Context, o options, c *client) error {
	u, err := base.ParseURL(fmt.Sprintf("rtsp://%s@%s/%s", url.UserPassword(o.user, o.password).String(), o.rtsp, url.PathEscape(o.camera)))
	if err != nil {
		return err
	}
	proto := gortsplib.ProtocolTCP
	if !o.tcp {
		proto = gortsplib.ProtocolUDP
	}
	start := time.Now()
	cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto, ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second}
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
	var last uint16
	have := false
	cl.OnPacketRTP(medi, h264, func(p *rtp.Packet) {
		if have && p.SequenceNumber != last+1 {
			c.gaps.Add(1)
		}
		have, last = true, p.SequenceNumber
		c.packets.Add(1)
		c.bytes.Add(int64(len(p.Payload)))
		au, err := dec.Decode(p)
		if err != nil {
			return
		}
		c.frames.Add(1)
		if c.ttff.Load() == 0 {
			for _, n := range au {
				if len(n) > 0 && n[0]&0x1f == 5 {
					c.ttff.CompareAndSwap(0, int64(time.Since(start)))
				}
			}
		}
	})
	if _, err := cl.Play(nil); err != nil {
		return err
	}
	err = cl.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
