package cluster

import (
	"slices"
)

// Rendezvous (highest random weight) hashing: every node computes the same
// ranking of the live members for a camera from the member list alone, so
// the preferred owner of each camera is agreed without any coordination,
// cameras spread evenly, and a member joining or leaving moves only the
// cameras it wins or held (about 1/N of them).

// weight is the rendezvous weight of node for camera: FNV-1a over
// node, 0xff, camera, then the splitmix64 finalizer to spread the bits.
func weight(node, camera string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(node); i++ {
		h = (h ^ uint64(node[i])) * prime
	}
	h = (h ^ 0xff) * prime // separator: 0xff never occurs in ids
	for i := 0; i < len(camera); i++ {
		h = (h ^ uint64(camera[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// ranking returns members ordered by their weight for camera, best first
// (ties, which need a 64-bit collision, broken by id).
func ranking(members []string, camera string) []string {
	out := slices.Clone(members)
	w := make(map[string]uint64, len(out))
	for _, m := range out {
		w[m] = weight(m, camera)
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case w[a] > w[b]:
			return -1
		case w[a] < w[b]:
			return 1
		}
		return compareStrings(a, b)
	})
	return out
}

// rankOf returns node's place in camera's ranking over members (0 = the
// preferred owner), or -1 when node is not a member.
func rankOf(members []string, camera, node string) int {
	mine := weight(node, camera)
	found := false
	r := 0
	for _, m := range members {
		if m == node {
			found = true
			continue
		}
		if w := weight(m, camera); w > mine || (w == mine && m < node) {
			r++
		}
	}
	if !found {
		return -1
	}
	return r
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
