package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// The bench camera: ffmpeg 5.1 cannot serve RTSP players by itself, so it
// publishes (ANNOUNCE/RECORD over TCP, real time, looping the clip
// without re-encoding) into a small RTSP server that serves the stream to
// any number of pullers at /live and /live/1../live/N (the same packets:
// one clip stands for N cameras). Nothing is transcoded per puller.

// benchCamera is the RTSP side of the bench camera.
type benchCamera struct {
	srv      *gortsplib.Server
	paths    int
	mu       sync.RWMutex
	stream   *gortsplib.ServerStream
	pub      *gortsplib.ServerSession
	received atomic.Int64
}

func runCamera(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cordon-load camera", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:18554", "RTSP address to serve on")
	clip := fs.String("clip", "", "video file ffmpeg loops in real time (H.264 in Matroska or MP4)")
	paths := fs.Int("paths", 0, "also serve /live/1 ... /live/N (N cameras from one clip)")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg binary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *clip == "" || *paths < 0 || *paths > 1000 {
		fmt.Fprintln(stderr, "cordon-load camera: --clip is required; --paths 0..1000")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveCamera(ctx, *listen, *clip, *ffmpeg, *paths, stdout); err != nil {
		fmt.Fprintln(stderr, "cordon-load camera:", err)
		return 1
	}
	return 0
}

// serveCamera runs the camera until ctx ends or ffmpeg exits.
func serveCamera(ctx context.Context, listen, clip, ffmpeg string, paths int, out io.Writer) error {
	c := &benchCamera{paths: paths}
	c.srv = &gortsplib.Server{Handler: c, RTSPAddress: listen, WriteQueueSize: 4096, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	if err := c.srv.Start(); err != nil {
		return fmt.Errorf("RTSP server on %s: %w", listen, err)
	}
	defer c.close()
	url := "rtsp://" + c.srv.NetListener().Addr().String() + "/live"
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", clip,
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := time.NewTicker(50 * time.Millisecond)
	defer ready.Stop()
	deadline := time.After(30 * time.Second)
	for c.received.Load() < 10 {
		select {
		case err := <-exited:
			return fmt.Errorf("ffmpeg exited: %v: %s", err, strings.TrimSpace(stderr.String()))
		case <-deadline:
			return errors.New("ffmpeg did not start publishing within 30 s")
		case <-ready.C:
		}
	}
	fmt.Fprintf(out, "camera ready: %s (and /live/1../live/%d)\n", url, paths)
	select {
	case <-ctx.Done():
		<-exited
		return nil
	case err := <-exited:
		return fmt.Errorf("ffmpeg exited: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
}

func (c *benchCamera) close() {
	c.srv.Close()
	c.mu.Lock()
	if c.stream != nil {
		c.stream.Close()
		c.stream = nil
	}
	c.mu.Unlock()
}

// served reports whether path is one the camera serves.
func (c *benchCamera) served(path string) bool {
	path = strings.Trim(path, "/")
	if path == "live" {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(path, "live/"))
	return strings.HasPrefix(path, "live/") && err == nil && n >= 1 && n <= c.paths
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (c *benchCamera) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil && ctx.Session == c.pub {
		c.stream.Close()
		c.stream = nil
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (c *benchCamera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stream == nil || !c.served(ctx.Path) {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: ffmpeg publishes.
func (c *benchCamera) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil || strings.Trim(ctx.Path, "/") != "live" {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	st := &gortsplib.ServerStream{Server: c.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	c.stream, c.pub = st, ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (c *benchCamera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stream == nil || !c.served(ctx.Path) {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (c *benchCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord: ffmpeg's packets go
// to every puller unchanged.
func (c *benchCamera) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		c.received.Add(1)
		c.mu.RLock()
		st := c.stream
		c.mu.RUnlock()
		if st != nil {
			_ = st.WritePacketRTP(m, pkt)
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}
