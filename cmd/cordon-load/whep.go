package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cordon/internal/whepclient"
)

// runWHEP opens one WHEP session with the shared browser-like client,
// counts what arrives until ctx ends, then DELETEs the session.
func runWHEP(ctx context.Context, o options, token string, c *client) error {
	endpoint := strings.TrimRight(o.url, "/") + "/whep/" + url.PathEscape(o.camera)
	var wc *whepclient.Client
	// 429 (rate limit per address) and 503 (camera not ready) are retried
	// after Retry-After, a few times, as a browser's viewer page does
	for try := 0; ; try++ {
		var err error
		wc, err = whepclient.Dial(ctx, whepclient.Options{URL: endpoint, Token: token, TCPOnly: o.tcp})
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
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = wc.Delete(dctx)
		wc.Close()
		c.update(wc.Stats())
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
			c.update(wc.Stats())
		}
	}
}

// update copies a WHEP client's counters for the printer.
func (c *client) update(st whepclient.Stats) {
	c.frames.Store(st.Frames)
	c.packets.Store(st.VideoPackets)
	c.bytes.Store(st.VideoBytes)
	c.gaps.Store(int64(st.SeqGaps))
	if st.FirstKey > 0 {
		c.ttff.CompareAndSwap(0, int64(st.FirstKey))
	}
}
