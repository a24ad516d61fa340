package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// joinLoadViewers and joinLoadJoins: the join row repeated while this many
// viewers watch.
const (
	joinLoadViewers = 300
	joinLoadJoins   = 20
)

// joinUnderLoad measures joins while joinLoadViewers light viewers watch.
func (b *bench) joinUnderLoad(ctx context.Context, res *results) error {
	for _, t := range b.order(1) {
		b.logf("joinload: %s, %d joins beside %d viewers", t.name, joinLoadJoins, joinLoadViewers)
		err := b.with(ctx, t, b.one(), func(srv *proc) error {
			bgDur := time.Duration(joinLoadJoins)*4*time.Second + 20*time.Second
			began := make(chan struct{})
			bgErr := make(chan error, 1)
			go func() {
				_, err := b.runLoadNotify(ctx, srv, func() { close(began) }, append(t.whepArgs("cam"), "--viewers", strconv.Itoa(joinLoadViewers), "--light", "--rcvbuf", sweepRcvbuf,
					"--ramp", ramp(joinLoadViewers).String(), "--duration", bgDur.String())...)
				bgErr <- err
			}()
			<-began
			m, err := b.runLoad(ctx, srv, append(t.whepArgs("cam"), "--joins", strconv.Itoa(joinLoadJoins), "--join-watch", "3500ms")...)
			res.joinLoad[t.name] = m
			for _, j := range m.rep.SlowJoins {
				b.logf("joinload: %s: slow %s", t.name, j)
			}
			if e := <-bgErr; err == nil {
				err = e
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ingestRow measures the server pulling b.o.cameras cameras with no viewer
// (CPU over the window, RSS), and with one camera (the RSS base).
func (b *bench) ingestRow(ctx context.Context, res *results) error {
	many := scenario{}
	for i := range b.o.cameras {
		many.cameras = append(many.cameras, b.cam720+"/"+strconv.Itoa(i+1))
	}
	for step, sc := range []scenario{many, {cameras: []string{b.cam720 + "/1"}}} {
		for _, t := range b.order(step) {
			b.logf("ingest: %s, %d cameras", t.name, len(sc.cameras))
			err := b.with(ctx, t, sc, func(srv *proc) error {
				settle := time.NewTimer(5 * time.Second) // let the connections settle before the window
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-settle.C:
				}
				begin := takeSample(srv.pid(), os.Getpid(), b.o.serverCPU)
				win := b.o.duration
				if len(sc.cameras) == 1 {
					win = min(win, 20*time.Second)
				}
				window := time.NewTimer(win)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-window.C:
				}
				end := takeSample(srv.pid(), os.Getpid(), b.o.serverCPU)
				m := measured{window: end.at.Sub(begin.at), serverCPU: end.server - begin.server, coreBusy: end.core0 - begin.core0,
					rss: procRSS(srv.pid()), loadLo: min(begin.load, end.load), load: max(begin.load, end.load)}
				if len(sc.cameras) == 1 {
					res.ingestOne[t.name] = m
				} else {
					res.ingest[t.name] = m
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// machine names where the figures were taken.
type machine struct {
	cpu, kernel string
	cores       int
}

func describeMachine() machine {
	m := machine{cpu: "unknown CPU"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok && m.cpu == "unknown CPU" {
				m.cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
			if strings.HasPrefix(line, "processor") {
				m.cores++
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	}
	return m
}
