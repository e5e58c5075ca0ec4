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

// Attempts under way count before their outcome is known, so concurrent
// guesses cannot all pass while the first are still being checked.
func TestSignins_AttemptsCountWhileUnderWay(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newSignins(Lockout{FailureRate: 0.1, FailureBurst: 3}, func() time.Time { return now })
	ctx := WithClient(context.Background(), "203.0.113.7")
	var started []signin
	for i := 0; i < 10; i++ {
		if a, err := s.begin(ctx, fmt.Sprint("user", i)); err == nil {
			started = append(started, a)
		}
	}
	if len(started) != 3 {
		t.Fatalf("%d sign-ins from one address under way, want 3", len(started))
	}
	// One proves right: the address gets its token back.
	started[0].succeeded()
	if _, err := s.begin(ctx, "another"); err != nil {
		t.Fatalf("after a success: %v", err)
	}
	// The same for one username: the sixth concurrent attempt is refused.
	s = newSignins(Lockout{FailureRate: -1}, func() time.Time { return now })
	n := 0
	for i := 0; i < 10; i++ {
		if _, err := s.begin(ctx, "target"); err == nil {
			n++
		}
	}
	if n != DefaultLockoutThreshold {
		t.Fatalf("%d attempts of one username under way, want %d", n, DefaultLockoutThreshold)
	}
}
