package camnet

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"cordon/internal/httpx"
)

// CameraEgress is one camera's line of the egress report (GET
// /api/v1/egress): what it tried to resolve through the sinkhole.
type CameraEgress struct {
	// Camera is the camera id, or "unknown" for unconfigured sources.
	Camera string `json:"camera"`
	// Queries counts all DNS queries seen from the camera.
	Queries uint64 `json:"queries"`
	// FirstSeen and LastSeen bound the queries; nil when there were none.
	FirstSeen *time.Time `json:"first_seen"`
	LastSeen  *time.Time `json:"last_seen"`
	// Vendors are the vendor clouds matched, most queried first.
	Vendors []VendorHits `json:"vendors"`
	// TopNames are the most queried names (bounded), most queried first.
	TopNames []NameHits `json:"top_names"`
	// Remotes are the source addresses seen (bounded); for "unknown" this
	// is how an admin finds the device.
	Remotes []string `json:"remotes"`
}

// VendorHits counts queries for one vendor cloud.
type VendorHits struct {
	Vendor   string    `json:"vendor"`
	Name     string    `json:"name"`
	Queries  uint64    `json:"queries"`
	LastSeen time.Time `json:"last_seen"`
}

// NameHits counts queries for one DNS name.
type NameHits struct {
	Name     string    `json:"name"`
	Vendor   string    `json:"vendor"`
	Queries  uint64    `json:"queries"`
	LastSeen time.Time `json:"last_seen"`
}

type camStats struct {
	queries     uint64
	first, last time.Time
	vendors     map[string]*VendorHits
	names       map[string]*NameHits
	remotes     map[string]struct{}
}

func newCamStats(now time.Time) *camStats {
	return &camStats{
		first:   now,
		vendors: map[string]*VendorHits{},
		names:   map[string]*NameHits{},
		remotes: map[string]struct{}{},
	}
}

func (c *camStats) add(now time.Time, name, vendorID, vendorName, remote string, maxNames int) {
	c.queries++
	c.last = now
	if vendorID != VendorNone {
		v := c.vendors[vendorID]
		if v == nil {
			v = &VendorHits{Vendor: vendorID, Name: vendorName}
			c.vendors[vendorID] = v
		}
		v.Queries++
		v.LastSeen = now
	}
	n := c.names[name]
	if n == nil {
		if len(c.names) >= maxNames {
			c.evictName()
		}
		n = &NameHits{Name: name, Vendor: vendorID}
		c.names[name] = n
	}
	n.Queries++
	n.LastSeen = now
	if _, ok := c.remotes[remote]; !ok && len(c.remotes) < maxRemotesPerCamera {
		c.remotes[remote] = struct{}{}
	}
}

// evictName drops the least queried name (oldest on ties), so names that a
// camera keeps asking for stay in the report while one-off noise churns.
func (c *camStats) evictName() {
	var victim *NameHits
	for _, n := range c.names {
		if victim == nil || n.Queries < victim.Queries ||
			(n.Queries == victim.Queries && n.LastSeen.Before(victim.LastSeen)) {
			victim = n
		}
	}
	if victim != nil {
		delete(c.names, victim.Name)
	}
}

// Report returns the egress report: one entry per configured camera (also
// those with no queries) and per other camera id seen, "unknown" included,
// sorted by camera id.
func (s *Sinkhole) Report() []CameraEgress {
	s.setup()
	configured := s.configuredCameras()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CameraEgress, 0, len(s.stats)+len(configured))
	seen := map[string]bool{}
	for id, st := range s.stats {
		seen[id] = true
		out = append(out, st.report(id))
	}
	for _, id := range configured {
		if !seen[id] {
			seen[id] = true
			out = append(out, CameraEgress{Camera: id, Vendors: []VendorHits{}, TopNames: []NameHits{}, Remotes: []string{}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Camera < out[j].Camera })
	return out
}

func (c *camStats) report(id string) CameraEgress {
	first, last := c.first.UTC(), c.last.UTC()
	e := CameraEgress{Camera: id, Queries: c.queries, FirstSeen: &first, LastSeen: &last,
		Vendors: []VendorHits{}, TopNames: []NameHits{}, Remotes: []string{}}
	for _, v := range c.vendors {
		v := *v
		v.LastSeen = v.LastSeen.UTC()
		e.Vendors = append(e.Vendors, v)
	}
	sort.Slice(e.Vendors, func(i, j int) bool {
		if e.Vendors[i].Queries != e.Vendors[j].Queries {
			return e.Vendors[i].Queries > e.Vendors[j].Queries
		}
		return e.Vendors[i].Vendor < e.Vendors[j].Vendor
	})
	for _, n := range c.names {
		n := *n
		n.LastSeen = n.LastSeen.UTC()
		e.TopNames = append(e.TopNames, n)
	}
	sort.Slice(e.TopNames, func(i, j int) bool {
		if e.TopNames[i].Queries != e.TopNames[j].Queries {
			return e.TopNames[i].Queries > e.TopNames[j].Queries
		}
		return e.TopNames[i].Name < e.TopNames[j].Name
	})
	if len(e.TopNames) > DefaultReportTopNames {
		e.TopNames = e.TopNames[:DefaultReportTopNames]
	}
	for r := range c.remotes {
		e.Remotes = append(e.Remotes, r)
	}
	sort.Strings(e.Remotes)
	return e
}

// ReportHandler serves Report as JSON (a JSON array of CameraEgress) for GET
// and HEAD; other methods get 405. Authentication and the admin check are
// the gateway's: mount it behind them.
func (s *Sinkhole) ReportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.WriteError(w, http.StatusMethodNotAllowed, "method not allowed; use GET")
			return
		}
		body, err := json.Marshal(s.Report())
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, "could not build the egress report")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(append(body, '\n'))
	})
}
