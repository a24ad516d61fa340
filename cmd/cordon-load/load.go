package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// client is one viewer's counters, shared with the printer.
type client struct {
	frames  atomic.Int64 // complete video access units
	packets atomic.Int64
	bytes   atomic.Int64
	gaps    atomic.Int64 // RTP sequence gaps
	ttff    atomic.Int64 // ns from request to first keyframe; 0 = none yet
	err     atomic.Value // string
}

func (c *client) fail(err error) {
	c.err.CompareAndSwap(nil, err.Error())
}

type report struct {
	viewers, connected, failed int
	ttffs                      []time.Duration
	fps                        []float64
	gaps, frames, packets      int64
	bytes                      int64
	window                     time.Duration
	errors                     map[string]int
}

func load(ctx context.Context, o options, out io.Writer) (*report, error) {
	token := o.token
	if token == "" && o.rtsp == "" {
		t, err := login(ctx, o.url, o.user, o.password)
		if err != nil {
			return nil, err
		}
		token = t
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*client, o.viewers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		c := &client{}
		clients[i] = c
		if o.ramp > 0 && i > 0 {
			select {
			case <-time.After(o.ramp / time.Duration(o.viewers)):
			case <-ctx.Done():
			}
		}
		wg.Go(func() {
			var err error
			if o.rtsp != "" {
				err = runRTSP(ctx, o, c)
			} else {
				err = runWHEP(ctx, o, token, c)
			}
			if err != nil && ctx.Err() == nil {
				c.fail(err)
			}
		})
	}
	printEverySecond(ctx, o, out, clients, start.Add(o.ramp+o.duration))
	window := time.Since(start)
	cancel()
	wg.Wait()
	return summarize(o, clients, window), nil
}

// printEverySecond prints the totals once a second until end.
func printEverySecond(ctx context.Context, o options, out io.Writer, clients []*client, end time.Time) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastFrames, lastBytes int64
	for sec := 1; ; sec++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil || !time.Now().Before(end) {
			return
		}
		var frames, bytes int64
		live := 0
		for _, c := range clients {
			frames += c.frames.Load()
			bytes += c.bytes.Load()
			if c.ttff.Load() > 0 && c.err.Load() == nil {
				live++
			}
		}
		if !o.quiet {
			fmt.Fprintf(out, "t=%3ds viewers=%d/%d frames/s=%d kbit/s=%d\n", sec, live, o.viewers,
				frames-lastFrames, (bytes-lastBytes)*8/1000)
		}
		lastFrames, lastBytes = frames, bytes
	}
}

// summarize turns the clients' counters into the report.
func summarize(o options, clients []*client, window time.Duration) *report {
	r := &report{viewers: o.viewers, window: window, errors: map[string]int{}}
	for _, c := range clients {
		r.frames += c.frames.Load()
		r.packets += c.packets.Load()
		r.bytes += c.bytes.Load()
		r.gaps += c.gaps.Load()
		if e, ok := c.err.Load().(string); ok {
			r.failed++
			r.errors[e]++
			continue
		}
		if d := c.ttff.Load(); d > 0 {
			r.connected++
			r.ttffs = append(r.ttffs, time.Duration(d))
			watched := window - time.Duration(d)
			if watched > 0 {
				r.fps = append(r.fps, float64(c.frames.Load())/watched.Seconds())
			}
		} else {
			r.failed++
			r.errors["no keyframe received"]++
		}
	}
	return r
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "viewers: %d requested, %d connected, %d failed\n", r.viewers, r.connected, r.failed)
	fmt.Fprintf(out, "time to first frame: p50 %v, p95 %v\n", pct(r.ttffs, 0.5).Round(time.Millisecond), pct(r.ttffs, 0.95).Round(time.Millisecond))
	if len(r.fps) > 0 {
		lo, hi, sum := r.fps[0], r.fps[0], 0.0
		for _, f := range r.fps {
			lo, hi, sum = min(lo, f), max(hi, f), sum+f
		}
		fmt.Fprintf(out, "frames/s per viewer: mean %.1f, min %.1f, max %.1f\n", sum/float64(len(r.fps)), lo, hi)
	}
	fmt.Fprintf(out, "frames: %d, packets: %d, payload %.1f Mbit over %v, sequence gaps: %d\n", r.frames, r.packets, float64(r.bytes)*8/1e6, r.window.Round(time.Second), r.gaps)
	for e, n := range r.errors {
		fmt.Fprintf(out, "error (%d viewers): %s\n", n, e)
	}
}

func login(ctx context.Context, base, user, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Token == "" {
		return "", fmt.Errorf("login: unexpected answer")
	}
	return v.Token, nil
}
