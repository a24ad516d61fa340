package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cordon/internal/whepclient"
)

// runWHEP opens one WHEP session with the shared browser-like client,
// counts what arrives until ctx ends, then DELETEs the session.
func runWHEP(ctx context.Context, e *env, i int, c *client) error {
	o := e.o
	endpoint := o.whepURL
	if endpoint == "" {
		endpoint = strings.TrimRight(o.url, "/") + "/whep/" + url.PathEscape(o.camera)
	}
	var wc *whepclient.Client
	// 429 (rate limit per address) and 503 (camera not ready) are retried
	// after Retry-After, a few times, as a browser's viewer page does
	for try := 0; ; try++ {
		var err error
		wc, err = whepclient.Dial(ctx, whepclient.Options{URL: endpoint, Token: e.token(i), HTTP: e.httpClient(i),
			TCPOnly: o.tcp, Light: o.light, Poller: e.poller, NoHeaders: true, NoInterceptors: !o.nack, ReadBuffer: o.rcvbuf, AUQueue: 1})
		var se *whepclient.StatusError
		if !errors.As(err, &se) || (se.Status != http.StatusTooManyRequests && se.Status != http.StatusServiceUnavailable) || try == 8 {
			if err != nil {
				return err
			}
			break
		}
		wait := min(se.RetryAfter(), 10*time.Second)
		if wait == 0 {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	c.wc.Store(wc)
	defer func() {
		c.wc.Store(nil)
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.update(wc)
		_, _ = wc.Delete(dctx)
		wc.Close()
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wc.Ended():
			return wc.Err()
		case <-tick.C:
			c.update(wc)
		}
	}
}

// update copies a WHEP client's counters for the printer and the summary.
func (c *client) update(wc *whepclient.Client) {
	st, w := wc.Stats(), wc.Wire()
	c.frames.Store(w.Frames)
	c.packets.Store(w.Packets)
	c.bytes.Store(w.Bytes)
	c.lost.Store(w.Lost)
	c.lostEarly.Store(w.LostEarly)
	c.drops.Store(int64(w.Drops))
	c.gapP95.Store(int64(w.FrameGapP95))
	c.gapMax.Store(int64(w.FrameGapMax))
	if st.FirstKey > 0 {
		c.ttff.CompareAndSwap(0, int64(st.FirstKey))
	}
	ms := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return d.Round(100 * time.Microsecond).String()
	}
	c.phases.Store(fmt.Sprintf("answer %s, ICE %s, DTLS %s, first packet %s",
		ms(st.Answered), ms(st.ICEConnected), ms(st.Connected), ms(st.FirstPacket)))
	if st.FirstAU {
		v := int32(2)
		if st.FirstAUKey {
			v = 1
		}
		c.firstAU.CompareAndSwap(0, v)
	}
}
