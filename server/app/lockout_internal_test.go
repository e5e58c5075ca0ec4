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

// TestSignins_FullTableKeepsLockouts: filling the table with junk usernames
// must not lift a lockout (it would give an attacker fresh guesses at the
// locked account). Junk is forgotten instead; when only locked usernames
// are left, a new username is refused until some expire.
func TestSignins_FullTableKeepsLockouts(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newSignins(Lockout{MaxKeys: 20, FailureRate: -1}, func() time.Time { return now })
	lock := func(name string) {
		for i := 0; i <= DefaultLockoutThreshold; i++ {
			if a, err := s.begin(context.Background(), name); err == nil {
				a.failed()
			}
		}
		if _, err := s.begin(context.Background(), name); err == nil {
			t.Fatalf("%s is not locked", name)
		}
	}
	lock("admin")
	for i := 0; i < 1000; i++ {
		if a, err := s.begin(context.Background(), fmt.Sprint("junk", i)); err == nil {
			a.failed()
		}
	}
	if _, err := s.begin(context.Background(), "admin"); err == nil {
		t.Fatal("a thousand junk usernames lifted admin's lockout")
	}
	// Only locked usernames left: a new one is refused, not let in
	// untracked, and no lockout is forgotten for it.
	allLocked := func() bool {
		for _, st := range s.users {
			if !now.Before(st.lockedUntil) {
				return false
			}
		}
		return len(s.users) == 20
	}
	for i := 1; !allLocked(); i++ {
		lock(fmt.Sprint("locked", i))
	}
	if _, err := s.begin(context.Background(), "newcomer"); err == nil {
		t.Fatal("a new username was let in with the table full of lockouts")
	}
	if _, ok := s.users["admin"]; !ok {
		t.Fatal("admin's lockout was forgotten to make room")
	}
	// Once the lockouts are over, there is room again.
	now = now.Add(DefaultLockoutMaxDuration)
	if _, err := s.begin(context.Background(), "newcomer"); err != nil {
		t.Fatalf("after the lockouts ended: %v", err)
	}
}

// TestSignins_FullTableOfJunkLockouts: an attacker who fills the table with
// locked usernames no account has cannot keep real users from signing in:
// those lockouts make room, an account's never does.
func TestSignins_FullTableOfJunkLockouts(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newSignins(Lockout{MaxKeys: 20, FailureRate: -1}, func() time.Time { return now })
	s.exists = func(u string) bool { return u == "admin" || u == "cadre-1" }
	for i := 0; i <= DefaultLockoutThreshold; i++ {
		if a, err := s.begin(context.Background(), "admin"); err == nil {
			a.failed()
		}
	}
	for i := 0; i < 200; i++ {
		for j := 0; j <= DefaultLockoutThreshold; j++ {
			if a, err := s.begin(context.Background(), fmt.Sprint("junk", i)); err == nil {
				a.failed()
			}
		}
	}
	a, err := s.begin(context.Background(), "cadre-1")
	if err != nil {
		t.Fatalf("a real user's sign-in with the table full of junk lockouts: %v", err)
	}
	a.succeeded()
	if _, err := s.begin(context.Background(), "admin"); err == nil {
		t.Fatal("admin's lockout was forgotten to make room")
	}
}
