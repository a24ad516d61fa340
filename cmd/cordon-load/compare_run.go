package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bench is one comparison run.
type bench struct {
	o       compareOpts
	log     io.Writer
	targets []*target
	cam     string // the 1080p camera's URL base (…/live)
	cam720  string
}

// results are every figure measured, by target name.
type results struct {
	machine           machine
	targets           []string
	join, joinLoad    map[string]measured
	sweep             map[string]map[int]measured
	rtsp              map[string]map[int]measured // by reader count
	ingest, ingestOne map[string]measured
	loadDuring        [2]float64
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (b *bench) run(ctx context.Context) (*results, error) {
	dir := b.o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "cordon-bench-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	b.logf("working directory %s", dir)
	// one API key per 64 sessions (a principal's session cap), for the
	// largest sweep point, the join row's background viewers (ROWS=joinload
	// with small POINTS got too few keys: every join refused) and the
	// largest RTSP reader count
	keys := max(slices.Max(b.o.points), joinLoadViewers, slices.Max(b.o.readers))/64 + 2
	t, err := newTarget("cordon", b.o.cordon, dir, true, keys)
	if err != nil {
		return nil, err
	}
	b.targets = []*target{t}
	switch {
	case b.o.mediamtx != "":
		m, err := newTarget("MediaMTX", b.o.mediamtx, dir, false, 0)
		if err != nil {
			return nil, err
		}
		b.targets = append(b.targets, m)
	case b.o.baseline != "":
		m, err := newTarget("baseline", b.o.baseline, dir, true, keys)
		if err != nil {
			return nil, err
		}
		b.targets = append(b.targets, m)
	}
	if b.o.go2rtc != "" {
		g, err := newTarget("go2rtc", b.o.go2rtc, dir, false, 0)
		if err != nil {
			return nil, err
		}
		g.go2rtc, g.rtspOnly = true, true
		b.targets = append(b.targets, g)
	}
	res := &results{machine: describeMachine(), join: map[string]measured{}, joinLoad: map[string]measured{},
		sweep: map[string]map[int]measured{}, rtsp: map[string]map[int]measured{}, ingest: map[string]measured{}, ingestOne: map[string]measured{}}
	res.loadDuring[0] = loadAvg()
	for _, t := range b.targets {
		res.targets = append(res.targets, t.name)
		res.sweep[t.name] = map[int]measured{}
		res.rtsp[t.name] = map[int]measured{}
	}
	stopCam, err := b.cameras(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer stopCam()
	for _, row := range allRows {
		if b.o.rows[row] {
			if err := b.row(ctx, row, res); err != nil {
				return nil, err
			}
		}
	}
	res.loadDuring[1] = loadAvg()
	return res, nil
}

// cameras starts the bench cameras on the client core.
func (b *bench) cameras(ctx context.Context, dir string) (func(), error) {
	var stops []func()
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	for _, c := range []struct {
		clip  string
		paths int
		url   *string
	}{{b.o.clip, 0, &b.cam}, {b.o.clip720, b.o.cameras, &b.cam720}} {
		if c.clip == "" || (c.paths > 0 && !b.o.rows["ingest"]) {
			continue
		}
		port := freePort("tcp")
		logPath := filepath.Join(dir, fmt.Sprintf("camera-%d.log", port))
		p, err := startPinned(b.o.taskset, b.o.clientCPU, logPath, b.o.load, "camera", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--clip", c.clip, "--paths", strconv.Itoa(c.paths))
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, p.stop)
		for !strings.Contains(tail(logPath, 5), "camera ready") {
			if p.exited() || ctx.Err() != nil {
				stop()
				return nil, fmt.Errorf("bench camera: %s", tail(logPath, 10))
			}
			time.Sleep(100 * time.Millisecond) // polling a child's log: nothing to wait on
		}
		*c.url = fmt.Sprintf("rtsp://127.0.0.1:%d/live", port)
		b.logf("camera %s serving %s", c.clip, *c.url)
	}
	return stop, nil
}

// order alternates the servers: A B for even steps, B A for odd ones.
// Peers measured on the RTSP row only (go2rtc) are left out.
func (b *bench) order(step int) []*target {
	return slices.DeleteFunc(b.orderAll(step), func(t *target) bool { return t.rtspOnly })
}

// orderAll is order with every server, for the RTSP row.
func (b *bench) orderAll(step int) []*target {
	ts := slices.Clone(b.targets)
	if step%2 == 1 {
		slices.Reverse(ts)
	}
	return ts
}

// rtspLoadArgs is the load of the rtsp row: n readers of t's camera.
func (b *bench) rtspLoadArgs(t *target, n int) []string {
	// a reader a second per 30 on top of 5 s: every reader signs in
	// (argon2id, one hash at a time per address) before the window
	ramp := (5*time.Second + time.Duration(n)*time.Second/30).String()
	return append(t.rtspArgs("cam"), "--viewers", strconv.Itoa(n), "--ramp", ramp, "--duration", b.o.duration.String())
}

// rtspTogether measures the rtsp row's point n with every server running
// at once, pinned to the server core, each pulling the same camera and
// read by its own load (started together, with the same ramp, so the
// steady windows coincide to within a few milliseconds): the servers share
// the machine's noise instead of each drawing its own 30 s slot.
func (b *bench) rtspTogether(ctx context.Context, n int, res *results) error {
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, t := range b.targets {
		srv, err := b.start(ctx, t, b.one())
		if err != nil {
			return err
		}
		procs = append(procs, srv)
	}
	b.logf("rtsp: %d readers each, every server at once", n)
	ms := make([]measured, len(b.targets))
	errs := make([]error, len(b.targets))
	var wg sync.WaitGroup
	for i, t := range b.targets {
		wg.Go(func() { ms[i], errs[i] = b.runLoad(ctx, procs[i], b.rtspLoadArgs(t, n)...) })
	}
	wg.Wait()
	for i, t := range b.targets {
		res.rtsp[t.name][n] = ms[i]
		b.logf("  %s: CPU %.2f s over %.1f s, %d connected", t.name, ms[i].serverCPU.Seconds(), ms[i].window.Seconds(), ms[i].rep.Connected)
	}
	return errors.Join(errs...)
}

// with starts t for sc, runs f, and stops t.
func (b *bench) with(ctx context.Context, t *target, sc scenario, f func(srv *proc) error) error {
	srv, err := b.start(ctx, t, sc)
	if err != nil {
		return err
	}
	defer srv.stop()
	return f(srv)
}

// sweepRcvbuf is the sweep clients' receive buffer: on a shared machine
// the client core's scheduling delays would otherwise drop packets the
// server sent in time. The join rows keep the system default.
const sweepRcvbuf = "4194304"

func (b *bench) one() scenario { return scenario{cameras: []string{b.cam}} }

// ramp spreads N joins: cordon admits 10 POSTs/s per address (the load
// uses 8 source addresses), so about 40 joins a second.
func ramp(n int) time.Duration { return max(2*time.Second, time.Duration(n)*time.Second/40) }

func (b *bench) row(ctx context.Context, row string, res *results) error {
	dur := b.o.duration.String()
	switch row {
	case "join":
		for _, t := range b.order(0) {
			b.logf("join: %s, %d joins", t.name, b.o.joins)
			err := b.with(ctx, t, b.one(), func(srv *proc) error {
				m, err := b.runLoad(ctx, srv, append(t.whepArgs("cam"), "--joins", strconv.Itoa(b.o.joins), "--join-watch", "3500ms")...)
				res.join[t.name] = m
				return err
			})
			if err != nil {
				return err
			}
		}
	case "sweep":
		for i, n := range b.o.points {
			for _, t := range b.order(i) {
				b.logf("sweep: %s, %d viewers", t.name, n)
				err := b.with(ctx, t, b.one(), func(srv *proc) error {
					var prof func()
					if n == b.o.profile {
						prof = func() { go b.profile(t, n) }
					}
					m, err := b.runLoadNotify(ctx, srv, prof, append(t.whepArgs("cam"), "--viewers", strconv.Itoa(n), "--light", "--rcvbuf", sweepRcvbuf,
						"--ramp", ramp(n).String(), "--duration", dur)...)
					res.sweep[t.name][n] = m
					b.logf("  CPU %.2f s over %.0f s, fps p5 %.1f, full rate %d/%d, RSS %d MB", m.serverCPU.Seconds(), m.window.Seconds(),
						m.rep.FPS.P5, m.rep.FullRate, n, m.rss>>20)
					return err
				})
				if err != nil {
					return err
				}
			}
		}
	case "joinload":
		return b.joinUnderLoad(ctx, res)
	case "rtsp":
		for i, n := range b.o.readers {
			if b.o.together {
				if err := b.rtspTogether(ctx, n, res); err != nil {
					return err
				}
				continue
			}
			for _, t := range b.orderAll(i + 1) {
				b.logf("rtsp: %s, %d readers", t.name, n)
				err := b.with(ctx, t, b.one(), func(srv *proc) error {
					m, err := b.runLoad(ctx, srv, b.rtspLoadArgs(t, n)...)
					res.rtsp[t.name][n] = m
					return err
				})
				if err != nil {
					return err
				}
			}
		}
	case "ingest":
		return b.ingestRow(ctx, res)
	}
	return nil
}
