package cluster

import (
	"fmt"
	"slices"
	"testing"
)

// TestRankingSpreadsEvenly: 10,000 cameras over three nodes land within
// 5% of a third each.
func TestRankingSpreadsEvenly(t *testing.T) {
	nodes := []string{"cordon-0", "cordon-1", "cordon-2"}
	count := map[string]int{}
	for i := range 10000 {
		count[ranking(nodes, fmt.Sprintf("cam-%05d", i))[0]]++
	}
	for _, n := range nodes {
		if c := count[n]; c < 3166 || c > 3500 {
			t.Errorf("%s got %d of 10000 cameras: %v", n, c, count)
		}
	}
}

// TestRankingMovesOnlyToTheNewNode: when a fourth node joins, a camera's
// preferred owner changes only to the new node (about a quarter of them);
// when a node leaves, only its cameras move.
func TestRankingMovesOnlyToTheNewNode(t *testing.T) {
	three := []string{"a", "b", "c"}
	four := append(slices.Clone(three), "d")
	moved := 0
	for i := range 4000 {
		cam := fmt.Sprintf("gate-%d", i)
		before, after := ranking(three, cam)[0], ranking(four, cam)[0]
		if before != after {
			moved++
			if after != "d" {
				t.Fatalf("%s moved from %s to %s", cam, before, after)
			}
		}
		if left := ranking([]string{"a", "c"}, cam)[0]; before != "b" && left != before {
			t.Fatalf("%s moved from %s to %s when b left", cam, before, left)
		}
	}
	if moved < 800 || moved > 1200 {
		t.Errorf("%d of 4000 cameras moved to the fourth node, want about 1000", moved)
	}
}

// TestRankOf agrees with ranking, and every node computes the same
// ranking whatever the order of its member list.
func TestRankOf(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	for i := range 200 {
		cam := fmt.Sprintf("c%d", i)
		r := ranking(nodes, cam)
		rev := slices.Clone(nodes)
		slices.Reverse(rev)
		if !slices.Equal(r, ranking(rev, cam)) {
			t.Fatalf("ranking depends on member order for %s", cam)
		}
		for want, n := range r {
			if got := rankOf(nodes, cam, n); got != want {
				t.Fatalf("rankOf(%s, %s) = %d, ranking says %d", cam, n, got, want)
			}
		}
	}
	if rankOf(nodes, "c1", "stranger") != -1 {
		t.Fatal("a non-member has a rank")
	}
}

// BenchmarkReconcileRanking: one reconcile pass ranks every camera; 10,000
// cameras over 3 nodes.
func BenchmarkReconcileRanking(b *testing.B) {
	nodes := []string{"cordon-0", "cordon-1", "cordon-2"}
	cams := make([]string, 10000)
	for i := range cams {
		cams[i] = fmt.Sprintf("cam-%05d", i)
	}
	for b.Loop() {
		for _, c := range cams {
			_ = rankOf(nodes, c, "cordon-1")
		}
	}
}
