package auth

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the hashing bounds.
const (
	// DefaultHashQueue: argon2id verifications that may wait for a slot
	// beyond the ones running, in each admission lane (clean and failing
	// addresses); more are refused with a BusyError (503).
	DefaultHashQueue = 8
	// perAddrHashQueue bounds the verifications one address may have
	// waiting for its (single) slot; lockout reservations already keep
	// failing ones at or below the lockout threshold.
	perAddrHashQueue = 8
	maxBusyRetry     = 30 * time.Second
	// maxHashWait: a sign-in is not queued when the queue ahead of it is
	// expected to take longer than this (from the recent average
	// verification time): on a loaded machine the queue shortens, and a
	// client gets either its answer within about a second or a 503 at once.
	maxHashWait = time.Second
)

// maxQueueWait bounds how long a queued sign-in waits for a slot (a
// failing address's attempt can be passed over by clean ones): beyond it,
// 503 + Retry-After rather than an answer that never comes.
const maxQueueWait = 3 * time.Second

// DefaultMaxConcurrentHashes is half the CPUs (at least one): each
// argon2id verification (p=2) keeps two cores busy and takes 64 MiB.
func DefaultMaxConcurrentHashes() int { return max(1, runtime.NumCPU()/2) }

// Admission lanes of the hashing queue.
const (
	// laneClean: an address with no failed sign-in on record (within the
	// lockout's Decay). Served first.
	laneClean = iota
	// laneFailing: an address that has failed recently. Served when no
	// clean address waits.
	laneFailing
	numLanes
)

// hashLimiter bounds argon2id work: at most one verification in flight
// per address (the others from that address wait their turn, and never
// hold a place in the global queue while they do), at most `concurrent`
// in flight in total, and at most maxQueue waiting in each lane — fewer
// when the machine is slow (maxHashWait).
//
// Fair admission: an address that has failed recently (a guesser, a
// flood) waits in the failing lane; an address with no failure on record
// waits in the clean lane, which is always served first. A flood from
// any number of addresses therefore delays a clean address's sign-in by
// at most the verification running when it arrived, once each flooding
// address has failed once — which each of them does with its first
// attempt. What is left to an attacker: the first attempt of each of his
// addresses competes in the clean lane (bounded like the other, 503
// beyond it), so a burst from many never-seen addresses can delay or
// refuse (503 + Retry-After) clean sign-ins arriving at the same moment;
// keeping that up needs a fresh address for every attempt, about one per
// argon2id verification (10-15 a second here), since an address stays in
// the failing lane until the lockout forgets its failures (auth.lockout
// decay, 30 min by default).
type hashLimiter struct {
	concurrent int
	maxQueue   int

	mu      sync.Mutex
	running int
	lanes   [numLanes][]*hashWaiter // FIFO each
	slots   map[string]*addrSlot
	avg     time.Duration // moving average of one verification

	inflight    atomic.Int64
	maxInflight atomic.Int64 // highest inflight seen (tests, benchmark)
	metrics     *Metrics
}

// hashWaiter is a queued verification; ready is closed when it was given
// a slot (running already counts it).
type hashWaiter struct{ ready chan struct{} }

type addrSlot struct {
	ch   chan struct{} // capacity 1: the address's one verification
	refs int
}

func newHashLimiter(concurrent, queue int, m *Metrics) *hashLimiter {
	return &hashLimiter{
		concurrent: max(concurrent, 1), maxQueue: queue,
		slots: map[string]*addrSlot{}, avg: 100 * time.Millisecond, metrics: m,
	}
}

// acquire waits for addr's slot and then a global one, in the lane
// clean() names once the address's turn has come (so that a second
// attempt from an address sees the failure of its first). It fails with
// a *BusyError when addr already has perAddrHashQueue verifications
// waiting, the lane is full, or no slot came within maxQueueWait, or with
// ctx's error.
func (h *hashLimiter) acquire(ctx context.Context, addr string, clean func() bool) (release func(), err error) {
	h.mu.Lock()
	s := h.slots[addr]
	if s == nil {
		s = &addrSlot{ch: make(chan struct{}, 1)}
		h.slots[addr] = s
	}
	if s.refs >= perAddrHashQueue {
		h.mu.Unlock()
		return nil, h.busy()
	}
	s.refs++
	h.mu.Unlock()
	drop := func() {
		h.mu.Lock()
		s.refs--
		if s.refs == 0 {
			delete(h.slots, addr)
		}
		h.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
	lane := laneFailing
	if clean == nil || clean() {
		lane = laneClean
	}
	if err := h.global(ctx, lane); err != nil {
		<-s.ch
		drop()
		return nil, err
	}
	start := time.Now()
	n := h.inflight.Add(1)
	for {
		m := h.maxInflight.Load()
		if n <= m || h.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	h.metrics.hashInflight(1)
	return func() {
		h.observe(time.Since(start))
		h.inflight.Add(-1)
		h.metrics.hashInflight(-1)
		h.mu.Lock()
		h.releaseLocked()
		h.mu.Unlock()
		<-s.ch
		drop()
	}, nil
}

// global takes a global slot, waiting in lane if needed.
func (h *hashLimiter) global(ctx context.Context, lane int) error {
	h.mu.Lock()
	if h.running < h.concurrent { // free slots mean empty lanes
		h.running++
		h.mu.Unlock()
		return nil
	}
	ahead := len(h.lanes[laneClean])
	if lane == laneFailing {
		ahead += len(h.lanes[laneFailing])
	}
	expected := h.avg * time.Duration(ahead+1) / time.Duration(h.concurrent)
	if len(h.lanes[lane]) >= h.maxQueue || (ahead > 0 && expected > maxHashWait) {
		h.mu.Unlock()
		return h.busy()
	}
	w := &hashWaiter{ready: make(chan struct{})}
	h.lanes[lane] = append(h.lanes[lane], w)
	h.metrics.hashQueued(h.waitingLocked())
	h.mu.Unlock()
	timer := time.NewTimer(maxQueueWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errQueueWait
	}
	h.mu.Lock()
	select {
	case <-w.ready: // granted meanwhile: pass the slot on
		h.releaseLocked()
	default:
		q := h.lanes[lane]
		for i, x := range q {
			if x == w {
				h.lanes[lane] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		h.metrics.hashQueued(h.waitingLocked())
	}
	h.mu.Unlock()
	if err == errQueueWait {
		return h.busy()
	}
	return err
}

var errQueueWait = errors.New("no hashing slot in time")

// releaseLocked frees a running slot and gives it to the first waiter of
// the clean lane, else of the failing lane. Called with h.mu held.
func (h *hashLimiter) releaseLocked() {
	h.running--
	for lane := range h.lanes {
		if q := h.lanes[lane]; len(q) > 0 {
			w := q[0]
			q[0] = nil
			h.lanes[lane] = q[1:]
			h.running++
			close(w.ready)
			h.metrics.hashQueued(h.waitingLocked())
			return
		}
	}
}

// queued counts the queued verifications (tests).
func (h *hashLimiter) queued() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waitingLocked()
}

// waitingLocked counts the queued verifications. Called with h.mu held.
func (h *hashLimiter) waitingLocked() int {
	n := 0
	for _, q := range h.lanes {
		n += len(q)
	}
	return n
}

// busy returns a BusyError whose Retry-After estimates when the queue
// will have drained.
func (h *hashLimiter) busy() error {
	h.mu.Lock()
	est := h.avg * time.Duration(h.waitingLocked()+1) / time.Duration(h.concurrent)
	h.mu.Unlock()
	h.metrics.hashBusy()
	secs := math.Ceil(est.Seconds())
	return &BusyError{RetryAfter: min(max(time.Duration(secs)*time.Second, time.Second), maxBusyRetry)}
}

func (h *hashLimiter) observe(d time.Duration) {
	h.mu.Lock()
	h.avg = (h.avg*7 + d) / 8
	h.mu.Unlock()
}

// HashesInFlightMax returns the most argon2id verifications that were
// ever running at once in this Service (for benchmarks and checks).
func (s *Service) HashesInFlightMax() int { return int(s.hashes.maxInflight.Load()) }
