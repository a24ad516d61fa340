package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"cordon/internal/testtool"
)

// gate blocks every verification until opened, and reports each start.
type gate struct {
	started chan struct{}
	open    chan struct{}
}

func newGate(f *fixture) *gate {
	g := &gate{started: make(chan struct{}, 1024), open: make(chan struct{})}
	f.svc.hashesMu.Lock()
	f.svc.hashHook = func(string) { g.started <- struct{}{}; <-g.open }
	f.svc.hashesMu.Unlock()
	return g
}

// 24 parallel bad logins from one address: the attempts are reserved
// before hashing, so at most the threshold (5) are judged (401) and the
// rest are refused at once (429), while only one argon2id computation
// runs for that address at a time; a correct login from another address
// still works.
func TestParallelBurstIsLockedOut(t *testing.T) {
	f := newFixture(t)
	g := newGate(f)
	const burst = 24
	codes := make(chan int, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := httptest.NewRecorder()
			f.svc.LoginHandler().ServeHTTP(w, loginRequestFor("alice", fmt.Sprintf("guess-%d", i), "198.51.100.77"))
			codes <- w.Code
		}()
	}
	<-g.started // the first verification is running (and held)
	// Everything not reserved is answered without waiting for it.
	counts := map[int]int{}
	for range burst - f.svc.Lockout.Threshold {
		counts[<-codes]++
	}
	if counts[http.StatusTooManyRequests] != burst-f.svc.Lockout.Threshold {
		t.Fatalf("while 5 were in flight: %v", counts)
	}
	if f.svc.HashesInFlightMax() != 1 {
		t.Fatalf("%d verifications in flight for one address", f.svc.HashesInFlightMax())
	}
	close(g.open)
	wg.Wait()
	close(codes)
	for c := range codes {
		counts[c]++
	}
	if counts[http.StatusUnauthorized] != f.svc.Lockout.Threshold || counts[http.StatusTooManyRequests] != burst-f.svc.Lockout.Threshold {
		t.Fatalf("burst answers %v", counts)
	}
	if f.svc.HashesInFlightMax() != 1 {
		t.Fatalf("%d verifications in flight for one address", f.svc.HashesInFlightMax())
	}
	if w := f.login(t, "alice", alicePW, "198.51.100.77"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the burst's address is not locked: %d", w.Code)
	}
	if w := f.login(t, "alice", alicePW, "203.0.113.9"); w.Code != http.StatusOK {
		t.Fatalf("correct login from another address: %d %s", w.Code, w.Body)
	}
	if n := f.countEvents(t, "login_failed"); n != f.svc.Lockout.Threshold {
		t.Fatalf("%d login_failed lines, want the %d judged attempts", n, f.svc.Lockout.Threshold)
	}
}

// The global queue is bounded: beyond MaxConcurrentHashes running and
// MaxHashQueue waiting, sign-ins are refused with 503 + Retry-After (and
// are not counted as failures); a client that goes away releases its
// place without a failure.
func TestHashingQueueBounded(t *testing.T) {
	users, keys := defaultUsers(t)
	f := newFixtureWith(t, t.TempDir(), users, keys)
	f.svc.Close()
	f.svc = &Service{StateDir: f.stateDir, Directory: f.dir, Audit: f.audit, Logger: quiet(), Metrics: NewMetrics(nil), Now: f.clock.Now,
		MaxConcurrentHashes: 1, MaxHashQueue: 2}
	if err := f.svc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.svc.Close)
	g := newGate(f)
	const n = 5
	type answer struct {
		code  int
		retry string
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := httptest.NewRecorder()
			f.svc.LoginHandler().ServeHTTP(w, loginRequestFor("bob", bobPW, fmt.Sprintf("198.51.100.%d", i+1)))
			answers <- answer{w.Code, w.Header().Get("Retry-After")}
		}()
	}
	<-g.started
	for range n - 3 { // 1 running + 2 queued; the others refused
		a := <-answers
		if a.code != http.StatusServiceUnavailable || a.retry == "" {
			t.Fatalf("over the queue: %+v", a)
		}
	}
	if q := testutil.ToFloat64(f.svc.Metrics.HashesQueued); q != 2 {
		t.Fatalf("queued gauge %v", q)
	}
	if r := testutil.ToFloat64(f.svc.Metrics.HashesRefused); r != n-3 {
		t.Fatalf("refused counter %v", r)
	}
	// A queued client that goes away gives its place back.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.AuthenticatePasswordContext(ctx, "vms-1", "wrong-but-cancelled", "198.51.100.200", "rtsp")
		done <- err
	}()
	cancel()
	if err := <-done; err == nil || (!errors.Is(err, context.Canceled) && !errors.Is(err, ErrBusy)) {
		t.Fatalf("cancelled attempt: %v", err)
	}
	close(g.open)
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.code != http.StatusOK {
			t.Fatalf("queued login: %+v", a)
		}
	}
	if f.svc.HashesInFlightMax() != 1 {
		t.Fatalf("%d in flight with MaxConcurrentHashes 1", f.svc.HashesInFlightMax())
	}
	if f.countEvents(t, "login_failed") != 0 {
		t.Fatal("refused (503) or cancelled attempts were counted as failures")
	}
	if w := f.login(t, "bob", bobPW, "198.51.100.200"); w.Code != http.StatusOK {
		t.Fatalf("after the flood: %d", w.Code)
	}
}

func TestHashLimiterPerAddressQueue(t *testing.T) {
	h := newHashLimiter(4, 100, nil)
	ctx := context.Background()
	rel, err := h.acquire(ctx, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan func(), perAddrHashQueue)
	for range perAddrHashQueue - 1 {
		go func() {
			r, err := h.acquire(ctx, "a", nil)
			if err != nil {
				t.Error(err)
				waiting <- func() {}
				return
			}
			waiting <- r
		}()
	}
	// wait until all are queued on the address slot
	testtool.WaitFor(t, 10*time.Second, "every waiter queued on the slot", func() bool { // a counter: the waiters have no other signal
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.slots["a"].refs == perAddrHashQueue
	})
	if _, err := h.acquire(ctx, "a", nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("9th from one address: %v", err)
	}
	rb, err := h.acquire(ctx, "b", nil) // another address is not affected
	if err != nil {
		t.Fatal(err)
	}
	rb()
	if h.maxInflight.Load() != 2 {
		t.Fatalf("max in flight %d", h.maxInflight.Load())
	}
	rel()
	for range perAddrHashQueue - 1 {
		(<-waiting)()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.slots) != 0 || h.waitingLocked() != 0 || h.running != 0 {
		t.Fatalf("leaked slots %d waiting %d running %d", len(h.slots), h.waitingLocked(), h.running)
	}
}

// Fair admission: with every slot taken, an address with no failure on
// record is served before every waiting address that has failed, and
// queued addresses of one lane are served in arrival order.
func TestHashLimiterCleanLaneFirst(t *testing.T) {
	h := newHashLimiter(1, 8, nil)
	ctx := context.Background()
	hold, err := h.acquire(ctx, "holder", nil)
	if err != nil {
		t.Fatal(err)
	}
	granted := make(chan string, 8)
	var wg sync.WaitGroup
	enqueue := func(addr string, clean bool) {
		before := h.queued()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := h.acquire(ctx, addr, func() bool { return clean })
			if err != nil {
				t.Error(err)
				return
			}
			granted <- addr
			rel()
		}()
		// a counter: a queued waiter has no other signal
		testtool.WaitFor(t, 10*time.Second, "the waiter queued", func() bool { return h.queued() != before })
	}
	for _, a := range []string{"failing-1", "failing-2", "failing-3"} {
		enqueue(a, false)
	}
	enqueue("clean-1", true)
	enqueue("clean-2", true)
	hold()
	var order []string
	for range 5 {
		order = append(order, <-granted)
	}
	wg.Wait()
	want := []string{"clean-1", "clean-2", "failing-1", "failing-2", "failing-3"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("served %v, want %v", order, want)
	}
}

// A clean address's sign-in during a flood from addresses that have
// failed before is the next verification, whatever the queue holds; the
// lane is the address's, decided when its turn comes.
func TestCleanSignInOvertakesFlood(t *testing.T) {
	users, keys := defaultUsers(t)
	f := newFixtureWith(t, t.TempDir(), users, keys)
	f.svc.Close()
	f.svc = &Service{StateDir: f.stateDir, Directory: f.dir, Audit: f.audit, Logger: quiet(), Metrics: NewMetrics(nil), Now: f.clock.Now,
		MaxConcurrentHashes: 1, MaxHashQueue: 8}
	if err := f.svc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.svc.Close)
	const flood = 6
	for i := range flood { // each flooding address has failed once
		_ = f.svc.RecordAuthFailure("bob", fmt.Sprintf("198.18.0.%d", i+1), "http", "", "earlier failure")
	}
	order := make(chan string, flood+2)
	open := make(chan struct{})
	f.svc.hashesMu.Lock()
	f.svc.hashHook = func(remote string) { order <- remote; <-open }
	f.svc.hashesMu.Unlock()
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.login(t, "bob", "guess", fmt.Sprintf("198.18.0.%d", i+1))
		}()
	}
	first := <-order // one flood verification runs (held); the others queue
	// a counter: queued sign-ins have no other signal
	testtool.WaitFor(t, 10*time.Second, "the flood queued", func() bool { return f.svc.hashes.queued() >= flood-1 })
	legit := make(chan int, 1)
	go func() { legit <- f.login(t, "bob", bobPW, "203.0.113.5").Code }()
	testtool.WaitFor(t, 10*time.Second, "the legitimate sign-in queued", func() bool { return f.svc.hashes.queued() >= flood })
	close(open)
	if next := <-order; next != "203.0.113.5" {
		t.Fatalf("after %s the next verification was %s, not the clean address's", first, next)
	}
	if code := <-legit; code != http.StatusOK {
		t.Fatalf("clean sign-in during the flood: %d", code)
	}
	wg.Wait()
}

// Identical concurrent attempts on a cacheable path (an NVR opening many
// streams at once) share one verification; none is refused.
func TestIdenticalAttemptsShareOneVerification(t *testing.T) {
	f := newFixture(t)
	g := newGate(f)
	const n = 12
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.svc.AuthenticatePassword("vms-1", vmsKey, "10.7.7.7:5000", "rtsp")
			errs <- err
		}()
	}
	<-g.started
	// a counter: followers have no other signal
	testtool.WaitFor(t, 10*time.Second, "every follower waiting", func() bool { return f.svc.followers.Load() == n-1 })
	close(g.open)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if f.svc.hashCount() != 1 {
		t.Fatalf("%d verifications for %d identical attempts", f.svc.hashCount(), n)
	}
	if n := f.countEvents(t, "login_ok"); n != 1 {
		t.Fatalf("%d login_ok", n)
	}
}
