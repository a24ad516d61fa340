package e2e

import (
	"slices"
	"testing"
	"time"

	"cordon/democam"
	"cordon/internal/testtool"
)

// BenchmarkClusterFailover: three cordon serve processes (default lease
// TTL, 5 s), one camera, a WHEP viewer on each node that does not own it;
// the owner is killed (SIGKILL) 5 times. For each kill: when the camera
// is owned by another node (from the survivors' API) and when the
// surviving viewers' frames flow again (the later of the two viewers).
// The killed node is started again between kills and the cluster left to
// settle (a restarted node may take the camera back after RebalanceDelay).
//
//	go test -run '^$' -bench ClusterFailover -benchtime 1x ./e2e/
func BenchmarkClusterFailover(b *testing.B) {
	const kills = 5
	e, bin := clFixture(b)
	cam := &democam.Camera{ID: "cam-f", Listen: "127.0.0.113:0", Path: "live", Username: "cam", Password: "cam-pw-f", DisableUDP: true}
	if err := cam.Initialize(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cam.Close)
	ids := []string{"node-a", "node-b", "node-c"}
	hosts := map[string]string{"node-a": "127.0.0.11", "node-b": "127.0.0.12", "node-c": "127.0.0.13"}
	c := clStartCluster(b, e, bin, clDemoCams([]*democam.Camera{cam}), ids...)
	c.admin = clLogin(b, c.nodes["node-a"].Base, clAdmin, clAdminPW)
	b.ResetTimer()
	for range b.N {
		var owned, video []time.Duration
		for k := range kills {
			var any *clNode
			for _, n := range c.nodes {
				any = n
			}
			owner := c.waitOwned(any, 60*time.Second, cam.ID)[cam.ID]
			var watches []*clWatch
			var survivor *clNode
			for _, id := range ids {
				if id == owner {
					continue
				}
				survivor = c.nodes[id]
				v, code, body := clDial(b, survivor.Base, cam.ID, c.admin)
				if v == nil {
					b.Fatalf("WHEP on %s: %d %s", id, code, body)
				}
				w := clWatchViewer(b, v)
				w.waitFrames(b, "frames on "+id, 10, 20*time.Second)
				watches = append(watches, w)
			}
			t0 := time.Now()
			c.nodes[owner].kill(b)
			testtool.WaitFor(b, 30*time.Second, "the camera owned by a survivor", func() bool {
				o := c.owners(survivor)[cam.ID]
				return o != "" && o != owner
			})
			owned = append(owned, time.Since(t0))
			var worst time.Duration
			for _, w := range watches {
				testtool.WaitFor(b, 30*time.Second, "frames after the kill", func() bool {
					_, ok := w.resumedAfter(t0, time.Second)
					return ok
				})
				d, _ := w.resumedAfter(t0, time.Second)
				worst = max(worst, d)
			}
			video = append(video, worst)
			b.Logf("kill %d of %s: owned elsewhere after %.2f s, video again after %.2f s", k+1, owner, owned[k].Seconds(), worst.Seconds())
			// start it again and let ownership settle before the next kill:
			// a restarted node takes back the cameras it wins only after the
			// rebalance delay (2 TTL), a time rather than an event to wait on
			c.start(owner, hosts[owner])
			time.Sleep(2*5*time.Second + 2*time.Second)
		}
		b.ReportMetric(percentile(video, 50).Seconds(), "video-p50-s")
		b.ReportMetric(slices.Max(video).Seconds(), "video-max-s")
		b.ReportMetric(percentile(owned, 50).Seconds(), "owned-p50-s")
		b.ReportMetric(slices.Max(owned).Seconds(), "owned-max-s")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkClusterRelay: what relaying costs. Two nodes, one camera at
// ~2 Mbit/s (ffmpeg, 640x360 15 fps, GOP 2 s). Three windows of the same
// length, CPU of each cordon process from /proc: idle (the owner pulls,
// nobody watches); one RTSP reader on the owner; the same reader on the
// other node, which then relays the camera from the owner. The relay's
// cost on the relaying node is its CPU in the last window minus its idle
// CPU minus what the reader itself cost on the owner; the owner's cost of
// serving the relay is its CPU in the last window minus its idle CPU.
//
//	go test -run '^$' -bench ClusterRelay -benchtime 1x ./e2e/
func BenchmarkClusterRelay(b *testing.B) {
	const window = 20 * time.Second
	e, bin := clFixture(b)
	clip := coreEncodeClip(b, b.TempDir(), "640x360", 8, 30, "2M")
	ff := startFFCam(b, "127.0.0.114", clip)
	c := clStartCluster(b, e, bin, []clCamera{{ID: "relay", URL: ff.URL()}}, "node-a", "node-b")
	c.admin = clLogin(b, c.nodes["node-a"].Base, clAdmin, clAdminPW)
	own := c.waitOwned(c.nodes["node-a"], 60*time.Second, "relay")["relay"]
	owner, relay := c.nodes["node-a"], c.nodes["node-b"]
	if own == "node-b" {
		owner, relay = relay, owner
	}
	cpu := func(n *clNode) float64 {
		s, err := clCPUSeconds(n.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	// measure runs fn for the window and returns each node's CPU share of one core
	measure := func(fn func()) (ownerCore, relayCore float64) {
		o0, r0, t0 := cpu(owner), cpu(relay), time.Now()
		fn()
		d := time.Since(t0).Seconds()
		return (cpu(owner) - o0) / d, (cpu(relay) - r0) / d
	}
	wait := func() { time.Sleep(window) } // the measurement window itself: CPU is sampled at its ends
	b.ResetTimer()
	for range b.N {
		wait() // settle after start-up
		idleO, idleR := measure(wait)
		var readerO float64
		readerO, _ = measure(func() {
			r := clDialRTSP(b, owner.RTSP, "relay", clAdmin, clAdminPW)
			r.w.waitFrames(b, "frames on the owner", 5, 20*time.Second)
			wait()
			r.c.Close()
		})
		var servePeer, relayed float64
		servePeer, relayed = measure(func() {
			r := clDialRTSP(b, relay.RTSP, "relay", clAdmin, clAdminPW)
			r.w.waitFrames(b, "relayed frames", 5, 20*time.Second)
			wait()
			r.c.Close()
		})
		in, _ := coreMetric(b, relay.Metrics, "cordon_ingest_bytes_total", `camera="relay"`)
		b.Logf("idle: owner %.2f%%, relay node %.2f%% of a core; reader on the owner: owner %.2f%%; reader on the relay node: owner %.2f%%, relay node %.2f%%; relay node ingested %.1f MB",
			idleO*100, idleR*100, readerO*100, servePeer*100, relayed*100, in/1e6)
		reader := readerO - idleO
		b.ReportMetric((relayed-idleR-reader)*100, "relay-%core")
		b.ReportMetric((servePeer-idleO)*100, "owner-serving-peer-%core")
		b.ReportMetric(reader*100, "rtsp-reader-%core")
	}
	b.ReportMetric(0, "ns/op")
}
