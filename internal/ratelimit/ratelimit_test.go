package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	l := New[string](2, 3, 0)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: %v %v", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after refilling")
	}
	if ok, _ := (*Limiter[string])(nil).Allow("x", now); !ok {
		t.Fatal("nil limiter refused")
	}
	if ok, _ := New[string](0, 0, 0).Allow("x", now); !ok {
		t.Fatal("rate 0 refused")
	}
}

// The table stays bounded under many sources: idle entries go first, then
// the least recently used.
func TestTableBounded(t *testing.T) {
	l := New[int](1, 1, 5)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		l.Allow(i, now.Add(time.Duration(i)*time.Millisecond))
	}
	if l.Len() > 5 {
		t.Fatalf("%d entries, want <= 5", l.Len())
	}
	// a source that stays busy keeps its (empty) bucket against newcomers
	busy := New[int](1, 1, 2)
	busy.Allow(1, now)
	busy.Allow(2, now.Add(time.Millisecond))
	busy.Allow(1, now.Add(2*time.Millisecond))
	busy.Allow(3, now.Add(3*time.Millisecond)) // evicts 2, the least recently used
	if ok, _ := busy.Allow(1, now.Add(4*time.Millisecond)); ok {
		t.Fatal("the busy source's bucket was reset by eviction")
	}
}
