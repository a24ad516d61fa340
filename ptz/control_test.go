package ptz

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cordon/auth/audit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rig struct {
	c     *Control
	cam   *fakeCamera
	clock *fakeClock
	audit *auditSink
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{cam: &fakeCamera{presets: []Preset{{"1", "Gate"}, {"2", "Yard"}}}, clock: newFakeClock(), audit: &auditSink{}}
	r.c = &Control{CameraID: "dome-1", Camera: r.cam, Auditor: r.audit, Clock: r.clock, Metrics: NewMetrics(nil)}
	if err := r.c.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.c.Close)
	return r
}

var (
	alice  = Controller{Name: "alice", Priority: 100, Remote: "10.0.0.1", Protocol: "http"}
	bob    = Controller{Name: "bob", Priority: 100}
	chief  = Controller{Name: "chief", Priority: 500}
	intern = Controller{Name: "intern", Priority: 10}
)

func move(p, t, z float64) Command { return Command{Move: &Velocity{p, t, z}} }

func (r *rig) do(t *testing.T, ctl Controller, cmd Command) error {
	t.Helper()
	return r.c.Do(context.Background(), ctl, cmd)
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestFirstCommandTakesControl(t *testing.T) {
	r := newRig(t)
	if err := r.do(t, alice, move(0.5, 0, 0)); err != nil {
		t.Fatal(err)
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 0.5 0.0 0.0 1s"})
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice"})
	e := r.audit.Events()[0]
	if e.Camera != "dome-1" || e.Remote != "10.0.0.1" || e.Protocol != "http" {
		t.Fatalf("%+v", e)
	}
	h, until := r.c.Holder()
	if h.Name != "alice" || !until.Equal(r.clock.Now().Add(10*time.Second)) {
		t.Fatalf("holder %v until %v", h, until)
	}
}

func TestEqualAndLowerPriorityConflict(t *testing.T) {
	r := newRig(t)
	if err := r.do(t, alice, move(0.5, 0, 0)); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(3 * time.Second)
	for _, ctl := range []Controller{bob, intern} {
		err := r.do(t, ctl, move(-1, 0, 0))
		var ce *ConflictError
		if !errors.As(err, &ce) || StatusCode(err) != 409 {
			t.Fatalf("%s: %v", ctl.Name, err)
		}
		if ce.Holder != "alice" || !ce.Until.Equal(r.clock.Now().Add(7*time.Second)) {
			t.Fatalf("conflict %+v", ce)
		}
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 0.5 0.0 0.0 1s", "stop"}) // the move-timeout stop at 1 s
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice"})
}

func TestHigherPriorityTakesOverAndStopsFirst(t *testing.T) {
	r := newRig(t)
	if err := r.do(t, alice, Command{Move: &Velocity{0.5, 0, 0}, TimeoutMS: 4000}); err != nil {
		t.Fatal(err)
	}
	r.do(t, alice, Command{Move: &Velocity{0.5, 0.2, 0}, TimeoutMS: 4000})
	r.clock.Advance(2 * time.Second)
	if err := r.do(t, chief, move(0, -1, 0)); err != nil {
		t.Fatal(err)
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 0.5 0.0 0.0 4s", "move 0.5 0.2 0.0 4s", "stop", "move 0.0 -1.0 0.0 1s"})
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice", "ptz_takeover:chief", "ptz_start:chief"})
	ev := r.audit.Events()
	if ev[1].Detail != "commands=2 duration_s=2.0 reason=taken over by chief" {
		t.Fatalf("end detail %q", ev[1].Detail)
	}
	if !strings.Contains(ev[2].Detail, "from alice (priority 100)") || !strings.Contains(ev[2].Detail, "chief (priority 500)") {
		t.Fatalf("takeover detail %q", ev[2].Detail)
	}
	// alice is now the lower one
	var ce *ConflictError
	if err := r.do(t, alice, move(1, 0, 0)); !errors.As(err, &ce) || ce.Holder != "chief" {
		t.Fatalf("%v", err)
	}
}

func TestExpiryEndsControlAndStops(t *testing.T) {
	r := newRig(t)
	r.do(t, alice, move(0.5, 0, 0))
	r.clock.Advance(8 * time.Second)
	r.do(t, alice, Command{Stop: true}) // extends the hold to t=18
	r.clock.Advance(9 * time.Second)    // t=17: still alice's
	if err := r.do(t, bob, move(1, 0, 0)); err == nil {
		t.Fatal("bob got control while alice held it")
	}
	r.clock.Advance(time.Second) // t=18: expiry
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice"})
	if d := r.audit.Events()[1].Detail; d != "commands=2 duration_s=18.0 reason=expired" {
		t.Fatalf("end detail %q", d)
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 0.5 0.0 0.0 1s", "stop", "stop", "stop"})
	if h, _ := r.c.Holder(); h.Name != "" {
		t.Fatalf("holder %v after expiry", h)
	}
	if err := r.do(t, bob, move(1, 0, 0)); err != nil {
		t.Fatalf("bob after expiry: %v", err)
	}
}

// A command that arrives after the hold lapsed but before the expiry timer
// ran (a busy machine) still ends the old session first and stops.
func TestLateTimerLazyExpiry(t *testing.T) {
	r := newRig(t)
	r.do(t, alice, Command{Preset: "1"})
	r.clock.Set(r.clock.Now().Add(11 * time.Second))
	if err := r.do(t, bob, Command{Home: true}); err != nil {
		t.Fatal(err)
	}
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice", "ptz_start:bob"})
	eq(t, "camera", r.cam.Calls(), []string{"preset 1", "stop", "home"})
	r.clock.Advance(time.Second) // alice's stale expiry timer fires: a no-op
	eq(t, "audit after stale timer", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice", "ptz_start:bob"})
}

func TestMoveTimeoutClampAndStop(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct {
		ms   int
		want string
	}{{0, "1s"}, {50, "100ms"}, {2500, "2.5s"}, {600000, "5s"}} {
		r.do(t, alice, Command{Move: &Velocity{1, 0, 0}, TimeoutMS: c.ms})
		calls := r.cam.Calls()
		if got := calls[len(calls)-1]; got != "move 1.0 0.0 0.0 "+c.want {
			t.Fatalf("timeout_ms %d: %s", c.ms, got)
		}
	}
	r.clock.Advance(4999 * time.Millisecond)
	if n := len(r.cam.Calls()); n != 4 {
		t.Fatalf("stopped early: %q", r.cam.Calls())
	}
	r.clock.Advance(time.Millisecond)
	eq(t, "camera", r.cam.Calls()[4:], []string{"stop"})
	if h, _ := r.c.Holder(); h.Name != "alice" {
		t.Fatal("move stop ended control")
	}
}

func TestReleaseAndEndPrincipal(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if held, _ := r.c.Release(ctx, "admin"); held {
		t.Fatal("released nobody")
	}
	r.do(t, alice, move(0, 1, 0))
	if held, _ := r.c.EndPrincipal(ctx, "bob", "logout"); held {
		t.Fatal("ended bob who held nothing")
	}
	if held, _ := r.c.Release(ctx, "admin"); !held {
		t.Fatal("release")
	}
	r.do(t, bob, move(0, 1, 0))
	if held, _ := r.c.EndPrincipal(ctx, "bob", "session ended"); !held {
		t.Fatal("end principal")
	}
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice", "ptz_start:bob", "ptz_end:bob"})
	ev := r.audit.Events()
	if !strings.HasSuffix(ev[1].Detail, "reason=released by admin") || !strings.HasSuffix(ev[3].Detail, "reason=session ended") {
		t.Fatalf("%q %q", ev[1].Detail, ev[3].Detail)
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 0.0 1.0 0.0 1s", "stop", "move 0.0 1.0 0.0 1s", "stop"})
	r.clock.Advance(time.Minute) // no timer left to fire
	if n := len(r.cam.Calls()); n != 4 {
		t.Fatalf("timers survived the end of control: %q", r.cam.Calls())
	}
}

func TestValidation(t *testing.T) {
	r := newRig(t)
	bad := []Command{
		{},
		{Stop: true, Home: true},
		{Move: &Velocity{1.01, 0, 0}},
		{Move: &Velocity{0, math.NaN(), 0}},
		{Move: &Velocity{0, 0, math.Inf(-1)}},
		{Move: &Velocity{0, 0, 0}, TimeoutMS: -1},
		{Stop: true, TimeoutMS: 100},
		{Preset: "a b"},
		{Preset: "<x/>"},
		{Preset: strings.Repeat("1", 65)},
		{Preset: "9"}, // not a preset of this camera
	}
	for _, c := range bad {
		if err := r.do(t, alice, c); StatusCode(err) != 400 {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := r.do(t, Controller{Name: "viewer"}, Command{Stop: true}); StatusCode(err) != 403 {
		t.Fatalf("no priority: %v", err)
	}
	if len(r.cam.Calls()) != 0 || len(r.audit.Events()) != 0 {
		t.Fatalf("invalid commands reached the camera: %q %q", r.cam.Calls(), r.audit.Names())
	}
	for _, body := range []string{
		`{"move":{"pan":0.5},"extra":1}`, `{"stop":true}{"home":true}`, `{"move":{"pan":"fast"}}`,
		`{"preset":"` + strings.Repeat("x", MaxCommandBytes) + `"}`, `[]`,
	} {
		if _, err := DecodeCommand(strings.NewReader(body)); StatusCode(err) != 400 {
			t.Errorf("%.60s: %v", body, err)
		}
	}
	c, err := DecodeCommand(strings.NewReader(`{"move":{"pan":-0.25,"tilt":1},"timeout_ms":800}`))
	if err != nil || c.Move.Pan != -0.25 || c.Move.Tilt != 1 || c.TimeoutMS != 800 {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestRateLimitPerPrincipal(t *testing.T) {
	r := newRig(t)
	n := 0
	for range 40 {
		if err := r.do(t, alice, Command{Stop: true}); err != nil {
			if !errors.Is(err, ErrRateLimited) || StatusCode(err) != 429 {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n != DefaultBurst {
		t.Fatalf("%d commands before the limit, want %d", n, DefaultBurst)
	}
	// another principal has its own budget (and gets the lock answer)
	if err := r.do(t, bob, Command{Stop: true}); StatusCode(err) != 409 {
		t.Fatalf("bob: %v", err)
	}
	r.clock.Advance(200 * time.Millisecond) // 10/s: two more
	for range 2 {
		if err := r.do(t, alice, Command{Stop: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.do(t, alice, Command{Stop: true}); !errors.Is(err, ErrRateLimited) {
		t.Fatal(err)
	}
}

func TestCameraErrorAndStatus(t *testing.T) {
	r := newRig(t)
	r.cam.status = CameraStatus{Position: &Position{0.1, -0.2, 0.3}, Moving: true}
	r.cam.fail = errors.New(`onvif camera dome-1: ContinuousMove: SOAP fault Receiver/ter:ActionFailed`)
	err := r.do(t, alice, move(1, 0, 0))
	var ce *CameraError
	if !errors.As(err, &ce) || StatusCode(err) != 502 {
		t.Fatalf("%v", err)
	}
	r.cam.fail = nil
	st := r.c.Status(context.Background())
	if st.Holder != "alice" || st.HolderPriority != 100 || st.Until == nil || !strings.Contains(st.LastError, "ActionFailed") {
		t.Fatalf("%+v", st)
	}
	if st.Status == nil || *st.Status.Position != (Position{0.1, -0.2, 0.3}) || !st.Status.Moving || len(st.Presets) != 2 || !st.Capabilities.Home {
		t.Fatalf("%+v", st)
	}
	b, _ := json.Marshal(st)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"capabilities", "presets", "status", "holder", "until", "last_error"} {
		if _, ok := m[k]; !ok {
			t.Errorf("status JSON lacks %q: %s", k, b)
		}
	}
	// cached within 250 ms
	r.c.Status(context.Background())
	if r.cam.statusN != 1 {
		t.Fatalf("camera asked %d times", r.cam.statusN)
	}
	r.clock.Advance(300 * time.Millisecond)
	r.c.Status(context.Background())
	if r.cam.statusN != 2 {
		t.Fatalf("camera asked %d times", r.cam.statusN)
	}
}

func TestNoPresetCamera(t *testing.T) {
	r := newRig(t)
	r.cam.noPreset = true
	st := r.c.Status(context.Background())
	if st.Capabilities.Presets || len(st.Presets) != 0 || st.Presets == nil {
		t.Fatalf("%+v", st)
	}
	if err := r.do(t, alice, Command{Preset: "1"}); StatusCode(err) != 502 {
		t.Fatalf("%v", err)
	}
}

func TestCloseEndsControl(t *testing.T) {
	r := newRig(t)
	r.do(t, alice, move(1, 0, 0))
	r.c.Close()
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice"})
	eq(t, "camera", r.cam.Calls(), []string{"move 1.0 0.0 0.0 1s", "stop"})
	if err := r.do(t, alice, move(1, 0, 0)); !errors.Is(err, ErrClosed) || StatusCode(err) != 503 {
		t.Fatalf("%v", err)
	}
	r.clock.Advance(time.Minute)
	if len(r.cam.Calls()) != 2 {
		t.Fatal("timer ran after Close")
	}
}

// A waiting command gives up with its context while a slow camera command
// of the same holder holds the slot.
func TestWaitingCommandHonoursContext(t *testing.T) {
	r := newRig(t)
	block := make(chan struct{})
	entered := make(chan string, 4)
	r.cam.mu.Lock()
	r.cam.block, r.cam.entered = block, entered
	r.cam.mu.Unlock()
	done := make(chan error)
	go func() { done <- r.c.Do(context.Background(), alice, move(1, 0, 0)) }()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.c.Do(ctx, alice, move(-1, 0, 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	close(block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A higher priority takes control at once even while a slow (or hostile)
// camera sits on the holder's command: the decision does not wait for the
// command slot, the holder's command is cancelled (the holder is told who
// took over), then Stop and the new holder's command go out.
func TestTakeoverCancelsSlowCommand(t *testing.T) {
	r := newRig(t)
	r.c.CommandTimeout = time.Hour // waiting for it would hang the test
	block := make(chan struct{})
	defer close(block)
	entered := make(chan string, 8)
	r.cam.mu.Lock()
	r.cam.block, r.cam.entered = block, entered
	r.cam.mu.Unlock()
	aliceDone := make(chan error, 1)
	go func() { aliceDone <- r.c.Do(context.Background(), alice, move(1, 0, 0)) }()
	if call := <-entered; call != "move 1.0 0.0 0.0 1s" {
		t.Fatalf("first call %q", call)
	}
	// Lower priorities are answered at once too (no waiting for the slot).
	if err := r.do(t, intern, move(0, 1, 0)); StatusCode(err) != 409 {
		t.Fatalf("intern: %v", err)
	}
	chiefDone := make(chan error, 1)
	go func() { chiefDone <- r.c.Do(context.Background(), chief, move(0, -1, 0)) }()
	select {
	case err := <-chiefDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // generous: the bug is a wait of CommandTimeout (1 h here)
		t.Fatal("the takeover waited for the slow camera's command")
	}
	var ce *ConflictError
	if err := <-aliceDone; !errors.As(err, &ce) || ce.Holder != "chief" || StatusCode(err) != 409 {
		t.Fatalf("alice's cancelled command: %v", err)
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 1.0 0.0 0.0 1s", "stop", "move 0.0 -1.0 0.0 1s"})
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice", "ptz_takeover:chief", "ptz_start:chief"})
	if st := r.c.Status(context.Background()); st.LastError != "" {
		t.Fatalf("a cancelled command became the camera's last error: %q", st.LastError)
	}
}

// PTZ control is granted only when it is on record: a ptz_start or
// ptz_takeover that cannot be written refuses the command (503) and
// leaves nobody steering on the strength of an unrecorded line.
func TestAuditFailureRefusesControl(t *testing.T) {
	r := newRig(t)
	r.audit.fail(audit.PTZStart)
	err := r.do(t, alice, move(1, 0, 0))
	if !errors.Is(err, ErrAudit) || StatusCode(err) != 503 {
		t.Fatalf("ptz_start not recorded: %v", err)
	}
	if h, _ := r.c.Holder(); h.Name != "" || len(r.cam.Calls()) != 0 {
		t.Fatalf("control granted without its audit line: holder %q, camera %q", h.Name, r.cam.Calls())
	}

	r.audit.fail()
	if err := r.do(t, alice, move(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	// ptz_end of alice cannot be written: nothing changes, alice keeps control
	r.audit.fail(audit.PTZEnd)
	if err := r.do(t, chief, move(0, 1, 0)); !errors.Is(err, ErrAudit) {
		t.Fatalf("takeover with ptz_end failing: %v", err)
	}
	if h, _ := r.c.Holder(); h.Name != "alice" {
		t.Fatalf("holder %q, want alice", h.Name)
	}
	// ptz_takeover cannot be written: alice's end is on record, so her
	// control ends (Stop), but chief does not get it
	r.audit.fail(audit.PTZTakeover)
	if err := r.do(t, chief, move(0, 1, 0)); !errors.Is(err, ErrAudit) || StatusCode(err) != 503 {
		t.Fatalf("takeover with ptz_takeover failing: %v", err)
	}
	if h, _ := r.c.Holder(); h.Name != "" {
		t.Fatalf("holder %q after a refused takeover", h.Name)
	}
	eq(t, "camera", r.cam.Calls(), []string{"move 1.0 0.0 0.0 1s", "stop"})
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice"})

	r.audit.fail()
	if err := r.do(t, chief, move(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	eq(t, "audit", r.audit.Names(), []string{"ptz_start:alice", "ptz_end:alice", "ptz_start:chief"})
}

// A camera that fails its capabilities call is not asked again for a
// while: status polls of a dead camera answer at once.
func TestCapabilitiesFailureCached(t *testing.T) {
	r := newRig(t)
	r.cam.capsFail = errors.New("onvif camera dome-1: GetNodes: no complete answer within 5s")
	for range 5 {
		st := r.c.Status(context.Background())
		if st.Capabilities != nil || !strings.Contains(st.LastError, "no complete answer") {
			t.Fatalf("%+v", st)
		}
	}
	if r.cam.capsN != 1 || r.cam.statusN != 0 {
		t.Fatalf("dead camera asked %d times for capabilities, %d for status; want 1 and 0", r.cam.capsN, r.cam.statusN)
	}
	r.clock.Advance(capsFailureTTL)
	r.cam.capsFail = nil
	if st := r.c.Status(context.Background()); st.Capabilities == nil || r.cam.capsN != 2 {
		t.Fatalf("after %v: %+v, %d calls", capsFailureTTL, st, r.cam.capsN)
	}
	r.clock.Advance(time.Hour)
	r.c.Status(context.Background())
	if r.cam.capsN != 2 {
		t.Fatalf("capabilities not kept: %d calls", r.cam.capsN)
	}
}

// Many principals at once on the real clock: camera calls never overlap,
// every session that started ends (after Close), takeovers only go up.
func TestConcurrentCommands(t *testing.T) {
	cam := &fakeCamera{presets: []Preset{{"1", "a"}}}
	sink := &auditSink{}
	c := &Control{CameraID: "dome-2", Camera: cam, Auditor: sink, Hold: 30 * time.Millisecond, MinMoveTimeout: time.Millisecond, Rate: 1e6, Burst: 1e6}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		ctl := Controller{Name: string(rune('a' + i)), Priority: 1 + i%4*100}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for range 200 {
				var cmd Command
				switch rng.IntN(4) {
				case 0:
					cmd = Command{Move: &Velocity{rng.Float64()*2 - 1, 0, 0}, TimeoutMS: 1 + rng.IntN(5)}
				case 1:
					cmd = Command{Stop: true}
				case 2:
					cmd = Command{Preset: "1"}
				default:
					c.Status(context.Background())
					continue
				}
				err := c.Do(context.Background(), ctl, cmd)
				var ce *ConflictError
				if err != nil && !errors.As(err, &ce) {
					t.Error(err)
				}
				if rng.IntN(50) == 0 {
					c.EndPrincipal(context.Background(), ctl.Name, "test")
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	if cam.overlap.Load() {
		t.Fatal("camera commands overlapped")
	}
	starts, ends := map[string]int{}, map[string]int{}
	open := ""
	for _, e := range sink.Events() {
		switch e.Event {
		case "ptz_start":
			if open != "" {
				t.Fatalf("ptz_start of %s while %s holds control", e.Actor, open)
			}
			open = e.Actor
			starts[e.Actor]++
		case "ptz_end":
			if open != e.Actor {
				t.Fatalf("ptz_end of %s while %q holds control", e.Actor, open)
			}
			open = ""
			ends[e.Actor]++
		}
	}
	if open != "" || len(starts) == 0 {
		t.Fatalf("open %q starts %v ends %v", open, starts, ends)
	}
}

func TestErrorBody(t *testing.T) {
	until := time.Date(2026, 11, 30, 12, 0, 10, 0, time.UTC)
	b, _ := json.Marshal(ErrorBody(&ConflictError{Holder: "alice", Until: until}))
	if string(b) != `{"error":"PTZ control is held by alice until 2026-11-30T12:00:10Z","holder":"alice","until":"2026-11-30T12:00:10Z"}` {
		t.Fatal(string(b))
	}
	b, _ = json.Marshal(ErrorBody(ErrRateLimited))
	if string(b) != `{"error":"too many PTZ commands; slow down"}` {
		t.Fatal(string(b))
	}
}
