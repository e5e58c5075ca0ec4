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
