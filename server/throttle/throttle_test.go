package throttle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/throttle"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func TestTable_TakeUntilEmptyThenRefill(t *testing.T) {
	tab := throttle.New(2, 3, 0) // 2 a second, burst 3
	for i := 0; i < 3; i++ {
		if d := tab.Take("a", t0); d != 0 {
			t.Fatalf("take %d: wait %s, want none within the burst", i+1, d)
		}
	}
	d := tab.Take("a", t0)
	if d != 500*time.Millisecond {
		t.Fatalf("take past the burst: wait %s, want 500ms (one token at 2/s)", d)
	}
	if got := throttle.Seconds(d); got != 1 {
		t.Fatalf("Seconds(%s) = %d, want 1", d, got)
	}
	// A refused take spends nothing: the wait does not grow.
	if d2 := tab.Take("a", t0); d2 != d {
		t.Fatalf("second refused take: wait %s, want %s", d2, d)
	}
	if w := tab.Wait("a", t0); w != d {
		t.Fatalf("Wait = %s, want %s", w, d)
	}
	if d := tab.Take("b", t0); d != 0 {
		t.Fatalf("another key is limited: wait %s", d)
	}
	if d := tab.Take("a", t0.Add(500*time.Millisecond)); d != 0 {
		t.Fatalf("after the wait: still refused for %s", d)
	}
}

func TestTable_WaitSpendsNothing(t *testing.T) {
	tab := throttle.New(1, 1, 0)
	for i := 0; i < 5; i++ {
		if w := tab.Wait("a", t0); w != 0 {
			t.Fatalf("Wait on a full bucket = %s", w)
		}
	}
	if d := tab.Take("a", t0); d != 0 {
		t.Fatalf("take after waits: %s", d)
	}
	if w := tab.Wait("a", t0); w != time.Second {
		t.Fatalf("Wait on an empty bucket = %s, want 1s", w)
	}
}

func TestTable_HoldAndRelease(t *testing.T) {
	tab := throttle.New(0.1, 2, 0)
	_, release := tab.Hold("a", t0)
	if _, _ = tab.Hold("a", t0); tab.Wait("a", t0) == 0 {
		t.Fatal("two holds left a token in a bucket of 2")
	}
	// The first attempt did not count after all: its token comes back.
	release()
	if w := tab.Wait("a", t0); w != 0 {
		t.Fatalf("after the release: wait %s", w)
	}
	if d := tab.Take("a", t0); d != 0 {
		t.Fatalf("take after the release: %s", d)
	}
	if d, release := tab.Hold("a", t0); d != 10*time.Second || release != nil {
		t.Fatalf("hold of an empty bucket: wait %s, release %v", d, release != nil)
	}
}

func TestTable_ForgetsRefilledBuckets(t *testing.T) {
	tab := throttle.New(1, 10, 0)
	for i := 0; i < 100; i++ {
		tab.Take(fmt.Sprint("k", i), t0)
	}
	if n := tab.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// Ten seconds refill a bucket of 10 at 1/s; the sweep after a minute
	// forgets every bucket unused since.
	tab.Take("fresh", t0.Add(2*time.Minute))
	if n := tab.Len(); n != 1 {
		t.Fatalf("Len after the sweep = %d, want 1", n)
	}
}

func TestTable_BoundedKeys(t *testing.T) {
	tab := throttle.New(1, 10, 100)
	for i := 0; i < 10_000; i++ {
		tab.Take(fmt.Sprint("k", i), t0)
		if n := tab.Len(); n > 100 {
			t.Fatalf("after %d keys: %d buckets, want at most 100", i+1, n)
		}
	}
}

func TestTable_NilAllowsEverything(t *testing.T) {
	var tab *throttle.Table
	for i := 0; i < 1000; i++ {
		if d := tab.Take("a", t0); d != 0 {
			t.Fatalf("nil table refused: %s", d)
		}
	}
	if tab.Wait("a", t0) != 0 || tab.Len() != 0 {
		t.Fatal("nil table holds something")
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0:                                     1,
		time.Millisecond:                      1,
		time.Second:                           1,
		time.Second + 1:                       2,
		90 * time.Second:                      90,
		15*time.Minute - 300*time.Millisecond: 900,
	} {
		if got := throttle.Seconds(d); got != want {
			t.Errorf("Seconds(%s) = %d, want %d", d, got, want)
		}
	}
}
