package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// report is the summary of a run; JSON field names are what `compare`
// reads.
type report struct {
	Mode      string `json:"mode"` // "viewers" or "joins"
	Viewers   int    `json:"viewers"`
	Connected int    `json:"connected"`
	Failed    int    `json:"failed"`
	// time to first frame (request to the first complete keyframe), ms
	TTFF dist `json:"ttff_ms"`
	// viewers whose first decoded access unit was a keyframe
	FirstAUKey int `json:"first_au_key"`
	// frames/s per viewer over the steady window
	FPS      dist    `json:"fps"`
	FullFPS  float64 `json:"full_fps"`
	FullRate int     `json:"full_rate"` // viewers at >= FullFPS
	// packets never received: in all, in each viewer's first 3 s
	Lost             int64 `json:"lost"`
	LostEarly        int64 `json:"lost_early"`
	LostEarlyViewers int   `json:"lost_early_viewers"` // viewers with a loss in their first 3 s
	LostEarlyPer     dist  `json:"lost_early_per_viewer"`
	// each viewer's 95th percentile of the time between frames, ms
	FrameGapP95 dist `json:"frame_gap_p95_ms"`
	// kernel drops on the viewers' sockets
	Drops        int64          `json:"socket_drops"`
	DropsViewers int            `json:"socket_drops_viewers"`
	Frames       int64          `json:"frames"`
	Packets      int64          `json:"packets"`
	Bytes        int64          `json:"bytes"`
	Window       float64        `json:"window_s"`
	Errors       map[string]int `json:"errors,omitempty"`
	// SlowJoins (joins only): the phases of each join whose first frame
	// took longer than slowJoin, or never came
	SlowJoins []string `json:"slow_joins,omitempty"`
}

// slowJoin: a join slower than this has its phases reported.
const slowJoin = 300 * time.Millisecond

// dist summarizes a per-viewer figure.
type dist struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	P5   float64 `json:"p5"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func distOf(v []float64) dist {
	if len(v) == 0 {
		return dist{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return dist{N: len(s), Min: s[0], P5: at(0.05), P50: at(0.5), P95: at(0.95), Max: s[len(s)-1], Mean: sum / float64(len(s))}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// summarize turns the clients' counters into the report.
func summarize(o options, clients []*client, window time.Duration) *report {
	r := &report{Mode: "viewers", Viewers: len(clients), Window: window.Seconds(), FullFPS: o.fullFPS, Errors: map[string]int{}}
	var ttff, fps, early, gaps []float64
	for _, c := range clients {
		r.Frames += c.frames.Load()
		r.Packets += c.packets.Load()
		r.Bytes += c.bytes.Load()
		r.Lost += c.lost.Load()
		r.Drops += c.drops.Load()
		if c.drops.Load() > 0 {
			r.DropsViewers++
		}
		if e, ok := c.err.Load().(string); ok {
			r.Failed++
			r.Errors[e]++
			continue
		}
		d := c.ttff.Load()
		if d <= 0 {
			r.Failed++
			r.Errors["no keyframe received"]++
			continue
		}
		r.Connected++
		ttff = append(ttff, ms(d))
		if c.firstAU.Load() == 1 {
			r.FirstAUKey++
		}
		le := c.lostEarly.Load()
		r.LostEarly += le
		early = append(early, float64(le))
		if le > 0 {
			r.LostEarlyViewers++
		}
		gaps = append(gaps, ms(c.gapP95.Load()))
		if window > 0 {
			f := float64(c.steady1-c.steady0) / window.Seconds()
			fps = append(fps, f)
			if f >= o.fullFPS {
				r.FullRate++
			}
		}
	}
	r.TTFF, r.FPS, r.LostEarlyPer, r.FrameGapP95 = distOf(ttff), distOf(fps), distOf(early), distOf(gaps)
	return r
}

func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "viewers: %d requested, %d connected, %d failed\n", r.Viewers, r.Connected, r.Failed)
	fmt.Fprintf(out, "time to first frame: p50 %.1f ms, p95 %.1f ms, max %.1f ms; first decoded access unit a keyframe: %d of %d\n",
		r.TTFF.P50, r.TTFF.P95, r.TTFF.Max, r.FirstAUKey, r.Connected)
	if r.FPS.N > 0 {
		fmt.Fprintf(out, "frames/s per viewer over %.0f s: mean %.1f, p5 %.1f, min %.1f, max %.1f; at >= %.0f fps: %d of %d\n",
			r.Window, r.FPS.Mean, r.FPS.P5, r.FPS.Min, r.FPS.Max, r.FullFPS, r.FullRate, r.Viewers)
	}
	fmt.Fprintf(out, "sequence gaps: %d packets lost (%d in the viewers' first 3 s, %d viewers; per viewer p50 %.0f, max %.0f)\n",
		r.Lost, r.LostEarly, r.LostEarlyViewers, r.LostEarlyPer.P50, r.LostEarlyPer.Max)
	fmt.Fprintf(out, "frame gap p95 per viewer: p50 %.1f ms, max %.1f ms; socket drops: %d (%d viewers)\n",
		r.FrameGapP95.P50, r.FrameGapP95.Max, r.Drops, r.DropsViewers)
	fmt.Fprintf(out, "frames: %d, packets: %d, %.1f Mbit\n", r.Frames, r.Packets, float64(r.Bytes)*8/1e6)
	for e, n := range r.Errors {
		fmt.Fprintf(out, "error (%d viewers): %s\n", n, e)
	}
}

func (r *report) writeJSON(out io.Writer) {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}
