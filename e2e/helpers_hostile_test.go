package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"cordon/config"
	"cordon/democam"
	"cordon/e2e/e2eutil"
	"cordon/internal/testtool"
)

// Hosts of the hostile-camera tests (no other e2e test uses them).
const (
	hsHonestHost  = "127.0.0.201"
	hsHostileHost = "127.0.0.202"
	hsTargetHost  = "127.0.0.203"
	hsCamPassword = "hostile-cam-Secret-9"
)

// hsRig is a gateway with an honest camera and a camera that turns
// hostile, an admin, and a live WHEP viewer on the honest camera.
type hsRig struct {
	g       *e2eutil.Gateway
	honest  *democam.Camera
	cam     *democam.HostileCamera
	target  *testtool.TCPSink
	token   string
	viewer  *e2eutil.Viewer
	arrived chan time.Time // arrival time of every AU the viewer gets
	stop    chan struct{}
	wg      sync.WaitGroup
}

// newHSRig starts the rig with both cameras honest and waits until both
// are online and the viewer receives frames.
func newHSRig(t *testing.T, camCfg func(*config.Camera)) *hsRig {
	t.Helper()
	r := &hsRig{target: testtool.NewTCPSink(t, hsTargetHost), arrived: make(chan time.Time, 1<<16), stop: make(chan struct{})}
	r.honest = coreCam(t, "honest", hsHonestHost, false)
	r.cam = &democam.HostileCamera{ID: "hostile", Listen: hsHostileHost + ":0", Username: "cam", Password: hsCamPassword}
	if err := r.cam.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cam.Close)
	hostile := config.Camera{ID: "hostile", URL: r.cam.URL(), Username: "cam", Password: hsCamPassword, Transport: "tcp"}
	if camCfg != nil {
		camCfg(&hostile)
	}
	cfg := e2eutil.Config(t, []e2eutil.Account{{Name: "root", Password: "root-pw-hs", Cameras: []string{"*"}, Admin: true}}, []config.Camera{
		{ID: "honest", URL: r.honest.URL(), Username: r.honest.Username, Password: r.honest.Password, Transport: "tcp"},
		hostile,
	})
	r.g = e2eutil.Start(t, cfg)
	r.token = e2eutil.Login(t, r.g.Base, "root", "root-pw-hs")
	v, st, body := e2eutil.Dial(t, r.g.Base, "honest", r.token, e2eutil.ViewerOptions{})
	if v == nil {
		t.Fatalf("WHEP POST: %d %s", st, body)
	}
	r.viewer = v
	v.NextAU(t, 15*time.Second)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case <-r.stop:
				return
			case <-v.AUs:
				select {
				case r.arrived <- time.Now():
				default:
				}
			}
		}
	}()
	t.Cleanup(r.close)
	e2eutil.WaitFor(t, 15*time.Second, "the hostile camera online", func() bool { return r.camera(t, "hostile").Online })
	return r
}

func (r *hsRig) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// hsCamera is an admin's view of a camera.
type hsCamera struct {
	ID        string `json:"id"`
	Online    bool   `json:"online"`
	LastError string `json:"last_error"`
}

func (r *hsRig) camera(t *testing.T, id string) hsCamera {
	t.Helper()
	st, _, body := e2eutil.Do(t, http.MethodGet, r.g.Base+"/api/v1/cameras", r.token, "", "")
	if st != http.StatusOK {
		t.Fatalf("GET /api/v1/cameras: %d %s", st, body)
	}
	var list []hsCamera
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("camera %s not listed: %s", id, body)
	return hsCamera{}
}

// auditLines counts the audit log's lines.
func hsAuditLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// hsSampler samples the live heap (after a GC) until stopped.
type hsSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

func hsLiveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func hsSample(every time.Duration) *hsSampler {
	s := &hsSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if h := hsLiveHeap(); h > s.peak.Load() {
				s.peak.Store(h)
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *hsSampler) end() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// longestGap drains the AU arrival times and returns the longest gap
// between consecutive ones since from, and between the last one and now.
func (r *hsRig) longestGap(from time.Time) (time.Duration, int) {
	var worst time.Duration
	last, n := from, 0
	for {
		select {
		case at := <-r.arrived:
			if at.Before(from) {
				continue
			}
			worst = max(worst, at.Sub(last))
			last = at
			n++
			continue
		default:
		}
		break
	}
	return max(worst, time.Since(last)), n
}

// hsDNSQuery is an A query for name.
func hsDNSQuery(id uint16, name string) []byte {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.Id = id
	b, _ := m.Pack()
	return b
}

func hsUDPAddr(t *testing.T, addr string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
