package auth

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the hashing bounds.
const (
	// DefaultHashQueue: argon2id verifications that may wait for a slot
	// beyond the ones running; more are refused with a BusyError (503).
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

// DefaultMaxConcurrentHashes is half the CPUs (at least one): each
// argon2id verification (p=2) keeps two cores busy and takes 64 MiB.
func DefaultMaxConcurrentHashes() int { return max(1, runtime.NumCPU()/2) }

// hashLimiter bounds argon2id work: at most one verification in flight
// per address (the others from that address wait their turn, and never
// hold a place in the global queue while they do), at most cap(sem) in
// flight in total, and at most maxQueue waiting for a global slot — fewer
// when the machine is slow (maxHashWait).
type hashLimiter struct {
	sem      chan struct{}
	maxQueue int

	mu      sync.Mutex
	waiting int
	slots   map[string]*addrSlot
	avg     time.Duration // moving average of one verification

	inflight    atomic.Int64
	maxInflight atomic.Int64 // highest inflight seen (tests, benchmark)
	metrics     *Metrics
}

type addrSlot struct {
	ch   chan struct{} // capacity 1: the address's one verification
	refs int
}

func newHashLimiter(concurrent, queue int, m *Metrics) *hashLimiter {
	return &hashLimiter{
		sem: make(chan struct{}, concurrent), maxQueue: queue,
		slots: map[string]*addrSlot{}, avg: 100 * time.Millisecond, metrics: m,
	}
}

// acquire waits for addr's slot and then a global one. It fails with a
// *BusyError when addr already has perAddrHashQueue verifications waiting
// or the global queue is full, or with ctx's error.
func (h *hashLimiter) acquire(ctx context.Context, addr string) (release func(), err error) {
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
	if err := h.global(ctx); err != nil {
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
		<-h.sem
		<-s.ch
		drop()
	}, nil
}

// global takes a global slot, waiting in the bounded queue if needed.
func (h *hashLimiter) global(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	default:
	}
	h.mu.Lock()
	expected := h.avg * time.Duration(h.waiting+1) / time.Duration(cap(h.sem))
	if h.waiting >= h.maxQueue || (h.waiting > 0 && expected > maxHashWait) {
		h.mu.Unlock()
		return h.busy()
	}
	h.waiting++
	h.metrics.hashQueued(h.waiting)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.waiting--
		h.metrics.hashQueued(h.waiting)
		h.mu.Unlock()
	}()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// busy returns a BusyError whose Retry-After estimates when the queue
// will have drained.
func (h *hashLimiter) busy() error {
	h.mu.Lock()
	est := h.avg * time.Duration(h.waiting+1) / time.Duration(cap(h.sem))
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
