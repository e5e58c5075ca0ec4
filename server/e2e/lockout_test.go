package e2e_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

func TestLockout(t *testing.T) {
	clock := newStepClock()
	srv := servertest.Start(t, servertest.Options{Now: clock.Now})
	srv.LoadCity(t)
	fail := func(username string) {
		t.Helper()
		wantError(t, loginFrom(t, srv, "", username, "wrong-password-1"), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	}

	for i := 0; i < app.DefaultLockoutThreshold; i++ {
		fail("a1")
	}
	// Locked: the right password is refused, unchecked, for 15 minutes.
	locked := wantRetryAfter(t, loginFrom(t, srv, "", "a1", servertest.CityPassword), 900)
	clock.Add(10 * time.Minute)
	wantRetryAfter(t, loginFrom(t, srv, "", "a1", servertest.CityPassword), 300)
	// Other usernames are not locked with it.
	wantOK(t, loginFrom(t, srv, "", "a2x", servertest.CityPassword), nil)

	// An unknown username locks the same way, with the same answer.
	for i := 0; i < app.DefaultLockoutThreshold; i++ {
		fail("nobody")
	}
	unknown := wantRetryAfter(t, loginFrom(t, srv, "", "nobody", "any-password-1"), 900)
	if unknown.Message != locked.Message {
		t.Fatalf("an unknown username's lockout says %q, a real one's %q", unknown.Message, locked.Message)
	}

	clock.Add(5 * time.Minute)
	wantOK(t, loginFrom(t, srv, "", "a1", servertest.CityPassword), nil)

	t.Run("DoublesInARow", func(t *testing.T) {
		for i := 0; i < app.DefaultLockoutThreshold; i++ {
			fail("a2y")
		}
		wantRetryAfter(t, loginFrom(t, srv, "", "a2y", servertest.CityPassword), 900)
		clock.Add(15 * time.Minute)
		for i := 0; i < app.DefaultLockoutThreshold; i++ {
			fail("a2y")
		}
		wantRetryAfter(t, loginFrom(t, srv, "", "a2y", servertest.CityPassword), 1800)
		clock.Add(30 * time.Minute)
		wantOK(t, loginFrom(t, srv, "", "a2y", servertest.CityPassword), nil)
		// A success clears the count: five more failures are allowed.
		for i := 0; i < app.DefaultLockoutThreshold; i++ {
			fail("a2y")
		}
		wantRetryAfter(t, loginFrom(t, srv, "", "a2y", servertest.CityPassword), 900)
	})

	t.Run("NewPasswordUnlocks", func(t *testing.T) {
		for i := 0; i < app.DefaultLockoutThreshold; i++ {
			fail("b1")
		}
		wantRetryAfter(t, loginFrom(t, srv, "", "b1", servertest.CityPassword), 900)
		admin := srv.Admin(t)
		if _, err := admin.UpsertUsers(context.Background(), []syncproto.UserInput{{Username: "b1", Name: "黄村四", Unit: servertest.UnitVillB1, Password: "reset-password-1"}}); err != nil {
			t.Fatal(err)
		}
		wantOK(t, loginFrom(t, srv, "", "b1", "reset-password-1"), nil)
	})
}

func TestLockout_PerAddress(t *testing.T) {
	clock := newStepClock()
	// Three failures from one address, across usernames, then one every
	// 20 seconds.
	srv := servertest.Start(t, servertest.Options{Now: clock.Now,
		Lockout:   app.Lockout{FailureRate: 0.05, FailureBurst: 3},
		RateLimit: httpapi.RateLimit{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	srv.LoadCity(t)
	for _, u := range []string{"a1", "a2x", "nobody"} {
		wantError(t, loginFrom(t, srv, "203.0.113.7", u, "wrong-password-1"), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	}
	// The address is held back, whatever the username or password...
	wantRetryAfter(t, loginFrom(t, srv, "203.0.113.7", "b1", servertest.CityPassword), 20)
	// ...and no other address is.
	wantOK(t, loginFrom(t, srv, "203.0.113.8", "b1", servertest.CityPassword), nil)
	clock.Add(20 * time.Second)
	wantOK(t, loginFrom(t, srv, "203.0.113.7", "b1", servertest.CityPassword), nil)
	// Successes spend nothing: the next failure still finds its token.
	wantOK(t, loginFrom(t, srv, "203.0.113.7", "b1", servertest.CityPassword), nil)
	wantError(t, loginFrom(t, srv, "203.0.113.7", "b1", "wrong-password-1"), http.StatusUnauthorized, syncproto.CodeUnauthorized)
}
