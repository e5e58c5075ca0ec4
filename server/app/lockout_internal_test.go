package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
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
		if n, m := len(s.pairs.states), len(s.users.states); n > 100 || m > 100 {
			t.Fatalf("after %d usernames: %d and %d remembered, want at most 100", i+1, n, m)
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
	if _, ok := s.pairs.states[pairKey("target", "")]; !ok || len(s.pairs.states) != 2 {
		t.Fatalf("after the sweep %d usernames remain, target kept: %v", len(s.pairs.states), ok)
	}
	now = now.Add(strikeMemory)
	if _, err := s.begin(context.Background(), "much-later"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.pairs.states[pairKey("target", "")]; ok {
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
		for _, st := range s.pairs.states {
			if !now.Before(st.lockedUntil) {
				return false
			}
		}
		return len(s.pairs.states) == 20
	}
	for i := 1; !allLocked(); i++ {
		lock(fmt.Sprint("locked", i))
	}
	if _, err := s.begin(context.Background(), "newcomer"); err == nil {
		t.Fatal("a new username was let in with the table full of lockouts")
	}
	if _, ok := s.pairs.states[pairKey("admin", "")]; !ok {
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

// Failed guesses from one address lock the username for that address
// only: the cadre signs in from another, and a success there does not
// let the attacker's address guess again.
func TestSignins_LockPerAddress(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newSignins(Lockout{FailureRate: -1}, func() time.Time { return now })
	attacker := WithClient(context.Background(), "203.0.113.7")
	cadre := WithClient(context.Background(), "198.51.100.20")
	for i := 0; i < 3*DefaultLockoutThreshold; i++ {
		if a, err := s.begin(attacker, "cadre-411002001001-1"); err == nil {
			a.failed()
		}
	}
	if _, err := s.begin(attacker, "cadre-411002001001-1"); err == nil {
		t.Fatal("the attacker's address is not locked")
	}
	a, err := s.begin(cadre, "cadre-411002001001-1")
	if err != nil {
		t.Fatalf("the cadre from another address: %v", err)
	}
	a.succeeded()
	if _, err := s.begin(attacker, "cadre-411002001001-1"); err == nil {
		t.Fatal("the cadre's success lifted the lock of the attacker's address")
	}
}

// Guesses spread over many addresses are held back by the slower limit
// per username: past DefaultLockoutUserThreshold failures in the window,
// the username is locked from every address, a new one included.
func TestSignins_LockPerUsernameAcrossAddresses(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newSignins(Lockout{FailureRate: -1}, func() time.Time { return now })
	from := func(i int) context.Context { return WithClient(context.Background(), fmt.Sprintf("203.0.113.%d", i)) }
	addresses := DefaultLockoutUserThreshold / DefaultLockoutThreshold
	for i := 0; i < addresses; i++ {
		for j := 0; j < DefaultLockoutThreshold; j++ {
			a, err := s.begin(from(i), "admin")
			if err != nil {
				t.Fatalf("address %d, guess %d: %v", i, j, err)
			}
			a.failed()
		}
	}
	_, err := s.begin(from(200), "admin")
	if e := syncproto.AsError(err); e == nil || e.Code != syncproto.CodeRateLimited || e.Details["retry_after"] != int(DefaultLockoutDuration/time.Second) {
		t.Fatalf("a new address after %d failures from %d addresses: %v", DefaultLockoutUserThreshold, addresses, err)
	}
	now = now.Add(DefaultLockoutDuration)
	a, err := s.begin(from(200), "admin")
	if err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	a.succeeded()
}
