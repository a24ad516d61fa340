package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"cordon/democam/ffcam"
)

// The bench camera (democam/ffcam): ffmpeg publishes the looping clip
// into a small RTSP server that serves it to any number of pullers at
// /live and /live/1../live/N (the same packets: one clip stands for N
// cameras).

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
	c := &ffcam.Camera{Listen: listen, Clip: clip, FFmpeg: ffmpeg, Paths: paths}
	if err := c.Initialize(); err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "camera ready: %s (and /live/1../live/%d)\n", c.URL(), paths)
	select {
	case <-ctx.Done():
		return nil
	case <-c.Done():
		return c.Err()
	}
}
