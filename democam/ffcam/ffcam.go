// Package ffcam is "ffmpeg as the camera": ffmpeg loops a clip in real
// time without re-encoding and publishes it (ANNOUNCE/RECORD over TCP)
// into a small RTSP server here, the part of a camera that answers
// DESCRIBE/SETUP/PLAY. ffmpeg 5.1 cannot serve RTSP players by itself
// (`-rtsp_flags listen` receives a publisher, it does not serve players).
// Packets are forwarded verbatim, so a puller ingests ffmpeg's own SDP and
// RTP packetization; nothing is transcoded per puller.
//
// It serves the end-to-end tests and `cordon-load camera` (the bench
// camera). It is a sub-package of democam because it is a camera for
// tests and benchmarks, and apart from it because democam itself never
// runs ffmpeg.
package ffcam

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// readyPackets is how many packets ffmpeg has published when Initialize
// returns.
const readyPackets = 10

// Camera serves ffmpeg's stream at /live and, with Paths, at /live/1 ...
// /live/N (the same packets: one clip stands for N cameras).
type Camera struct {
	// Listen is the RTSP address, e.g. "127.0.0.32:0" (port 0 picks one).
	Listen string
	// Clip is the video file ffmpeg loops (H.264 in Matroska or MP4).
	Clip string
	// FFmpeg is the ffmpeg binary ("" = "ffmpeg" from PATH).
	FFmpeg string
	// Paths also serves /live/1 ... /live/Paths (0 = /live only).
	Paths int
	// StartTimeout bounds the wait for ffmpeg's first packets (0 = 30 s).
	StartTimeout time.Duration

	srv        *gortsplib.Server
	url        string
	cmd        *exec.Cmd
	stderr     bytes.Buffer // ffmpeg's; read only after exited is closed
	exited     chan struct{}
	exitErr    error
	publishing chan struct{}
	received   atomic.Int64
	players    atomic.Int32

	closeOnce sync.Once

	mu     sync.RWMutex
	stream *gortsplib.ServerStream
	pub    *gortsplib.ServerSession
}

// Initialize starts the RTSP server and ffmpeg, and returns once ffmpeg
// is publishing (or with an error when it exits or does not start in
// time).
func (c *Camera) Initialize() error {
	ffmpeg := c.FFmpeg
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	wait := c.StartTimeout
	if wait == 0 {
		wait = 30 * time.Second
	}
	c.exited, c.publishing = make(chan struct{}), make(chan struct{})
	c.srv = &gortsplib.Server{Handler: (*handler)(c), RTSPAddress: c.Listen, WriteQueueSize: 4096}
	if err := c.srv.Start(); err != nil {
		c.srv = nil
		return fmt.Errorf("RTSP server on %s: %w", c.Listen, err)
	}
	c.url = "rtsp://" + c.srv.NetListener().Addr().String() + "/live"
	c.cmd = exec.Command(ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", c.Clip,
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", c.url)
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		c.closeServer()
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	go func() {
		err := c.cmd.Wait()
		c.exitErr = fmt.Errorf("ffmpeg exited: %v: %s", err, strings.TrimSpace(c.stderr.String()))
		close(c.exited)
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-c.publishing:
		return nil
	case <-c.exited:
		c.closeServer()
		return c.exitErr
	case <-timer.C:
		c.Close()
		return fmt.Errorf("ffmpeg did not start publishing within %v", wait)
	}
}

// Close stops ffmpeg and the server (again: nothing).
func (c *Camera) Close() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.closeServer()
}

func (c *Camera) closeServer() {
	c.closeOnce.Do(func() {
		if c.srv == nil {
			return
		}
		c.srv.Close()
		c.mu.Lock()
		if c.stream != nil {
			c.stream.Close()
			c.stream = nil
		}
		c.mu.Unlock()
	})
}

// URL is the camera's stream, rtsp://host:port/live (no credentials).
func (c *Camera) URL() string { return c.url }

// Players counts the PLAY requests served.
func (c *Camera) Players() int { return int(c.players.Load()) }

// Done is closed when ffmpeg exits (on its own, or by Close).
func (c *Camera) Done() <-chan struct{} { return c.exited }

// Err says why ffmpeg exited, with its error output; nil while it runs.
func (c *Camera) Err() error {
	select {
	case <-c.exited:
		return c.exitErr
	default:
		return nil
	}
}

// served reports whether path is one the camera serves.
func (c *Camera) served(path string) bool {
	path = strings.Trim(path, "/")
	if path == "live" {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(path, "live/"))
	return strings.HasPrefix(path, "live/") && err == nil && n >= 1 && n <= c.Paths
}

// current returns the stream when path is served and ffmpeg publishes.
func (c *Camera) current(path string) (*base.Response, *gortsplib.ServerStream, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stream == nil || !c.served(path) {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// handler is the camera's gortsplib server handler (kept off Camera's
// method set).
type handler Camera

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose: the
// stream ends with ffmpeg's session.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil && ctx.Session == h.pub {
		h.stream.Close()
		h.stream = nil
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return (*Camera)(h).current(ctx.Path)
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: ffmpeg
// publishes at /live, once.
func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil || strings.Trim(ctx.Path, "/") != "live" {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	st := &gortsplib.ServerStream{Server: h.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	h.stream, h.pub = st, ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return (*Camera)(h).current(ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h *handler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.players.Add(1)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord: ffmpeg's packets go
// to every player unchanged.
func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		if h.received.Add(1) == readyPackets {
			close(h.publishing)
		}
		h.mu.RLock()
		st := h.stream
		h.mu.RUnlock()
		if st != nil {
			_ = st.WritePacketRTP(m, pkt)
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}
