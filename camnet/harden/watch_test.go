package harden

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/auth/audit"
	"cordon/democam"
	"cordon/internal/testtool"
)

type recAuditor struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *recAuditor) Record(e audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

func (a *recAuditor) take() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.events
	a.events = nil
	return out
}

// watchFixture is a watcher over a Hikvision "gate" and a Dahua "yard",
// both hardened before it starts.
type watchFixture struct {
	w        *Watcher
	hik, dah *democam.VendorAPI
	aud      *recAuditor
	metrics  *Metrics
	reg      *prometheus.Registry
	tick     chan time.Time
	results  chan CameraResult
}

func newWatchFixture(t *testing.T, minGap time.Duration) *watchFixture {
	t.Helper()
	f := &watchFixture{
		hik:     startVendor(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.61"),
		dah:     startVendor(t, &democam.VendorAPI{Vendor: democam.VendorDahua}, "127.0.0.62"),
		aud:     &recAuditor{},
		reg:     prometheus.NewRegistry(),
		tick:    make(chan time.Time),
		results: make(chan CameraResult, 64),
	}
	targets := []Target{targetOf(t, "gate", f.hik.URL(), "hikvision"), targetOf(t, "yard", f.dah.URL(), "auto")}
	o := fastOptions()
	o.Apply = true
	for _, tg := range targets {
		if r := runT(t, tg, o); !r.OK() {
			t.Fatalf("could not harden %s first: %+v", tg.Camera, r)
		}
	}
	f.metrics = NewMetrics(f.reg)
	f.w = &Watcher{Wanted: testWanted, Options: fastOptions(), MinGap: minGap, Auditor: f.aud, Metrics: f.metrics,
		Ticker:   func(time.Duration) (<-chan time.Time, func()) { return f.tick, func() {} },
		OnResult: func(r CameraResult) { f.results <- r }}
	f.w.SetTargets(targets)
	if err := f.w.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.w.Close)
	return f
}

// next waits for the next recorded result of a camera (others are kept
// out of the way).
func (f *watchFixture) next(t *testing.T, camera string) CameraResult {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-f.results:
			if r.Camera == camera {
				return r
			}
		case <-timeout:
			t.Fatalf("no result for %s", camera)
		}
	}
}

func (f *watchFixture) gauge(camera string) float64 {
	return testutil.ToFloat64(f.metrics.ok.WithLabelValues(camera))
}

func TestWatcherDriftAndApply(t *testing.T) {
	f := newWatchFixture(t, time.Millisecond)
	first := map[string]bool{}
	for len(first) < 2 {
		r := <-f.results
		first[r.Camera] = r.OK()
	}
	if !first["gate"] || !first["yard"] || f.gauge("gate") != 1 || f.gauge("yard") != 1 {
		t.Fatalf("initial checks: %v, gauges %v %v", first, f.gauge("gate"), f.gauge("yard"))
	}
	if ev := f.aud.take(); len(ev) != 0 {
		t.Fatalf("audit on hardened cameras: %+v", ev)
	}

	// A firmware reset puts the cloud back on; the camera reconnects.
	f.hik.FactoryReset()
	f.w.CameraConnected("gate")
	if r := f.next(t, "gate"); r.OK() {
		t.Fatal("reset camera still reported as hardened")
	}
	if f.gauge("gate") != 0 || f.gauge("yard") != 1 {
		t.Fatalf("gauges after reset: gate %v yard %v", f.gauge("gate"), f.gauge("yard"))
	}
	ev := f.aud.take()
	if len(ev) != 1 || ev[0].Event != audit.HardeningDrift || ev[0].Camera != "gate" ||
		!strings.Contains(ev[0].Detail, "settings changed back: cloud.hik-connect: want off, have on") ||
		!strings.Contains(ev[0].Detail, "ntp: want 127.0.0.1:10123, have time.windows.com:123") {
		t.Fatalf("drift audit: %+v", ev)
	}

	// The periodic check sees the same drift: no second audit line.
	f.tick <- time.Now()
	f.next(t, "gate")
	if ev := f.aud.take(); len(ev) != 0 {
		t.Fatalf("drift audited twice: %+v", ev)
	}

	// Apply from the admin side: camera_hardened with the actor.
	res, err := f.w.Apply(context.Background(), "gate", false, "alice")
	if err != nil || !res.OK() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	ev = f.aud.take()
	if len(ev) != 1 || ev[0].Event != audit.CameraHardened || ev[0].Actor != "alice" ||
		!strings.Contains(ev[0].Detail, "set: cloud.hik-connect") || !strings.HasSuffix(ev[0].Detail, "all settings as wanted") {
		t.Fatalf("apply audit: %+v", ev)
	}
	if f.gauge("gate") != 1 {
		t.Fatal("gauge not back to 1 after apply")
	}

	// Hardened outside serve (cordon harden --apply): audited on the next check.
	f.dah.FactoryReset()
	if r, _ := f.w.Check(context.Background(), "yard"); r.OK() {
		t.Fatal("reset yard reported as hardened")
	}
	o := fastOptions()
	o.Apply = true
	runT(t, targetOf(t, "yard", f.dah.URL(), "dahua"), o)
	if r, _ := f.w.Check(context.Background(), "yard"); !r.OK() {
		t.Fatalf("yard after external apply: %+v", r)
	}
	ev = f.aud.take()
	if len(ev) != 2 || ev[0].Event != audit.HardeningDrift || ev[1].Event != audit.CameraHardened ||
		!strings.Contains(ev[1].Detail, "as wanted again") {
		t.Fatalf("external apply audit: %+v", ev)
	}
	if _, err := f.w.Check(context.Background(), "nope"); !errors.Is(err, ErrUnknownCamera) {
		t.Fatalf("unknown camera: %v", err)
	}
}

func TestWatcherResultsAPI(t *testing.T) {
	f := newWatchFixture(t, time.Millisecond)
	f.next(t, "gate")
	rec := httptest.NewRecorder()
	f.w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/admin/hardening", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %s", rec.Code, rec.Header())
	}
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != 2 || got[0]["camera"] != "gate" {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	gate := got[0]
	for _, k := range []string{"camera", "vendor", "checked_at", "settings"} {
		if _, ok := gate[k]; !ok {
			t.Fatalf("result lacks %q: %v", k, gate)
		}
	}
	s0 := gate["settings"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "want", "have", "ok"} {
		if _, ok := s0[k]; !ok {
			t.Fatalf("setting lacks %q: %v", k, s0)
		}
	}
	if gate["vendor"] != "hikvision" || s0["name"] != SettingHikConnect || s0["ok"] != true {
		t.Fatalf("gate: %v", gate)
	}
	if at, ok := gate["checked_at"].(string); !ok || !strings.HasSuffix(at, "Z") {
		t.Fatalf("gate checked_at %v, want RFC 3339 UTC", gate["checked_at"])
	}
	// a camera not checked yet still carries checked_at, as null
	var unchecked map[string]any
	if b, err := json.Marshal(CameraResult{Camera: "yard", Vendor: "dahua", Settings: []SettingResult{}}); err != nil || json.Unmarshal(b, &unchecked) != nil {
		t.Fatalf("marshal: %v", err)
	}
	if at, ok := unchecked["checked_at"]; !ok || at != nil {
		t.Fatalf("unchecked camera: %v", unchecked)
	}
	rec = httptest.NewRecorder()
	f.w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/admin/hardening", nil))
	if rec.Code != http.StatusMethodNotAllowed || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	// Removing a camera drops its result and its series.
	f.w.SetTargets([]Target{targetOf(t, "gate", f.hik.URL(), "hikvision")})
	if rs := f.w.Results(); len(rs) != 1 || rs[0].Camera != "gate" {
		t.Fatalf("results after removal: %+v", rs)
	}
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "yard" {
					t.Fatalf("series for a removed camera: %s", mf.GetName())
				}
			}
		}
	}
}

func TestWatcherCoalescesConnects(t *testing.T) {
	f := newWatchFixture(t, 300*time.Millisecond)
	f.next(t, "gate")
	start := time.Now()
	for i := 0; i < 20; i++ {
		f.w.CameraConnected("gate") // a camera reconnecting in a loop
	}
	f.next(t, "gate")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("a connect within MinGap was checked after %v", d)
	}
	// Exactly one deferred check: the next result is this synchronous one.
	if _, err := f.w.Check(context.Background(), "gate"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-f.results:
		if r.Camera != "gate" {
			t.Fatalf("unexpected result %s", r.Camera)
		}
	default:
		t.Fatal("synchronous check not recorded")
	}
	if n := len(f.results); n != 0 {
		t.Fatalf("%d extra checks from coalesced connects", n)
	}
}

func TestWatcherUnreachableIsNotDrift(t *testing.T) {
	aud := &recAuditor{}
	m := NewMetrics(nil)
	w := &Watcher{Wanted: testWanted, Options: fastOptions(), Auditor: aud, Metrics: m,
		Ticker: func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }}
	w.SetTargets([]Target{targetOf(t, "dead", "http://127.0.0.63:9", "auto")})
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := w.Check(context.Background(), "dead")
	if err != nil || r.Error == "" || !strings.Contains(r.Error, "camera dead: ") {
		t.Fatalf("%v %+v", err, r)
	}
	if testutil.ToFloat64(m.ok.WithLabelValues("dead")) != 0 || len(aud.take()) != 0 {
		t.Fatal("unreachable camera: gauge must be 0 and nothing audited")
	}
}

func TestWatcherStopsOnRefusedCredentials(t *testing.T) {
	hik := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.64")
	bad := targetOf(t, "gate", hik.URL(), "hikvision")
	bad.Password = "wrong"
	results := make(chan CameraResult, 8)
	w := &Watcher{Wanted: testWanted, Options: fastOptions(), MinGap: time.Millisecond, OnResult: func(r CameraResult) { results <- r },
		Ticker: func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }}
	w.SetTargets([]Target{bad})
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if r := <-results; !r.AuthRefused {
		t.Fatalf("first check: %+v", r)
	}
	w.CameraConnected("gate") // must not try the wrong password again
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	if queued != 0 {
		t.Fatal("a camera that refused the credentials was queued at connect")
	}
	good := bad
	good.Password = camPass
	w.SetTargets([]Target{good}) // new credentials: checked again
	if r := <-results; r.AuthRefused || !strings.Contains(r.Settings[0].Status, StatusDrift) {
		t.Fatalf("after new credentials: %+v", r.Settings[0])
	}
	w.CameraConnected("gate")
	if r := <-results; r.Camera != "gate" {
		t.Fatal("connect after good credentials not checked")
	}
}

// A camera another node reaches (a cluster's Elsewhere) is neither checked
// nor changed here, whatever asks (start, connect, Check, Apply); once it
// is this node's, its connect checks it.
func TestWatcherElsewhere(t *testing.T) {
	hik := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorHikvision}, "127.0.0.63")
	dah := startVendor(t, &democam.VendorAPI{Vendor: democam.VendorDahua}, "127.0.0.64")
	var yardHere atomic.Bool
	results := make(chan CameraResult, 64)
	w := &Watcher{Wanted: testWanted, Options: fastOptions(), MinGap: time.Millisecond,
		Ticker:    func(time.Duration) (<-chan time.Time, func()) { return make(chan time.Time), func() {} },
		OnResult:  func(r CameraResult) { results <- r },
		Elsewhere: func(id string) bool { return id == "yard" && !yardHere.Load() }}
	w.SetTargets([]Target{targetOf(t, "gate", hik.URL(), "hikvision"), targetOf(t, "yard", dah.URL(), "auto")})
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if r := testtool.Recv(t, results, 30*time.Second, "gate's first check"); r.Camera != "gate" {
		t.Fatalf("first result for %s", r.Camera)
	}
	w.CameraConnected("yard")
	if _, err := w.Check(context.Background(), "yard"); !errors.Is(err, ErrElsewhere) {
		t.Fatalf("Check of a camera elsewhere: %v", err)
	}
	if _, err := w.Apply(context.Background(), "yard", false, "ada"); !errors.Is(err, ErrElsewhere) {
		t.Fatalf("Apply of a camera elsewhere: %v", err)
	}
	// a barrier: gate's check queued after yard's connect has run
	w.CameraConnected("gate")
	if r := testtool.Recv(t, results, 30*time.Second, "gate's second check"); r.Camera != "gate" {
		t.Fatalf("yard was checked while elsewhere: %+v", r)
	}
	if reqs := dah.Requests(); len(reqs) != 0 {
		t.Fatalf("yard was contacted while another node reaches it: %v", reqs)
	}
	yardHere.Store(true)
	w.CameraConnected("yard")
	if r := testtool.Recv(t, results, 30*time.Second, "yard's check once it is here"); r.Camera != "yard" {
		t.Fatalf("result for %s", r.Camera)
	}
}
