package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// compare runs cordon and, when given, MediaMTX (or go2rtc, for the RTSP
// row) side by side: each server
// pinned to one core (taskset), the bench camera and the load on the
// other, the servers alternated point by point (A B, then B A) so a change
// in the machine's load hits both. It prints the README's "Measured" table
// with ratios (cordon / peer). `make bench-compare` is the one command.

type compareOpts struct {
	cordon, mediamtx, baseline string
	go2rtc                     string
	load, taskset              string
	clip, clip720, dir, out    string
	points                     []int
	rows                       map[string]bool
	duration                   time.Duration
	joins, cameras             int
	readers                    []int // RTSP reader counts of the rtsp row
	together                   bool  // rtsp row: every server at once, in one window
	profile                    int
	serverCPU, clientCPU       int
}

// allRows is every row compare can measure, in table order.
var allRows = []string{"join", "sweep", "joinload", "rtsp", "ingest"}

func runCompare(args []string, stdout, stderr io.Writer) int {
	o, err := parseCompare(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "cordon-load compare:", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, log: stderr}
	res, err := b.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "cordon-load compare:", err)
		return 1
	}
	table := res.markdown(o)
	fmt.Fprint(stdout, table)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(table), 0o644); err != nil {
			fmt.Fprintln(stderr, "cordon-load compare:", err)
			return 1
		}
	}
	return 0
}

func parseCompare(args []string, stderr io.Writer) (compareOpts, error) {
	var o compareOpts
	fs := flag.NewFlagSet("cordon-load compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	self, _ := os.Executable()
	fs.StringVar(&o.cordon, "cordon", "bin/cordon", "cordon binary")
	fs.StringVar(&o.mediamtx, "mediamtx", "", "MediaMTX binary to compare with (\"\" = cordon alone)")
	fs.StringVar(&o.baseline, "baseline", "", "instead of MediaMTX, another cordon build to compare with (before/after a change)")
	fs.StringVar(&o.go2rtc, "go2rtc", "", "go2rtc binary, a further peer for the rtsp row only (beside MediaMTX or a baseline, or alone)")
	fs.StringVar(&o.load, "load", self, "cordon-load binary for the load children")
	fs.StringVar(&o.taskset, "taskset", "taskset", "taskset binary")
	fs.StringVar(&o.clip, "clip", "", "the 1080p25 4 Mbit/s H.264 clip (scripts/bench-compare.sh encodes it)")
	fs.StringVar(&o.clip720, "clip720", "", "the 720p 2 Mbit/s clip for the ingest row")
	fs.StringVar(&o.dir, "dir", "", "working directory for configs and logs (default: a new temporary one)")
	fs.StringVar(&o.out, "out", "", "also write the table to this file")
	points := fs.String("points", "10,50,100,200,300,400,500,700", "viewer counts of the sweep (must include 10 and 200 for the memory slope)")
	rows := fs.String("rows", strings.Join(allRows, ","), "rows to measure: "+strings.Join(allRows, ","))
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "steady window of each point")
	fs.IntVar(&o.joins, "joins", 50, "sequential joins of the join row")
	readers := fs.String("rtsp-readers", "50,150", "RTSP/TCP reader counts of the rtsp row (two or more also give the CPU per added reader)")
	fs.BoolVar(&o.together, "rtsp-together", false, "rtsp row: run every server at once on the server core, each with its own readers, and measure them in the same window (on a shared machine a lone 30 s slot can be off by half; together both see the same noise)")
	fs.IntVar(&o.cameras, "cameras", 50, "cameras of the ingest row")
	fs.IntVar(&o.profile, "profile", 200, "sweep point at which each server's CPU profile is taken (pprof, 20 s in the window; 0 = none)")
	fs.IntVar(&o.serverCPU, "server-cpu", 0, "the core the server is pinned to")
	fs.IntVar(&o.clientCPU, "client-cpu", 1, "the core the camera and the load run on")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.points, err = counts("points", *points); err != nil {
		return o, err
	}
	if o.readers, err = counts("rtsp-readers", *readers); err != nil {
		return o, err
	}
	o.rows = map[string]bool{}
	for r := range strings.SplitSeq(*rows, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(allRows, r) {
			return o, fmt.Errorf("--rows: unknown row %q (have %s)", r, strings.Join(allRows, ","))
		}
		o.rows[r] = true
	}
	if o.clip == "" || (o.rows["ingest"] && o.clip720 == "") {
		return o, errors.New("--clip (and, for the ingest row, --clip720) is required")
	}
	if o.duration < 5*time.Second || o.joins < 1 || o.cameras < 1 || o.cameras > 1000 {
		return o, errors.New("--duration at least 5s; --joins, --cameras at least 1 (cameras at most 1000)")
	}
	if o.mediamtx != "" && o.baseline != "" {
		return o, errors.New("--mediamtx or --baseline, not both")
	}
	for _, p := range []*string{&o.cordon, &o.mediamtx, &o.baseline, &o.go2rtc, &o.load, &o.clip, &o.clip720} {
		if *p != "" && !strings.HasPrefix(*p, "/") && strings.Contains(*p, "/") {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return o, err
			}
			*p = abs
		}
	}
	return o, nil
}

// counts parses a flag's comma-separated viewer counts, sorted, each once.
func counts(flagName, list string) ([]int, error) {
	var out []int
	for p := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > maxViewers {
			return nil, fmt.Errorf("--%s: %q is not 1..%d", flagName, p, maxViewers)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
