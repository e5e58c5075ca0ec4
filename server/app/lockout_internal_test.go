package app

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestSignins_BoundedMemory(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newSignins(Lockout{MaxKeys: 100, FailureRate: -1}, func() time.Time { return now })
	for i := 0; i < 10_000; i++ {
		a, err := s.begin(context.Background(), fmt.Sprint("guess", i))
		if err != nil {
			t.Fatal(err)
		}
		a.failed()
		if n := len(s.users); n > 100 {
			t.Fatalf("after %d usernames: %d remembered, want at most 100", i+1, n)
		}
	}
	// A username with failures but no lockout is forgotten once its
	// window has passed; one that was locked is kept for a day, so the
	// next lockout still doubles.
	for i := 0; i < DefaultLockoutThreshold+1; i++ {
		a, err := s.begin(context.Background(), "target")
		if err == nil {
			a.failed()
		}
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.begin(context.Background(), "later"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.users["target"]; !ok || len(s.users) != 2 {
		t.Fatalf("after the sweep %d usernames remain, target kept: %v", len(s.users), ok)
	}
	now = now.Add(strikeMemory)
	if _, err := s.begin(context.Background(), "much-later"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.users["target"]; ok {
		t.Fatal("a lockout a day old is still remembered")
	}
}
