package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cordon/internal/whepclient"
)

// client is one viewer's counters, written by its goroutine and read by
// the printer and the summary.
type client struct {
	frames, packets, bytes atomic.Int64
	lost, lostEarly        atomic.Int64
	drops                  atomic.Int64
	ttff                   atomic.Int64 // ns from the request to the first keyframe; 0 = none yet
	phases                 atomic.Value // string: the join's phases (joins only)
	firstAU                atomic.Int32 // 0 unknown, 1 the first decoded AU was a keyframe, 2 it was not
	gapP95, gapMax         atomic.Int64 // ns between frames
	err                    atomic.Value // string
	wc                     atomic.Pointer[whepclient.Client]
	// frames/s over the steady window
	steady0, steady1 int64
}

// liveFrames is the frame count now (a WHEP client's is read from it, not
// from the last copy).
func (c *client) liveFrames() int64 {
	if wc := c.wc.Load(); wc != nil {
		return wc.Wire().Frames
	}
	return c.frames.Load()
}

func (c *client) fail(err error) {
	c.err.CompareAndSwap(nil, err.Error())
}

func (c *client) failed() bool { return c.err.Load() != nil }

// env is what every viewer shares: the tokens, the HTTP clients.
type env struct {
	o      options
	tokens []string
	http   []*http.Client     // one per source address
	poller *whepclient.Poller // light viewers' sockets
}

func (e *env) token(i int) string {
	if len(e.tokens) == 0 {
		return ""
	}
	return e.tokens[i%len(e.tokens)]
}

func (e *env) httpClient(i int) *http.Client { return e.http[i%len(e.http)] }

func newEnv(ctx context.Context, o options) (*env, error) {
	e := &env{o: o}
	for i := range o.sources {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if o.sources > 1 {
			tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}, Timeout: 10 * time.Second}).DialContext
		}
		tr.MaxIdleConnsPerHost = 64
		e.http = append(e.http, &http.Client{Transport: tr, Timeout: 30 * time.Second})
	}
	switch {
	case o.tokenFile != "":
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if t := strings.TrimSpace(sc.Text()); t != "" {
				e.tokens = append(e.tokens, t)
			}
		}
		if len(e.tokens) == 0 {
			return nil, fmt.Errorf("--token-file %s holds no token", o.tokenFile)
		}
	case o.token != "":
		e.tokens = []string{o.token}
	case o.whepURL == "" && o.rtspURL == "" && o.rtsp == "":
		t, err := login(ctx, e.http[0], o.url, o.user, o.password)
		if err != nil {
			return nil, err
		}
		e.tokens = []string{t}
	}
	return e, nil
}

// viewer runs one viewer until ctx ends.
func (e *env) viewer(ctx context.Context, i int, c *client) error {
	if e.o.rtspURL != "" || e.o.rtsp != "" {
		return runRTSP(ctx, e, i, c)
	}
	return runWHEP(ctx, e, i, c)
}

func load(ctx context.Context, o options, out io.Writer) (*report, error) {
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.light {
		e.poller = whepclient.NewPoller(o.poll)
		defer e.poller.Close()
	}
	if o.joins > 0 {
		return joins(ctx, e, out)
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
			case <-time.After(time.Until(start.Add(o.ramp * time.Duration(i) / time.Duration(o.viewers)))):
			case <-ctx.Done():
			}
		}
		wg.Go(func() {
			if err := e.viewer(ctx, i, c); err != nil && ctx.Err() == nil {
				c.fail(err)
			}
		})
	}
	window := steadyWindow(ctx, o, out, clients, start)
	cancel()
	wg.Wait()
	return summarize(o, clients, window), nil
}

// steadyWindow prints totals once a second; the measured window starts
// after the ramp plus a settling second and ends --duration later. It
// returns the window's length.
func steadyWindow(ctx context.Context, o options, out io.Writer, clients []*client, start time.Time) time.Duration {
	begin := start.Add(o.ramp + time.Second)
	end := begin.Add(o.duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastFrames, lastBytes int64
	begun := false
	for sec := 1; ; sec++ {
		select {
		case <-ctx.Done():
			if !begun {
				return 0
			}
			for _, c := range clients {
				c.steady1 = c.liveFrames()
			}
			return time.Since(begin)
		case <-tick.C:
		}
		now := time.Now()
		if !begun && !now.Before(begin) {
			begun, begin = true, now
			for _, c := range clients {
				c.steady0 = c.liveFrames()
			}
			marker(o, out, "STEADY-BEGIN")
		}
		if begun && !now.Before(end) {
			for _, c := range clients {
				c.steady1 = c.liveFrames()
			}
			marker(o, out, "STEADY-END")
			return now.Sub(begin)
		}
		var frames, bytes int64
		live := 0
		for _, c := range clients {
			frames += c.frames.Load()
			bytes += c.bytes.Load()
			if c.ttff.Load() > 0 && !c.failed() {
				live++
			}
		}
		if !o.quiet {
			fmt.Fprintf(out, "t=%3ds viewers=%d/%d frames/s=%d kbit/s=%d\n", sec, live, len(clients), frames-lastFrames, (bytes-lastBytes)*8/1000)
		}
		lastFrames, lastBytes = frames, bytes
	}
}

func marker(o options, out io.Writer, m string) {
	if o.markers {
		fmt.Fprintln(out, m)
		if f, ok := out.(*os.File); ok {
			_ = f.Sync()
		}
	}
}

// joins opens --joins viewers one after another, each watched for
// --join-watch, and reports their joins.
func joins(ctx context.Context, e *env, out io.Writer) (*report, error) {
	o := e.o
	clients := make([]*client, 0, o.joins)
	// one join before the measured ones, not counted: the server's first
	// PeerConnection and its check of the credential (cached afterwards)
	// are not what a viewer's join costs
	for i := -1; i < o.joins; i++ {
		if ctx.Err() != nil {
			break
		}
		c := &client{}
		if i >= 0 {
			clients = append(clients, c)
		}
		jctx, cancel := context.WithTimeout(ctx, o.joinWatch)
		if err := e.viewer(jctx, 0, c); err != nil && ctx.Err() == nil {
			c.fail(err)
		}
		cancel()
		if i < 0 {
			continue
		}
		if !o.quiet {
			ph, _ := c.phases.Load().(string)
			fmt.Fprintf(out, "join %3d: first frame %v, lost in the first 3 s %d, socket drops %d (%s)\n", i+1,
				time.Duration(c.ttff.Load()).Round(time.Millisecond), c.lostEarly.Load(), c.drops.Load(), ph)
		}
	}
	r := summarize(o, clients, 0)
	r.Mode = "joins"
	for i, c := range clients {
		if d := time.Duration(c.ttff.Load()); d == 0 || d > slowJoin {
			ph, _ := c.phases.Load().(string)
			r.SlowJoins = append(r.SlowJoins, fmt.Sprintf("join %d: first frame %v (%s)", i+1, d.Round(time.Millisecond), ph))
		}
	}
	return r, nil
}

func login(ctx context.Context, hc *http.Client, base, user, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
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
