// Command cordon-load is a small load generator for a running cordon: it
// signs in, opens N WHEP viewers (pion, like a browser: recvonly, full ICE)
// or N RTSP readers on one camera, prints per-second totals and a summary
// (viewers connected, time to first frame p50/p95, frames/s per viewer,
// sequence gaps), and exits non-zero if any viewer failed.
//
// It is bounded (at most 500 viewers, at most 1 h) and meant for loopback
// or a lab LAN: a target that is not a loopback address is refused unless
// --allow-remote is given.
//
//	go run ./cmd/cordon-load --url http://127.0.0.1:8080 --user demo --password XXX --camera lobby --viewers 20 --duration 30s
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
	"time"
)

const (
	maxViewers  = 500
	maxDuration = time.Hour
)

type options struct {
	url, user, password, token, camera string
	viewers                            int
	duration, ramp                     time.Duration
	tcp, allowRemote                   bool
	rtsp                               string // RTSP re-serve address: RTSP readers instead of WHEP
	quiet                              bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("cordon-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "cordon's HTTP base URL")
	fs.StringVar(&o.user, "user", "", "user (or API key name, for --rtsp) to sign in as")
	fs.StringVar(&o.password, "password", "", "password (or, for --rtsp, the API key's secret); default $CORDON_LOAD_PASSWORD")
	fs.StringVar(&o.token, "token", "", "bearer token instead of --user/--password: a session token, or an API key as key:<name>:<secret>; default $CORDON_LOAD_TOKEN")
	fs.StringVar(&o.camera, "camera", "", "camera id")
	fs.IntVar(&o.viewers, "viewers", 10, fmt.Sprintf("viewers to open (1..%d)", maxViewers))
	fs.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("how long to watch (at most %v)", maxDuration))
	fs.DurationVar(&o.ramp, "ramp", 0, "spread the joins over this time (0: as fast as possible)")
	fs.BoolVar(&o.tcp, "tcp", false, "WHEP: ICE-TCP only; RTSP: interleaved TCP (default for RTSP is TCP too; --tcp=false --rtsp uses UDP)")
	fs.StringVar(&o.rtsp, "rtsp", "", "host:port of cordon's RTSP re-serve: open RTSP readers instead of WHEP viewers (needs --user/--password)")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a target that is not a loopback address (lab LAN only)")
	fs.BoolVar(&o.quiet, "quiet", false, "no per-second lines")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.password == "" {
		o.password = os.Getenv("CORDON_LOAD_PASSWORD")
	}
	if o.token == "" {
		o.token = os.Getenv("CORDON_LOAD_TOKEN")
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "cordon-load:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := load(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "cordon-load:", err)
		return 1
	}
	rep.print(stdout)
	if rep.failed > 0 {
		return 1
	}
	return 0
}

func (o *options) validate() error {
	if o.camera == "" {
		return errors.New("--camera is required")
	}
	if o.viewers < 1 || o.viewers > maxViewers {
		return fmt.Errorf("--viewers must be 1..%d", maxViewers)
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return fmt.Errorf("--duration must be > 0 and at most %v", maxDuration)
	}
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errors.New("--url must be http(s)://host:port without credentials")
	}
	hosts := []string{u.Hostname()}
	if o.rtsp != "" {
		h, _, err := net.SplitHostPort(o.rtsp)
		if err != nil {
			return fmt.Errorf("--rtsp must be host:port: %v", err)
		}
		hosts = append(hosts, h)
		if o.user == "" || o.password == "" {
			return errors.New("--rtsp needs --user and --password (RTSP has no bearer tokens)")
		}
	} else if o.token == "" && (o.user == "" || o.password == "") {
		return errors.New("give --token, or --user and --password")
	}
	if !o.allowRemote {
		for _, h := range hosts {
			if err := loopbackOnly(h); err != nil {
				return err
			}
		}
	}
	return nil
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
