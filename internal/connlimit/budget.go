package connlimit

import (
	"fmt"
	"sort"
	"strings"
)

// Descriptor budget: the connection caps must leave room for what the
// gateway needs besides operator connections — above all the cameras'
// RTSP connections (TCP, or an RTSP connection plus RTP/RTCP UDP socket
// pairs per track), and the process's own files (audit log, listeners,
// state, the UDP media socket, DNS/NTP). Checked at start against the
// open-file limit (RLIMIT_NOFILE; Go raises the soft limit to the hard
// one at start), so that operators at the caps can never starve a camera.
const (
	// PerCameraDescriptors reserved for each configured camera: its RTSP
	// connection, up to three RTP/RTCP UDP pairs, and headroom for a
	// reconnect overlapping the old connection's close.
	PerCameraDescriptors = 8
	// BaseDescriptors reserved for the process itself.
	BaseDescriptors = 128
)

// Budget is what CheckBudget compares with the open-file limit.
type Budget struct {
	// Totals are the total caps by config field ("limits.http.total").
	// A cap of 0 (unlimited) cannot be budgeted and is an error.
	Totals  map[string]int
	Cameras int
}

// Need returns the descriptors the budget needs.
func (b Budget) Need() int {
	n := BaseDescriptors + PerCameraDescriptors*b.Cameras
	for _, v := range b.Totals {
		n += v
	}
	return n
}

// CheckBudget returns an error naming the fields when the caps plus the
// reserves exceed limit (the process's open-file limit).
func CheckBudget(b Budget, limit uint64) error {
	fields := make([]string, 0, len(b.Totals))
	for f, v := range b.Totals {
		if v <= 0 {
			return fmt.Errorf("%s: must be set (above 0) so that descriptors stay for the cameras", f)
		}
		fields = append(fields, f)
	}
	sort.Strings(fields)
	need := b.Need()
	if uint64(need) <= limit {
		return nil
	}
	return fmt.Errorf("%s (%d) + %d per camera × %d cameras + %d for the process = %d exceeds the open-file limit %d: lower the totals or raise the limit (systemd LimitNOFILE=, ulimit -n)",
		strings.Join(fields, " + "), need-BaseDescriptors-PerCameraDescriptors*b.Cameras, PerCameraDescriptors, b.Cameras, BaseDescriptors, need, limit)
}
