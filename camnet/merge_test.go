package camnet

import (
	"testing"
	"time"
)

// Two nodes' reports become one line per camera: counts added, times
// widened, vendors and names merged by id, remotes united.
func TestMergeEgress(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { x := t0.Add(time.Duration(s) * time.Second); return &x }
	a := []CameraEgress{
		{Camera: "gate", Queries: 3, FirstSeen: at(10), LastSeen: at(20),
			Vendors:  []VendorHits{{Vendor: "hikvision", Name: "Hik-Connect", Queries: 3, LastSeen: *at(20)}},
			TopNames: []NameHits{{Name: "litedev.hik-connect.com", Vendor: "hikvision", Queries: 3, LastSeen: *at(20)}},
			Remotes:  []string{"10.20.0.12"}},
		{Camera: "yard", Vendors: []VendorHits{}, TopNames: []NameHits{}, Remotes: []string{}},
	}
	b := []CameraEgress{
		{Camera: "gate", Queries: 2, FirstSeen: at(5), LastSeen: at(15),
			Vendors:  []VendorHits{{Vendor: "hikvision", Name: "Hik-Connect", Queries: 1, LastSeen: *at(15)}},
			TopNames: []NameHits{{Name: "litedev.hik-connect.com", Vendor: "hikvision", Queries: 1, LastSeen: *at(15)}, {Name: "pool.ntp.org", Vendor: "ntp", Queries: 1, LastSeen: *at(6)}},
			Remotes:  []string{"10.20.0.12", "10.20.0.99"}},
	}
	m := MergeEgress(a, b)
	if len(m) != 2 || m[0].Camera != "gate" || m[1].Camera != "yard" {
		t.Fatalf("cameras %+v", m)
	}
	g := m[0]
	if g.Queries != 5 || !g.FirstSeen.Equal(*at(5)) || !g.LastSeen.Equal(*at(20)) {
		t.Fatalf("gate %d queries, %v..%v", g.Queries, g.FirstSeen, g.LastSeen)
	}
	if len(g.Vendors) != 1 || g.Vendors[0].Queries != 4 || !g.Vendors[0].LastSeen.Equal(*at(20)) {
		t.Fatalf("vendors %+v", g.Vendors)
	}
	if len(g.TopNames) != 2 || g.TopNames[0].Name != "litedev.hik-connect.com" || g.TopNames[0].Queries != 4 {
		t.Fatalf("names %+v", g.TopNames)
	}
	if len(g.Remotes) != 2 {
		t.Fatalf("remotes %v", g.Remotes)
	}
	if y := m[1]; y.FirstSeen != nil || y.Vendors == nil || y.Remotes == nil {
		t.Fatalf("a camera without queries: %+v", y)
	}
	if a[0].Queries != 3 || len(b[0].TopNames) != 2 {
		t.Fatal("MergeEgress changed its input")
	}
}
