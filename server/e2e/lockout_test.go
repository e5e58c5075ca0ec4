package e2e_test

import (
	"context"
	"fmt"
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

// lockoutServer trusts 127.0.0.1 as a proxy, so each test request names
// its client address in X-Forwarded-For.
func lockoutServer(t *testing.T, clock func() time.Time) *servertest.Server {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{Now: clock,
		RateLimit: httpapi.RateLimit{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	srv.LoadCity(t)
	return srv
}

// refreshes checks that a phone signed in before keeps its session.
func refreshes(t *testing.T, srv *servertest.Server, d *servertest.Device) {
	t.Helper()
	resp, err := d.Refresh(context.Background(), syncproto.RefreshRequest{RefreshToken: d.Login.RefreshToken, DeviceID: d.ID})
	if err != nil {
		t.Fatalf("a phone signed in before: %v", err)
	}
	d.Login = resp
}

// Usernames are easy to guess (cadre-<village code>-1): an attacker who
// sends wrong passwords from one address locks the username for that
// address only. The cadre signs in from anywhere else, and phones already
// signed in keep refreshing.
func TestLockout_OneAttackerCannotKeepACadreOut(t *testing.T) {
	clock := newStepClock()
	srv := lockoutServer(t, clock.Now)
	phone := srv.Login(t, "a1", servertest.CityPassword)
	const attacker, cadre = "203.0.113.7", "198.51.100.20"
	for i := 0; i < app.DefaultLockoutThreshold; i++ {
		wantError(t, loginFrom(t, srv, attacker, "a1", "wrong-password-1"), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	}
	for i := 0; i < 20; i++ {
		e := wantRetryAfter(t, loginFrom(t, srv, attacker, "a1", servertest.CityPassword), 900)
		if e.Message != "too many failed sign-ins for this username from this network; try again in 15 minutes" {
			t.Fatalf("message %q", e.Message)
		}
	}
	wantOK(t, loginFrom(t, srv, cadre, "a1", servertest.CityPassword), nil)
	refreshes(t, srv, phone)
	// The cadre's success lifts nothing for the attacker's address.
	wantRetryAfter(t, loginFrom(t, srv, attacker, "a1", servertest.CityPassword), 900)
}

// Guesses spread over many addresses meet the slower limit per username:
// below it the cadre signs in from a new address; past it the username is
// locked for every address for the lockout's time, while phones already
// signed in keep refreshing.
func TestLockout_ManyAddresses(t *testing.T) {
	clock := newStepClock()
	srv := lockoutServer(t, clock.Now)
	spray := func(username string, addresses int) {
		t.Helper()
		for i := 0; i < addresses; i++ {
			for j := 0; j < app.DefaultLockoutThreshold; j++ {
				wantError(t, loginFrom(t, srv, fmt.Sprintf("203.0.113.%d", 10+i), username, "wrong-password-1"), http.StatusUnauthorized, syncproto.CodeUnauthorized)
			}
		}
	}
	addresses := app.DefaultLockoutUserThreshold / app.DefaultLockoutThreshold

	spray("a1", addresses-1)
	wantOK(t, loginFrom(t, srv, "198.51.100.20", "a1", servertest.CityPassword), nil)

	phone := srv.Login(t, "b1", servertest.CityPassword)
	spray("b1", addresses)
	e := wantRetryAfter(t, loginFrom(t, srv, "198.51.100.20", "b1", servertest.CityPassword), 900)
	if e.Message != "too many failed sign-ins for this username; try again in 15 minutes" {
		t.Fatalf("message %q", e.Message)
	}
	refreshes(t, srv, phone)
	clock.Add(app.DefaultLockoutDuration)
	wantOK(t, loginFrom(t, srv, "198.51.100.20", "b1", servertest.CityPassword), nil)
}
