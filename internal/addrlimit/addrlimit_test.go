package addrlimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                   "192.0.2.7",
		"192.0.2.7:5000":              "192.0.2.7",
		"[::ffff:192.0.2.7]:80":       "192.0.2.7",
		"2001:db8:1:2:aaaa::1":        "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:8000": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:1":            "fe80::/64",
		"not-an-ip":                   "not-an-ip",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBucketRefills(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(1, 2, 0, c.now)
	if !l.Allow("10.0.0.1:1") || !l.Allow("10.0.0.1:2") || l.Allow("10.0.0.1:3") {
		t.Fatal("burst of 2 not enforced")
	}
	if !l.Allow("10.0.0.2") {
		t.Fatal("another address shares the bucket")
	}
	c.add(time.Second)
	if !l.Allow("10.0.0.1") || l.Allow("10.0.0.1") {
		t.Fatal("refill of one token per second")
	}
	if !New(0, 1, 1, c.now).Allow("x") {
		t.Fatal("rate 0 must allow")
	}
}

// One /64 is one bucket, however many addresses inside it are used.
func TestIPv6By64(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(1, 3, 0, c.now)
	n := 0
	for i := range 100 {
		if l.Allow(fmt.Sprintf("[2001:db8:0:7:%x::1]:443", i+1)) {
			n++
		}
	}
	if n != 3 || l.Len() != 1 {
		t.Fatalf("%d allowed from one /64 in %d buckets, want 3 in 1", n, l.Len())
	}
}

// A full table evicts the least recently used bucket: newcomers are never
// refused, a client in use keeps its bucket (its count is not reset), and
// the table stays bounded.
func TestFullTableEvictsLRU(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(0.001, 2, 8, c.now)
	// the real client spends its burst
	for i, want := range []bool{true, true, false} {
		if l.Allow("10.9.9.9") != want {
			t.Fatalf("burst: request %d", i)
		}
	}
	for i := range 1000 {
		if i%5 == 0 {
			// the real client keeps asking: it stays recently used and
			// stays limited
			if l.Allow("10.9.9.9") {
				t.Fatal("the busy client's bucket was reset by eviction")
			}
		}
		if !l.Allow(fmt.Sprintf("[2001:db8:%x::1]:1", i)) {
			t.Fatalf("newcomer %d refused: a full table must evict, not refuse", i)
		}
		if l.Len() > 8 {
			t.Fatalf("table grew to %d", l.Len())
		}
	}
}
