package e2e

// Benchmarks of the core pipeline. Run one at a time, once:
//
//	go test -run '^$' -bench 'TimeToFirstFrame|FanOut' -benchtime=1x ./e2e/
//
// Each keeps under about a minute.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"cordon/config"
	"cordon/e2e/e2eutil"
)

// BenchmarkTimeToFirstFrame: from the start of a WHEP join (offer built,
// ICE gathered on loopback, POST) until the first complete keyframe access
// unit reaches a pion client, over 50 sequential joins on a democam camera
// (15 fps, GOP 2 s). Reports p50 and p95 in ms.
func BenchmarkTimeToFirstFrame(b *testing.B) {
	cam := coreCam(b, "ttff", "127.0.0.39", false)
	g := e2eutil.Start(b, e2eutil.Config(b, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}}},
		[]config.Camera{camCfg(cam, false)}))
	token := e2eutil.Login(b, g.Base, "alice", "alice-pw-1")
	e2eutil.WaitFor(b, 30*time.Second, "camera online", func() bool { return coreCameras(b, g.Base, token)["ttff"].Online })
	var all []time.Duration
	b.ResetTimer()
	for range b.N {
		for j := range 50 {
			t0 := time.Now()
			v, status, body := e2eutil.Dial(b, g.Base, "ttff", token, e2eutil.ViewerOptions{})
			if v == nil {
				b.Fatalf("join %d: %d %s", j, status, body)
			}
			for {
				au := v.NextAU(b, 20*time.Second)
				if slices.Contains(e2eutil.H264Types(au.NALUs), 5) {
					all = append(all, au.At.Sub(t0))
					break
				}
			}
			v.Delete(b)
			v.Close()
			time.Sleep(time.Duration(j*53%300) * time.Millisecond) // join at varied points of the GOP
		}
	}
	b.StopTimer()
	slices.Sort(all)
	p := func(q float64) float64 {
		return float64(all[min(len(all)-1, int(q*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.95), "p95-ms")
	b.ReportMetric(0, "ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// buildLoad builds cmd/cordon-load, so the 50 viewers run in another
// process and the CPU measured here is the gateway's (plus the in-process
// RTSP server the ffmpeg camera publishes into).
func buildLoad(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "cordon-load")
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("go toolchain not on PATH: %v", err)
	}
	out, err := exec.Command(goBin, "build", "-o", bin, "cordon/cmd/cordon-load").CombinedOutput()
	if err != nil {
		b.Fatalf("build cordon-load: %v\n%s", err, out)
	}
	return bin
}

var loadPackets = regexp.MustCompile(`packets: (\d+)`)
var loadConnected = regexp.MustCompile(`(\d+) connected, (\d+) failed`)

// measured runs fn and returns the process CPU time and heap allocations
// it took.
func measured(fn func()) (cpu time.Duration, mallocs uint64, wall time.Duration) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0, t0 := cpuTime(), time.Now()
	fn()
	c1, wall := cpuTime(), time.Since(t0)
	runtime.ReadMemStats(&m1)
	return c1 - c0, m1.Mallocs - m0.Mallocs, wall
}

// BenchmarkFanOut: one camera at ~2 Mbit/s (ffmpeg publishing a noisy
// 640x360 15 fps libx264 clip, CBR 2 Mbit/s, GOP 2 s, into an RTSP server
// cordon pulls) to 50 WHEP viewers, then to 50 RTSP readers (TCP), each for
// 18 s (joins ramped over 3 s: the WHEP POST rate limit is per address), the clients in a separate process (cmd/cordon-load). Reports the
// gateway's CPU seconds per viewer-minute (process user+sys over the
// window, minus the same window with no viewer, / viewers x minutes) and
// heap allocations per packet delivered (runtime.MemStats.Mallocs delta /
// RTP packets the clients received; includes the idle baseline's).
func BenchmarkFanOut(b *testing.B) {
	const viewers, secs = 50, 18
	clip := coreEncodeClip(b, b.TempDir(), "640x360", 8, 30, "2M")
	load := buildLoad(b)
	cam := startFFCam(b, "127.0.0.40", clip)
	cfg := e2eutil.Config(b, []e2eutil.Account{{Name: "alice", Password: "alice-pw-1", Cameras: []string{"*"}}},
		[]config.Camera{{ID: "fan", Name: "fan", URL: cam.URL(), Transport: "tcp"}})
	g := e2eutil.Start(b, cfg)
	token := e2eutil.Login(b, g.Base, "alice", "alice-pw-1")
	e2eutil.WaitFor(b, 30*time.Second, "camera online", func() bool { return coreCameras(b, g.Base, token)["fan"].Online })
	time.Sleep(2 * time.Second) // a measurement: let start-up work settle before the idle baseline

	b.ResetTimer()
	for range b.N {
		in0, _ := coreMetric(b, g.MetricsAddr(), "cordon_ingest_bytes_total", `camera="fan"`)
		idleCPU, idleMallocs, idleWall := measured(func() { time.Sleep(8 * time.Second) }) // the idle window measured
		in1, _ := coreMetric(b, g.MetricsAddr(), "cordon_ingest_bytes_total", `camera="fan"`)
		kbps := (in1 - in0) * 8 / 1000 / idleWall.Seconds()
		b.ReportMetric(kbps, "ingest-kbit/s")

		for _, mode := range []struct {
			name string
			args []string
		}{
			{"whep", nil},
			{"rtsp", []string{"--rtsp", g.RTSPAddr(), "--tcp"}},
		} {
			args := append([]string{"--url", g.Base, "--user", "alice", "--password", "alice-pw-1", "--camera", "fan",
				"--viewers", strconv.Itoa(viewers), "--duration", fmt.Sprintf("%ds", secs), "--ramp", "3s", "--quiet"}, mode.args...)
			var out []byte
			var err error
			cpu, mallocs, wall := measured(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				out, err = exec.CommandContext(ctx, load, args...).CombinedOutput()
			})
			b.Logf("%s: cordon-load %v\n%s", mode.name, err, out)
			if err != nil {
				b.Fatalf("%s: cordon-load failed: %v", mode.name, err)
			}
			m := loadPackets.FindSubmatch(out)
			c := loadConnected.FindSubmatch(out)
			if m == nil || c == nil || string(c[1]) != strconv.Itoa(viewers) {
				b.Fatalf("%s: cordon-load summary not understood or not every viewer connected", mode.name)
			}
			packets, _ := strconv.ParseFloat(string(m[1]), 64)
			idle := time.Duration(float64(idleCPU) * wall.Seconds() / idleWall.Seconds())
			netCPU := (cpu - idle).Seconds()
			viewerMin := float64(viewers) * wall.Minutes()
			b.Logf("%s: window %v, CPU %v (idle-equivalent %v), %d mallocs, %.0f packets delivered",
				mode.name, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), idle.Round(time.Millisecond), mallocs, packets)
			b.ReportMetric(netCPU/viewerMin, mode.name+"-cpu-s/viewer-min")
			b.ReportMetric(cpu.Seconds()/viewerMin, mode.name+"-gross-cpu-s/viewer-min")
			b.ReportMetric((float64(mallocs)-float64(idleMallocs)*wall.Seconds()/idleWall.Seconds())/packets, mode.name+"-allocs/pkt")
		}
	}
	b.ReportMetric(0, "ns/op")
}
