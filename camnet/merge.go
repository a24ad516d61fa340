package camnet

import (
	"sort"
	"time"
)

// MergeEgress merges egress reports of several gateways (the nodes of a
// cluster, each with its own sinkhole view) into one line per camera:
// queries and hits added up, first and last seen widened, vendors and
// names merged by id, remotes united (bounded as in one report). The
// reports are not changed.
func MergeEgress(reports ...[]CameraEgress) []CameraEgress {
	byCam := map[string]*CameraEgress{}
	vendors := map[string]map[string]*VendorHits{}
	names := map[string]map[string]*NameHits{}
	remotes := map[string]map[string]bool{}
	for _, rep := range reports {
		for _, e := range rep {
			m := byCam[e.Camera]
			if m == nil {
				m = &CameraEgress{Camera: e.Camera}
				byCam[e.Camera] = m
				vendors[e.Camera], names[e.Camera], remotes[e.Camera] = map[string]*VendorHits{}, map[string]*NameHits{}, map[string]bool{}
			}
			m.Queries += e.Queries
			m.FirstSeen = earliest(m.FirstSeen, e.FirstSeen)
			m.LastSeen = latest(m.LastSeen, e.LastSeen)
			for _, v := range e.Vendors {
				x := vendors[e.Camera][v.Vendor]
				if x == nil {
					x = &VendorHits{Vendor: v.Vendor, Name: v.Name}
					vendors[e.Camera][v.Vendor] = x
				}
				x.Queries += v.Queries
				if v.LastSeen.After(x.LastSeen) {
					x.LastSeen = v.LastSeen
				}
			}
			for _, n := range e.TopNames {
				x := names[e.Camera][n.Name]
				if x == nil {
					x = &NameHits{Name: n.Name, Vendor: n.Vendor}
					names[e.Camera][n.Name] = x
				}
				x.Queries += n.Queries
				if n.LastSeen.After(x.LastSeen) {
					x.LastSeen = n.LastSeen
				}
			}
			for _, r := range e.Remotes {
				if len(remotes[e.Camera]) < maxRemotesPerCamera {
					remotes[e.Camera][r] = true
				}
			}
		}
	}
	out := make([]CameraEgress, 0, len(byCam))
	for id, m := range byCam {
		m.Vendors, m.TopNames, m.Remotes = []VendorHits{}, []NameHits{}, []string{}
		for _, v := range vendors[id] {
			m.Vendors = append(m.Vendors, *v)
		}
		sort.Slice(m.Vendors, func(i, j int) bool {
			if m.Vendors[i].Queries != m.Vendors[j].Queries {
				return m.Vendors[i].Queries > m.Vendors[j].Queries
			}
			return m.Vendors[i].Vendor < m.Vendors[j].Vendor
		})
		for _, n := range names[id] {
			m.TopNames = append(m.TopNames, *n)
		}
		sort.Slice(m.TopNames, func(i, j int) bool {
			if m.TopNames[i].Queries != m.TopNames[j].Queries {
				return m.TopNames[i].Queries > m.TopNames[j].Queries
			}
			return m.TopNames[i].Name < m.TopNames[j].Name
		})
		if len(m.TopNames) > DefaultReportTopNames {
			m.TopNames = m.TopNames[:DefaultReportTopNames]
		}
		for r := range remotes[id] {
			m.Remotes = append(m.Remotes, r)
		}
		sort.Strings(m.Remotes)
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Camera < out[j].Camera })
	return out
}

func earliest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}

func latest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}
