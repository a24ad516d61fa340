package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The comparison's output: the README's "Measured" table (one figure per
// row, a column per server, the ratio cordon / peer, the command that
// reproduces the row) and the sweep behind the CPU, knee and memory rows.

// cell is one figure: its text and the number the ratio is taken of (NaN:
// no ratio).
type cell struct {
	text string
	v    float64
}

func na() cell { return cell{text: "–", v: math.NaN()} }

func (r *results) cell(name string, f func(string) (cell, bool)) cell {
	c, ok := f(name)
	if !ok {
		return na()
	}
	return c
}

// perViewerMin is CPU seconds per viewer-minute.
func perViewerMin(m measured, viewers int) float64 {
	if m.window <= 0 || viewers == 0 {
		return math.NaN()
	}
	return m.serverCPU.Seconds() / (float64(viewers) * m.window.Minutes())
}

// perFrame is the server's CPU microseconds per frame the viewers
// received in the steady window (mean frames/s × viewers × window).
func perFrame(m measured) float64 {
	frames := m.rep.FPS.Mean * float64(m.rep.FPS.N) * m.window.Seconds()
	if frames <= 0 {
		return math.NaN()
	}
	return float64(m.serverCPU.Microseconds()) / frames
}

// knee is the largest sweep point with every viewer connected and 95% of
// them at full frame rate.
func (r *results) knee(name string) (int, bool) {
	best, any := 0, false
	for n, m := range r.sweep[name] {
		any = true
		if m.rep.Failed == 0 && float64(m.rep.FullRate) >= 0.95*float64(n) && n > best {
			best = n
		}
	}
	return best, any
}

type row struct {
	figure, reproduce string
	f                 func(string) (cell, bool)
}

func (r *results) rows(o compareOpts) []row {
	rows := r.fixedRows(o)
	// the RTSP rows go before the ingest rows (the last two)
	at := len(rows) - 2
	return slices.Concat(rows[:at], r.rtspRows(o), rows[at:])
}

// rtspRows: CPU per reader-minute at each reader count and, given two or
// more counts, the CPU each reader adds (the slope from the smallest to the
// largest count): the server's fixed cost per camera (reading, sanitizing
// and re-packetizing it) is in the first and not in the second.
func (r *results) rtspRows(o compareOpts) []row {
	var rows []row
	command := func(counts string) string {
		c := "make bench-compare ROWS=rtsp RTSP_READERS=" + counts
		if o.together {
			c += " RTSP_TOGETHER=1"
		}
		return c
	}
	for _, k := range o.readers {
		rows = append(rows, row{fmt.Sprintf("RTSP/TCP re-serve CPU-s per reader-minute, %d readers", k), command(fmt.Sprint(k)), func(n string) (cell, bool) {
			m, ok := r.rtsp[n][k]
			v := perViewerMin(m, k)
			txt := fmt.Sprintf("%.3f (%d connected, %.1f fps)", v, m.rep.Connected, m.rep.FPS.Mean)
			if m.rep.Connected != k {
				v = math.NaN() // not comparable: no ratio
			}
			return cell{txt, v}, ok
		}})
	}
	if len(o.readers) < 2 {
		return rows
	}
	a, b := o.readers[0], o.readers[len(o.readers)-1]
	rows = append(rows, row{fmt.Sprintf("RTSP/TCP CPU-s per added reader-minute (slope %d → %d readers)", a, b), command(fmt.Sprintf("%d,%d", a, b)), func(n string) (cell, bool) {
		ma, ok1 := r.rtsp[n][a]
		mb, ok2 := r.rtsp[n][b]
		if !ok1 || !ok2 || ma.window <= 0 || mb.window <= 0 || ma.rep.Connected != a || mb.rep.Connected != b {
			return cell{}, false
		}
		// CPU per minute of window at each count, then the slope
		v := (mb.serverCPU.Seconds()/mb.window.Minutes() - ma.serverCPU.Seconds()/ma.window.Minutes()) / float64(b-a)
		return cell{fmt.Sprintf("%.4f", v), v}, true
	}}, row{fmt.Sprintf("memory per RTSP/TCP reader (RSS slope %d → %d readers)", a, b), command(fmt.Sprintf("%d,%d", a, b)), func(n string) (cell, bool) {
		ma, ok1 := r.rtsp[n][a]
		mb, ok2 := r.rtsp[n][b]
		v := float64(mb.rss-ma.rss) / float64(b-a) / 1024
		return cell{fmt.Sprintf("%.0f KiB", v), v}, ok1 && ok2 && ma.rss > 0 && mb.rss > 0
	}})
	return rows
}

// fixedRows are the rows whose figures do not depend on option lists.
func (r *results) fixedRows(o compareOpts) []row {
	joins, pts := fmt.Sprint(o.joins), fmt.Sprint(200)
	return []row{
		{"time to first frame p50 / p95 (" + joins + " joins, idle)", "make bench-compare ROWS=join", func(n string) (cell, bool) {
			m, ok := r.join[n]
			return cell{fmt.Sprintf("%.0f / %.0f ms", m.rep.TTFF.P50, m.rep.TTFF.P95), m.rep.TTFF.P50}, ok && m.rep.TTFF.N > 0
		}},
		{"first decoded access unit a keyframe", "make bench-compare ROWS=join", func(n string) (cell, bool) {
			m, ok := r.join[n]
			return cell{fmt.Sprintf("%d of %d", m.rep.FirstAUKey, m.rep.Viewers), math.NaN()}, ok
		}},
		{"packets lost per WHEP join, first 3 s (mean / max; socket drops)", "make bench-compare ROWS=join", func(n string) (cell, bool) {
			m, ok := r.join[n]
			return cell{fmt.Sprintf("%.1f / %.0f (%d)", m.rep.LostEarlyPer.Mean, m.rep.LostEarlyPer.Max, m.rep.Drops), m.rep.LostEarlyPer.Mean}, ok
		}},
		{"WHEP CPU-s per viewer-minute, " + pts + " viewers", "make bench-compare ROWS=sweep POINTS=" + pts, func(n string) (cell, bool) {
			m, ok := r.sweep[n][200]
			v := perViewerMin(m, 200)
			return cell{fmt.Sprintf("%.3f", v), v}, ok
		}},
		{"WHEP server CPU-µs per frame delivered to a viewer, " + pts + " viewers (fair when the shared core starves a server; mean fps)", "make bench-compare ROWS=sweep POINTS=" + pts, func(n string) (cell, bool) {
			m, ok := r.sweep[n][200]
			v := perFrame(m)
			return cell{fmt.Sprintf("%.1f (%.1f fps)", v, m.rep.FPS.Mean), v}, ok && !math.IsNaN(v)
		}},
		{"viewers at full frame rate on one core (95% at >= 24 fps)", "make bench-compare ROWS=sweep", func(n string) (cell, bool) {
			k, ok := r.knee(n)
			txt := fmt.Sprint(k)
			if k == maxOf(r.sweep[n]) {
				txt = fmt.Sprintf(">= %d (largest point)", k)
			}
			return cell{txt, float64(k)}, ok
		}},
		{"memory per 1080p WHEP viewer (RSS slope 10 → 200)", "make bench-compare ROWS=sweep POINTS=10,200", func(n string) (cell, bool) {
			a, ok1 := r.sweep[n][10]
			b, ok2 := r.sweep[n][200]
			v := float64(b.rss-a.rss) / 190 / 1024
			return cell{fmt.Sprintf("%.0f KiB", v), v}, ok1 && ok2
		}},
		{fmt.Sprintf("join p50 / p95 beside %d viewers (%d joins; lost in first 3 s)", joinLoadViewers, joinLoadJoins), "make bench-compare ROWS=joinload", func(n string) (cell, bool) {
			m, ok := r.joinLoad[n]
			return cell{fmt.Sprintf("%.0f / %.0f ms (%d)", m.rep.TTFF.P50, m.rep.TTFF.P95, m.rep.LostEarly), m.rep.TTFF.P95}, ok && m.rep.TTFF.N > 0
		}},
		{fmt.Sprintf("ingest CPU %% per camera, 720p 2 Mbit/s, %d cameras", o.cameras), "make bench-compare ROWS=ingest", func(n string) (cell, bool) {
			m, ok := r.ingest[n]
			v := 100 * m.serverCPU.Seconds() / m.window.Seconds() / float64(o.cameras)
			return cell{fmt.Sprintf("%.2f", v), v}, ok && m.window > 0
		}},
		{"memory per camera (RSS slope 1 → " + fmt.Sprint(o.cameras) + " cameras)", "make bench-compare ROWS=ingest", func(n string) (cell, bool) {
			a, ok1 := r.ingestOne[n]
			b, ok2 := r.ingest[n]
			v := float64(b.rss-a.rss) / float64(max(1, o.cameras-1)) / (1 << 20)
			return cell{fmt.Sprintf("%.2f MiB", v), v}, ok1 && ok2
		}},
	}
}

func maxOf(m map[int]measured) int {
	best := 0
	for n := range m {
		best = max(best, n)
	}
	return best
}

func (r *results) markdown(o compareOpts) string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "Measured %s on %s (%d cores), Linux %s; load average %.1f at the start, %.1f at the end (the machine is shared:\n",
		time.Now().UTC().Format("2006-01-02"), m.cpu, m.cores, m.kernel, r.loadDuring[0], r.loadDuring[1])
	if o.together && len(o.rows) == 1 && o.rows["rtsp"] {
		b.WriteString("the servers run at once, each read by its own clients and measured in the same window, so compare the ratios). They are pinned to\n")
	} else {
		b.WriteString("servers run one after the other, alternated point by point, so compare the ratios). Each server is pinned to\n")
	}
	fmt.Fprintf(&b, "core %d (`taskset`), the camera (ffmpeg looping a 1080p25 H.264 4 Mbit/s clip, GOP 2 s) and the clients to core %d.\n\n", o.serverCPU, o.clientCPU)
	if m := math.Max(r.loadDuring[0], r.loadDuring[1]); m > 0.5 {
		fmt.Fprintf(&b, "**Warning: load average up to %.1f from other work while measured; absolute figures are noisy.**\n\n", m)
	}
	head := "| figure |"
	sep := "| --- |"
	for _, t := range r.targets {
		head += " " + t + " |"
		sep += " --- |"
	}
	for _, t := range r.targets[1:] { // one ratio column per peer
		head += " ratio " + r.targets[0] + " / " + t + " |"
		sep += " --- |"
	}
	b.WriteString(head + " reproduce |\n" + sep + " --- |\n")
	for _, rw := range r.rows(o) {
		var cells []cell
		have := false
		for _, t := range r.targets {
			c := r.cell(t, rw.f)
			have = have || c.text != "–"
			cells = append(cells, c)
		}
		if !have {
			continue
		}
		line := "| " + rw.figure + " |"
		for _, c := range cells {
			line += " " + c.text + " |"
		}
		for _, c := range cells[1:] {
			ratio := "–"
			if q := cells[0].v / c.v; !math.IsNaN(q) && !math.IsInf(q, 0) {
				ratio = fmt.Sprintf("%.2f×", q)
			}
			line += " " + ratio + " |"
		}
		b.WriteString(line + " `" + rw.reproduce + "` |\n")
	}
	r.sweepTable(&b)
	return b.String()
}

// sweepTable lists every sweep point.
func (r *results) sweepTable(b *strings.Builder) {
	if len(r.sweep[r.targets[0]]) == 0 {
		return
	}
	b.WriteString("\nSweep (light WHEP clients; CPU-s per viewer-minute, server process; fps p5; viewers >= 24 fps; lost packets; socket drops; RSS; client core busy):\n\n")
	b.WriteString("| viewers | server | CPU-s/viewer-min | core % | fps p5 | full rate | lost | drops | RSS MB | client CPU % |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	var points []int
	for n := range r.sweep[r.targets[0]] {
		points = append(points, n)
	}
	for _, n := range slices.Sorted(slices.Values(points)) {
		for _, t := range r.targets {
			m, ok := r.sweep[t][n]
			if !ok {
				continue
			}
			w := m.window.Seconds()
			fmt.Fprintf(b, "| %d | %s | %.3f | %.0f | %.1f | %d | %d | %d | %d | %.0f |\n", n, t, perViewerMin(m, n), 100*m.serverCPU.Seconds()/w,
				m.rep.FPS.P5, m.rep.FullRate, m.rep.Lost, m.rep.Drops, m.rss>>20, 100*m.clientCPU.Seconds()/w)
		}
	}
}
