package cluster

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkReconcilePass: one steady-state ownership pass over 10,000
// cameras on three nodes (every camera owned, nothing to do), without
// etcd: the cost every change and tick pays.
func BenchmarkReconcilePass(b *testing.B) {
	n := &Node{Self: Member{ID: "b", Advertise: "127.0.0.1"}, Endpoints: []string{"x"}, Handler: HandlerFunc(func(Owner) {}),
		LeaseTTL: 5 * time.Second}
	if err := n.setDefaults(); err != nil {
		b.Fatal(err)
	}
	n.m = newMirror(nil, n.k, slog.New(slog.DiscardHandler))
	members := []string{"a", "b", "c"}
	n.m.dirs[nodesDir] = map[string]*mirrorEntry{}
	for i, id := range members {
		n.m.dirs[nodesDir][id] = &mirrorEntry{lease: clientv3.LeaseID(i + 1), value: Member{ID: id, Advertise: "127.0.0.1"}}
	}
	n.m.dirs[ownersDir] = map[string]*mirrorEntry{}
	var cams []string
	for i := range 10000 {
		c := fmt.Sprintf("cam-%05d", i)
		cams = append(cams, c)
		owner := ranking(members, c)[0]
		lease := clientv3.LeaseID(1 + slicesIndex(members, owner))
		n.m.dirs[ownersDir][c] = &mirrorEntry{lease: lease, value: ownerValue{Node: owner}}
	}
	n.SetCameras(cams)
	n.m.synced, n.m.rev = true, 10
	n.lease, n.leaseRev, n.registeredAt, n.lastRenew = 2, 5, time.Now().Add(-time.Hour), time.Now()
	n.health = Health{}
	n.reconcile() // the first pass tells the handler about every camera
	b.ResetTimer()
	for b.Loop() {
		if !n.reconcile() {
			b.Fatal("pass skipped")
		}
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
