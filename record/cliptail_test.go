package record

import "testing"

// trackWith builds a video track from samples in decode order, one frame
// interval (3000 ticks) apart, each presented at pts[i] frame intervals.
func trackWith(pts []int64, sync func(i int) bool) *trackOut {
	t := &trackOut{desc: trackDesc{Video: true, Timescale: 90000}}
	for i, p := range pts {
		dts := int64(i) * 3000
		t.add(dts, 100, int32(p*3000+6000-dts), sync(i), 3000)
		t.chunks = append(t.chunks, chunk{out: int64(i) * 100, samples: 1})
	}
	return t
}

// A clip that ends between an anchor frame and the B-frames shown before
// it loses the anchor (and only that): presentation has no hole.
func TestTrimOpenTail(t *testing.T) {
	key := func(i int) bool { return i == 0 }
	// I0 P3 B1 B2 P6 B4 B5 P9 | B7 B8 not in the clip
	tr := trackWith([]int64{0, 3, 1, 2, 6, 4, 5, 9}, key)
	if n := tr.trimOpenTail(); n != 1 || tr.count() != 7 || tr.last != 6*3000 || tr.lastDur != 3000 {
		t.Fatalf("trimmed %d, %d samples left, last %d dur %d", n, tr.count(), tr.last, tr.lastDur)
	}
	if got := tr.trimOpenTail(); got != 0 {
		t.Fatalf("a closed tail trimmed again (%d)", got)
	}
	var total uint32
	for _, r := range tr.ctts {
		total += r.count
	}
	if total != 7 || len(tr.sizes) != 7 || len(tr.chunks) != 7 || len(tr.sync) != 1 {
		t.Fatalf("tables after the trim: ctts %d sizes %d chunks %d sync %v", total, len(tr.sizes), len(tr.chunks), tr.sync)
	}
	// ending after P6 B4: the anchor and its first B go
	tr = trackWith([]int64{0, 3, 1, 2, 6, 4}, key)
	if n := tr.trimOpenTail(); n != 2 || tr.count() != 4 {
		t.Fatalf("trimmed %d, %d left", n, tr.count())
	}
	// a closed GOP end and a stream without reordering are left alone
	tr = trackWith([]int64{0, 3, 1, 2}, key)
	if n := tr.trimOpenTail(); n != 0 {
		t.Fatalf("closed tail trimmed %d", n)
	}
	tr = trackWith([]int64{0, 1, 2, 3, 4, 5}, key)
	if n := tr.trimOpenTail(); n != 0 || tr.count() != 6 {
		t.Fatalf("no reordering: trimmed %d", n)
	}
	// never below one sample
	tr = trackWith([]int64{0, 9}, key)
	if tr.trimOpenTail(); tr.count() < 1 {
		t.Fatal("trimmed everything")
	}
}
