package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// runWHEP opens one WHEP session and counts what arrives until ctx ends;
// then it DELETEs the session.
func runWHEP(ctx context.Context, o options, token string, c *client) error {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	start := time.Now()
	failed := make(chan error, 1)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			select {
			case failed <- fmt.Errorf("peer connection %s", s):
			default:
			}
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
			}
		}
		dec := &rtph264.Decoder{PacketizationMode: 1}
		_ = dec.Init()
		h264 := strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264)
		var last uint16
		have := false
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if have && p.SequenceNumber != last+1 {
				c.gaps.Add(1)
			}
			have, last = true, p.SequenceNumber
			c.packets.Add(1)
			c.bytes.Add(int64(len(p.Payload)))
			if !h264 {
				if p.Marker {
					c.frames.Add(1)
					c.ttff.CompareAndSwap(0, int64(time.Since(start)))
				}
				continue
			}
			au, err := dec.Decode(p)
			if err != nil {
				continue
			}
			c.frames.Add(1)
			if c.ttff.Load() == 0 {
				for _, n := range au {
					if len(n) > 0 && n[0]&0x1f == 5 {
						c.ttff.CompareAndSwap(0, int64(time.Since(start)))
					}
				}
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	base := strings.TrimRight(o.url, "/")
	var status int
	var hdr http.Header
	var body string
	// 429 (rate limit per address) and 503 (camera not ready) are retried
	// after Retry-After, a few times, as a browser's viewer page does
	for try := 0; ; try++ {
		start = time.Now()
		status, hdr, body, err = do(ctx, http.MethodPost, base+"/whep/"+url.PathEscape(o.camera), token, pc.LocalDescription().SDP)
		if err != nil {
			return err
		}
		if (status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable) || try == 8 {
			break
		}
		wait := time.Second
		if s, err := strconv.Atoi(hdr.Get("Retry-After")); err == nil && s > 0 {
			wait = min(time.Duration(s)*time.Second, 10*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	if status != http.StatusCreated {
		return fmt.Errorf("POST /whep/%s: %d %s", o.camera, status, strings.TrimSpace(body))
	}
	loc := hdr.Get("Location")
	defer func() {
		if loc != "" {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, _, _ = do(dctx, http.MethodDelete, base+loc, token, "")
		}
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

func do(ctx context.Context, method, u, token, body string) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/sdp")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(b), nil
}
