package e2e_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestRefreshGrace drives PROTOCOL.md section 3's grace for a lost refresh
// answer over HTTP, on the server's default window: a phone that lost the
// answer and presents its spent token again stays signed in; a spent token
// coming back in any other way still ends every session of the device.
// Each case signs in a device of its own; the clock only moves on.
func TestRefreshGrace(t *testing.T) {
	clock := fakeclock.At(time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC))
	srv := servertest.Start(t, servertest.Options{Now: clock.Now})
	srv.LoadCity(t)
	const grace = app.DefaultRefreshGrace

	// mustRefresh presents rt, which must give a new pair whose access
	// token pulls.
	mustRefresh := func(t *testing.T, rt, deviceID string) syncproto.TokenResponse {
		t.Helper()
		var pair syncproto.TokenResponse
		wantOK(t, refresh(t, srv, rt, deviceID), &pair)
		if pair.AccessToken == "" || pair.RefreshToken == "" || pair.RefreshToken == rt || pair.User.Username != "a1" {
			t.Fatalf("refresh answered %+v", pair)
		}
		wantOK(t, send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: pair.AccessToken, ContentType: syncproto.MediaMsgpack,
			Body: mustEncode(t, syncproto.Msgpack, syncproto.PullRequest{DeviceID: deviceID})}), nil)
		return pair
	}
	refused := func(t *testing.T, rt, deviceID string) {
		t.Helper()
		wantError(t, refresh(t, srv, rt, deviceID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	}

	t.Run("LostAnswer", func(t *testing.T) {
		d := srv.Login(t, "a1", testPassword)
		rt0 := d.Login.RefreshToken
		lost := mustRefresh(t, rt0, d.ID)
		clock.Add(2 * time.Minute)
		retry := mustRefresh(t, rt0, d.ID)
		if retry.RefreshToken == lost.RefreshToken {
			t.Fatal("the retry got the lost answer's refresh token again")
		}
		clock.Add(time.Hour)
		next := mustRefresh(t, retry.RefreshToken, d.ID)
		// The lost answer's token was retired by the retry: it comes
		// back as a copy would, and ends the chain.
		refused(t, lost.RefreshToken, d.ID)
		refused(t, next.RefreshToken, d.ID)
	})

	t.Run("RetriesInWindow", func(t *testing.T) {
		// The second and the third retry work too; each retires the one
		// before, whichever of them comes back later.
		for _, back := range []int{0, 1} {
			t.Run(fmt.Sprintf("Retired%d", back+1), func(t *testing.T) {
				d := srv.Login(t, "a1", testPassword)
				rt0 := d.Login.RefreshToken
				pairs := []syncproto.TokenResponse{mustRefresh(t, rt0, d.ID)}
				for range 2 {
					clock.Add(time.Minute)
					pairs = append(pairs, mustRefresh(t, rt0, d.ID))
				}
				refused(t, pairs[back].RefreshToken, d.ID)
				refused(t, pairs[2].RefreshToken, d.ID)
			})
		}
		t.Run("NewestLives", func(t *testing.T) {
			d := srv.Login(t, "a1", testPassword)
			rt0 := d.Login.RefreshToken
			mustRefresh(t, rt0, d.ID)
			mustRefresh(t, rt0, d.ID)
			third := mustRefresh(t, rt0, d.ID)
			mustRefresh(t, third.RefreshToken, d.ID)
		})
	})

	t.Run("AfterSuccessorUsed", func(t *testing.T) {
		d := srv.Login(t, "a1", testPassword)
		rt0 := d.Login.RefreshToken
		first := mustRefresh(t, rt0, d.ID)
		second := mustRefresh(t, first.RefreshToken, d.ID)
		// rt0 is two generations back, within the window of both spends,
		// and second unused: only first, just before the live token,
		// could be a retry.
		refused(t, rt0, d.ID)
		refused(t, second.RefreshToken, d.ID)
	})

	t.Run("AfterWindow", func(t *testing.T) {
		d := srv.Login(t, "a1", testPassword)
		rt0 := d.Login.RefreshToken
		first := mustRefresh(t, rt0, d.ID)
		clock.Add(grace + time.Second)
		refused(t, rt0, d.ID)
		refused(t, first.RefreshToken, d.ID)
	})

	t.Run("StolenToken", func(t *testing.T) {
		t.Run("UsedAfterSuccessor", func(t *testing.T) {
			phone := srv.Login(t, "a1", testPassword)
			stolen := phone.Login.RefreshToken
			first := mustRefresh(t, stolen, phone.ID)
			clock.Add(20 * time.Minute)
			second := mustRefresh(t, first.RefreshToken, phone.ID)
			clock.Add(10 * time.Minute)
			refused(t, stolen, phone.ID)
			refused(t, second.RefreshToken, phone.ID)
		})
		t.Run("UsedInWindow", func(t *testing.T) {
			// The thief is quicker than the phone's next refresh: the
			// server cannot tell it from a retry and answers it. The
			// phone's own token was retired by that, so its next refresh
			// ends every session of the device, the thief's too.
			phone := srv.Login(t, "a1", testPassword)
			stolen := phone.Login.RefreshToken
			first := mustRefresh(t, stolen, phone.ID)
			clock.Add(time.Minute)
			thief := mustRefresh(t, stolen, phone.ID)
			clock.Add(20 * time.Minute)
			refused(t, first.RefreshToken, phone.ID)
			refused(t, thief.RefreshToken, phone.ID)
		})
	})
}

// With the grace off (--refresh-grace 0s), a lost answer's retry ends the
// chain, as it did before the grace existed.
func TestRefreshGrace_Off(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{RefreshGrace: app.NoRefreshGrace})
	srv.LoadCity(t)
	d := srv.Login(t, "a1", testPassword)
	var lost syncproto.TokenResponse
	wantOK(t, refresh(t, srv, d.Login.RefreshToken, d.ID), &lost)
	wantError(t, refresh(t, srv, d.Login.RefreshToken, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	wantError(t, refresh(t, srv, lost.RefreshToken, d.ID), http.StatusUnauthorized, syncproto.CodeUnauthorized)
}

// refresh presents refresh token rt of deviceID to POST /v1/auth/refresh.
func refresh(t *testing.T, srv *servertest.Server, rt, deviceID string) rawResp {
	t.Helper()
	return send(t, srv.URL, rawReq{Path: "/v1/auth/refresh", ContentType: syncproto.MediaMsgpack,
		Body: mustEncode(t, syncproto.Msgpack, syncproto.RefreshRequest{RefreshToken: rt, DeviceID: deviceID})})
}
