// Command cordon-load is the load and benchmark tool for cordon (and any
// WHEP or RTSP server measured beside it):
//
//	cordon-load [flags]          N WHEP viewers (or RTSP readers) on one camera: per-second totals, then a summary
//	cordon-load camera [flags]   a bench camera: an RTSP server fed by ffmpeg looping a clip (cordon-load camera -h)
//	cordon-load compare [flags]  cordon beside MediaMTX, each pinned to one core: the README's "Measured" table
//
// The summary gives per viewer: time to first frame (POST to the first
// complete keyframe), whether the first decoded access unit was a
// keyframe, frames/s over the steady window, packets lost (sequence
// numbers never received; in all and in the first 3 s), the 95th
// percentile of the time between frames, and the kernel's socket drops.
// --light holds hundreds of viewers on one core (internal/whepclient:
// RTP is counted from its clear header after the first keyframe).
//
// It is bounded (at most 1000 viewers, at most 1 h) and meant for loopback
// or a lab LAN: a target that is not a loopback address is refused unless
// --allow-remote is given.
//
//	go run ./cmd/cordon-load --url http://127.0.0.1:8080 --user demo --password XXX --camera lobby --viewers 20 --duration 30s
//	go run ./cmd/cordon-load --whep-url http://127.0.0.1:8889/cam/whep --viewers 200 --light --ramp 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
)

const (
	maxViewers  = 1000
	maxDuration = time.Hour
)

type options struct {
	url, user, password, token, tokenFile, camera string
	whepURL, rtspURL                              string
	viewers, joins, sources, rcvbuf               int
	duration, ramp, joinWatch, poll               time.Duration
	tcp, allowRemote, light, jsonOut, markers     bool
	nack                                          bool
	rtsp                                          string // RTSP re-serve address: RTSP readers instead of WHEP
	quiet                                         bool
	fullFPS                                       float64
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "camera":
			return runCamera(args[1:], stdout, stderr)
		case "compare":
			return runCompare(args[1:], stdout, stderr)
		}
	}
	o, code := parseFlags(args, stderr)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := load(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "cordon-load:", err)
		return 1
	}
	if o.jsonOut {
		rep.writeJSON(stdout)
	} else {
		rep.print(stdout)
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, int) {
	var o options
	fs := flag.NewFlagSet("cordon-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "cordon's HTTP base URL (sign-in and /whep/{camera})")
	fs.StringVar(&o.whepURL, "whep-url", "", "full WHEP endpoint of any server, e.g. http://127.0.0.1:8889/cam/whep (no sign-in; --token optional)")
	fs.StringVar(&o.rtspURL, "rtsp-url", "", "full RTSP URL of any server (credentials in the URL if needed): RTSP readers instead of WHEP")
	fs.StringVar(&o.user, "user", "", "user (or API key name, for --rtsp) to sign in as")
	fs.StringVar(&o.password, "password", "", "password (or, for --rtsp, the API key's secret); default $CORDON_LOAD_PASSWORD")
	fs.StringVar(&o.token, "token", "", "bearer token instead of --user/--password: a session token, or an API key as key:<name>:<secret>; default $CORDON_LOAD_TOKEN")
	fs.StringVar(&o.tokenFile, "token-file", "", "bearer tokens, one a line, used in turn by the viewers (several principals pass the per-principal session cap)")
	fs.StringVar(&o.camera, "camera", "", "camera id (with --url or --rtsp)")
	fs.IntVar(&o.viewers, "viewers", 10, fmt.Sprintf("viewers to open (1..%d)", maxViewers))
	fs.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("how long to watch after the ramp (at most %v); frames/s are measured over it", maxDuration))
	fs.DurationVar(&o.ramp, "ramp", 0, "spread the joins over this time (0: as fast as possible)")
	fs.IntVar(&o.joins, "joins", 0, "instead of --viewers: this many joins one after another, each watched for --join-watch (time to first frame and loss at join)")
	fs.DurationVar(&o.joinWatch, "join-watch", 3500*time.Millisecond, "how long each of --joins is watched")
	fs.IntVar(&o.sources, "sources", 1, "spread the HTTP requests and RTSP readers over 127.0.0.1..127.0.0.N (loopback targets; a server's per-address limits)")
	fs.BoolVar(&o.light, "light", false, "count RTP from its clear header after the first keyframe instead of decrypting it (hundreds of viewers on one core)")
	fs.DurationVar(&o.poll, "poll", 10*time.Millisecond, "with --light: how often the viewers' sockets are read once their first keyframe arrived (frame gaps are measured to within it)")
	fs.IntVar(&o.rcvbuf, "rcvbuf", 0, "WHEP viewers' UDP receive buffer in bytes (0: the system default, as a browser has; a larger one keeps a busy client from dropping)")
	fs.BoolVar(&o.nack, "nack", false, "WHEP viewers send NACKs (and receiver reports) like a browser; off, a lost packet stays lost and is counted")
	fs.BoolVar(&o.tcp, "tcp", false, "WHEP: ICE-TCP only; RTSP: interleaved TCP (default for RTSP is TCP too; --tcp=false --rtsp uses UDP)")
	fs.StringVar(&o.rtsp, "rtsp", "", "host:port of cordon's RTSP re-serve: open RTSP readers instead of WHEP viewers (needs --user/--password)")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a target that is not a loopback address (lab LAN only)")
	fs.BoolVar(&o.quiet, "quiet", false, "no per-second lines")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVar(&o.markers, "markers", false, "print STEADY-BEGIN and STEADY-END lines when the measured window starts and ends")
	fs.Float64Var(&o.fullFPS, "full-fps", 24, "frames/s a viewer must reach to count as served at full rate")
	if err := fs.Parse(args); err != nil {
		return o, 2
	}
	if o.password == "" {
		o.password = os.Getenv("CORDON_LOAD_PASSWORD")
	}
	if o.token == "" {
		o.token = os.Getenv("CORDON_LOAD_TOKEN")
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "cordon-load:", err)
		return o, 2
	}
	return o, 0
}

func (o *options) validate() error {
	if o.camera == "" && o.whepURL == "" && o.rtspURL == "" {
		return errors.New("--camera is required (or --whep-url / --rtsp-url)")
	}
	if o.viewers < 1 || o.viewers > maxViewers || o.joins < 0 || o.joins > maxViewers {
		return fmt.Errorf("--viewers and --joins must be 1..%d", maxViewers)
	}
	if o.duration <= 0 || o.duration > maxDuration || o.ramp < 0 || o.ramp > maxDuration || o.joinWatch <= 0 || o.joinWatch > time.Minute {
		return fmt.Errorf("--duration and --ramp must be at most %v, --join-watch at most 1m", maxDuration)
	}
	if o.rcvbuf < 0 || o.rcvbuf > 64<<20 {
		return errors.New("--rcvbuf must be 0..64 MiB")
	}
	if o.sources < 1 || o.sources > 250 {
		return errors.New("--sources must be 1..250")
	}
	hosts, err := o.targets()
	if err != nil {
		return err
	}
	if !o.allowRemote {
		for _, h := range hosts {
			if err := loopbackOnly(h); err != nil {
				return err
			}
		}
	} else if o.sources > 1 {
		return errors.New("--sources is for loopback targets only")
	}
	return nil
}

// targets checks the addressing flags and returns the hosts they name.
func (o *options) targets() ([]string, error) {
	var hosts []string
	check := func(flagName, raw string, schemes ...string) error {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || !contains(schemes, u.Scheme) {
			return fmt.Errorf("--%s must be a %s://host:port/path URL", flagName, schemes[0])
		}
		if u.User != nil && flagName != "rtsp-url" {
			return fmt.Errorf("--%s must not carry credentials", flagName)
		}
		hosts = append(hosts, u.Hostname())
		return nil
	}
	switch {
	case o.rtspURL != "":
		return hosts, check("rtsp-url", o.rtspURL, "rtsp", "rtsps")
	case o.rtsp != "":
		h, _, err := net.SplitHostPort(o.rtsp)
		if err != nil {
			return nil, fmt.Errorf("--rtsp must be host:port: %v", err)
		}
		if o.user == "" || o.password == "" {
			return nil, errors.New("--rtsp needs --user and --password (RTSP has no bearer tokens)")
		}
		return append(hosts, h), nil
	case o.whepURL != "":
		return hosts, check("whep-url", o.whepURL, "http", "https")
	}
	if err := check("url", o.url, "http", "https"); err != nil {
		return nil, err
	}
	if o.token == "" && o.tokenFile == "" && (o.user == "" || o.password == "") {
		return nil, errors.New("give --token, --token-file, or --user and --password")
	}
	return hosts, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// loopbackOnly refuses a host that is or resolves to a non-loopback address.
func loopbackOnly(host string) error {
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		addrs, err := net.LookupIP(host)
		if err != nil || len(addrs) == 0 {
			return fmt.Errorf("cannot resolve %q: %v", host, err)
		}
		ips = addrs
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("target %s (%s) is not a loopback address; pass --allow-remote for a lab LAN", host, ip)
		}
	}
	return nil
}
