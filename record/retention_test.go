package record

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/democam"
)

// recordAt records n frames of camera cam on a virtual clock at wall.
func recordAt(t testing.TB, dir, cam string, wall time.Time, n int) {
	t.Helper()
	clock, vc := newVirtualClock(wall)
	r := &Recorder{Path: dir, Clock: clock, SegmentDuration: 4 * time.Second, Retain: 100 * 365 * 24 * time.Hour,
		QueueSamples: 1 << 16, Log: quietLog()}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := newClipSource(t, democam.ClipMain, n, false, vc)
	if err := r.StartCamera(cam, src); err != nil {
		t.Fatal(err)
	}
	src.waitDone(t, 30*time.Second)
	r.StopCamera(cam)
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	oldDay := now.Add(-40 * 24 * time.Hour)
	recordAt(t, dir, "gate", oldDay, 90)                    // 40 days old: goes
	recordAt(t, dir, "gate", now.Add(-30*24*time.Hour), 90) // 30 days old: stays
	recordAt(t, dir, "yard", oldDay, 90)
	reg := prometheus.NewRegistry()
	r := &Recorder{Path: dir, Log: quietLog(), Metrics: NewMetrics(reg)} // default retain: 31 days
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := os.Stat(filepath.Join(dir, "gate", oldDay.Format(dayLayout))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the expired day is still there: %v", err)
	}
	spans, _ := r.Spans("gate", now.Add(-60*24*time.Hour), now)
	if len(spans) != 1 || spans[0].Start.Before(now.Add(-31*24*time.Hour)) {
		t.Fatalf("spans after retention: %v", spans)
	}
	if got, _ := r.Spans("yard", oldDay.Add(-time.Hour), now); len(got) != 0 {
		t.Fatalf("yard spans after retention: %v", got)
	}
	if n := testutil.ToFloat64(r.Metrics.deleted.WithLabelValues("gate", "age")); n != 2 { // 6 s in 4 s segments
		t.Fatalf("deleted by age: %v", n)
	}
	oldest := testutil.ToFloat64(r.Metrics.oldest.WithLabelValues("gate"))
	if want := float64(spans[0].Start.UnixMilli()) / 1000; oldest != want {
		t.Fatalf("oldest gauge %v, want %v", oldest, want)
	}
}

func TestRetentionByQuota(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().UTC().Add(-time.Hour)
	recordAt(t, dir, "gate", base, 180)                    // 12 s: 3 segments
	recordAt(t, dir, "yard", base.Add(5*time.Second), 180) // starts later
	// an export on the same disk is never counted nor deleted
	exp := filepath.Join(dir, "_exports", "0123456789abcdef0123456789abcdef.zip")
	os.MkdirAll(filepath.Dir(exp), 0o750)
	os.WriteFile(exp, make([]byte, 1<<20), 0o640)

	type seg struct {
		cam   string
		start time.Time
		bytes int64
	}
	var all []seg
	var total int64
	for _, cam := range []string{"gate", "yard"} {
		r := &Recorder{Path: dir, Log: quietLog()}
		if err := r.Initialize(); err != nil {
			t.Fatal(err)
		}
		for _, s := range r.index(cam).segs {
			all = append(all, seg{cam, s.Start, s.Bytes})
			total += s.Bytes
		}
		r.Close()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	// room for all but the three oldest segments
	quota := total - all[0].bytes - all[1].bytes - all[2].bytes
	reg := prometheus.NewRegistry()
	r := &Recorder{Path: dir, MaxDiskBytes: quota, Log: quietLog(), Metrics: NewMetrics(reg)}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var left []seg
	var used int64
	for _, cam := range []string{"gate", "yard"} {
		for _, s := range r.index(cam).segs {
			left = append(left, seg{cam, s.Start, s.Bytes})
			used += s.Bytes
		}
	}
	sort.Slice(left, func(i, j int) bool { return left[i].start.Before(left[j].start) })
	if used > quota || len(left) != len(all)-3 || !left[0].start.Equal(all[3].start) {
		t.Fatalf("after the quota pass: %d of %d segments, %d bytes (quota %d); oldest left %v, want %v", len(left), len(all), used, quota, left[0], all[3])
	}
	if n := len(segmentFiles(t, dir, "gate")) + len(segmentFiles(t, dir, "yard")); n != len(left) {
		t.Fatalf("%d segment files on disk, %d in the index", n, len(left))
	}
	if _, err := os.Stat(exp); err != nil {
		t.Fatalf("quota removed an export: %v", err)
	}
	deleted := testutil.ToFloat64(r.Metrics.deleted.WithLabelValues("gate", "quota")) + testutil.ToFloat64(r.Metrics.deleted.WithLabelValues("yard", "quota"))
	if deleted != 3 {
		t.Fatalf("deleted by quota: %v", deleted)
	}
	disk := testutil.ToFloat64(r.Metrics.diskBytes.WithLabelValues("gate")) + testutil.ToFloat64(r.Metrics.diskBytes.WithLabelValues("yard"))
	if int64(disk) != used {
		t.Fatalf("disk gauge %v, want %d", disk, used)
	}
}
