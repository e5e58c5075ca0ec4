package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/testwait"
)

// testCmd is a command that writes nothing and weighs what it says; one
// with a hold waits for it inside its transaction, keeping the writer busy.
type testCmd struct {
	size    int
	hold    chan struct{}
	entered chan struct{}
}

func (*testCmd) kind() cmdKind { return 0 }
func (c *testCmd) weight() int { return c.size }
func (c *testCmd) apply(*Store, *bolt.Tx) (any, error) {
	if c.hold != nil {
		close(c.entered)
		<-c.hold
	}
	return nil, nil
}

// TestWriter_GroupsCutByBytes: requests queued while the writer commits
// go into the next groups no larger than MaxGroupBytes, in order, and one
// request larger than the cap still goes in, alone.
func TestWriter_GroupsCutByBytes(t *testing.T) {
	var mu sync.Mutex
	var groups []int
	s, err := Open(t.TempDir(), Options{Create: true, NoSync: true, MaxGroupBytes: 1000, OnCommit: func(requests int, _ time.Duration, _ bool) {
		mu.Lock()
		groups = append(groups, requests)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	mu.Lock()
	opened := len(groups) // the commits of opening the store
	mu.Unlock()

	hold, entered := make(chan struct{}), make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.write(ctx, &testCmd{size: 1, hold: hold, entered: entered}); err != nil {
			t.Error(err)
		}
	})
	<-entered
	// While the writer is held, queue ten requests of 400 bytes and then
	// one of 5000, one at a time so their order is known.
	sizes := []int{400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 5000}
	for i, size := range sizes {
		wg.Go(func() {
			if _, err := s.write(ctx, &testCmd{size: size}); err != nil {
				t.Error(err)
			}
		})
		testwait.Until(t, fmt.Sprintf("request %d queued", i+1), func() bool { return len(s.writes) == i+1 })
	}
	close(hold)
	released = true
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	got := groups[opened:]
	want := []int{1, 2, 2, 2, 2, 2, 1}
	if len(got) != len(want) {
		t.Fatalf("groups of %v requests, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("groups of %v requests, want %v", got, want)
		}
	}
}

// The writer cuts a group at the weight that dirties the page budget, as
// the groups before measured it: a store whose ops dirty more pages gets
// smaller groups, within MaxGroupBytes and above minGroupBytes.
func TestGroupSizer(t *testing.T) {
	g := groupSizer{budget: 24 << 20}
	if got := g.limit(8 << 20); got != 8<<20 {
		t.Fatalf("before any group: limit %d, want MaxGroupBytes", got)
	}
	g.observe(24<<20, 2<<20) // 12 bytes of pages a byte of weight
	if got := g.limit(8 << 20); got != 2<<20 {
		t.Fatalf("after a group of 2 MiB that dirtied 24 MiB: limit %d, want 2 MiB", got)
	}
	for range 50 {
		g.observe(48<<20, 1<<20) // the store grew deeper: 48 a byte
	}
	if got := g.limit(8 << 20); got < (1<<19)-(1<<16) || got > (1<<19)+(1<<16) {
		t.Fatalf("after groups dirtying 48 bytes a byte: limit %d, want about 512 KiB", got)
	}
	for range 50 {
		g.observe(1<<30, 1<<10)
	}
	if got := g.limit(8 << 20); got != minGroupBytes {
		t.Fatalf("after groups dirtying 1 MiB a byte: limit %d, want the floor %d", got, minGroupBytes)
	}
}

// A store measures the pages its commits dirty: after a push, the next
// group's limit follows what it measured.
func TestWriter_GroupsSizedByPages(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Create: true, NoSync: true, GroupPageBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.write(context.Background(), &testCmd{size: 1000}); err != nil {
		t.Fatal(err)
	}
	if got := s.sizer.limit(s.maxBytes); got != minGroupBytes {
		t.Fatalf("a store allowed a page a group cuts its groups at %d, want the floor %d", got, minGroupBytes)
	}
}
