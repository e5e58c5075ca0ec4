package e2e_test

import (
	"context"
	"crypto/ed25519"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

func rotateKey(t *testing.T, srv *servertest.Server, token string) rawResp {
	t.Helper()
	return send(t, srv.URL, rawReq{Path: "/v1/admin/keys/rotate", Token: token, Accept: "application/json"})
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := jwtParts(t, token)
	kid, _ := header["kid"].(string)
	if kid == "" {
		t.Fatalf("token header %v has no kid", header)
	}
	return kid
}

// syncsWith pushes an attempt and pulls with token as device d: both must
// be accepted.
func syncsWith(t *testing.T, srv *servertest.Server, d *servertest.Device, token, warningID string) {
	t.Helper()
	o := op(d, syncproto.OpRecorded, warningID, 0, recordBody(syncproto.OutcomeRefused, true))
	var resp syncproto.PushResponse
	wantOK(t, send(t, srv.URL, rawReq{Path: "/v1/sync/push", Token: token, ContentType: "application/json",
		Body: mustEncode(t, syncproto.JSON, syncproto.PushRequest{DeviceID: d.ID, Ops: []syncproto.Op{o}})}), &resp)
	mustApplied(t, resp.Results[0])
	wantOK(t, send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: token, ContentType: "application/json",
		Body: mustEncode(t, syncproto.JSON, syncproto.PullRequest{DeviceID: d.ID})}), nil)
}

func TestKeyRotation(t *testing.T) {
	clock := newStepClock()
	dir := t.TempDir()
	srv, err := servertest.Open(servertest.Options{Dir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			srv.Close()
		}
	})
	srv.LoadCity(t)
	ids := srv.Import(t, "center1", servertest.FeedRow("K1", servertest.UnitVillA1, syncproto.RiskHigh, clock.Now().Add(-time.Hour)))
	admin := srv.Admin(t)
	before := srv.Login(t, "a1", servertest.CityPassword)
	oldKID := kidOf(t, before.Login.AccessToken)

	t.Run("OnlyRootAdmins", func(t *testing.T) {
		if _, err := admin.UpsertUsers(context.Background(), []syncproto.UserInput{{Username: "countyadmin", Name: "县管理员", Unit: servertest.UnitCounty, Admin: new(true), Password: "county-password-1"}}); err != nil {
			t.Fatal(err)
		}
		for _, u := range []struct{ name, password string }{{"countyadmin", "county-password-1"}, {"center1", servertest.CityPassword}, {"a1", servertest.CityPassword}} {
			d := srv.Login(t, u.name, u.password)
			wantError(t, rotateKey(t, srv, d.Client.Token()), http.StatusForbidden, syncproto.CodeForbidden)
		}
		wantError(t, rotateKey(t, srv, ""), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	})

	var rot app.KeyRotation
	wantOK(t, rotateKey(t, srv, admin.Client.Token()), &rot)
	if rot.KID == "" || rot.KID == oldKID || !slices.Equal(rot.Verifying, []string{oldKID, rot.KID}) || len(rot.Removed) != 0 {
		t.Fatalf("rotation answered %+v; the old kid was %s", rot, oldKID)
	}
	after := srv.Login(t, "a1", servertest.CityPassword)
	if kid := kidOf(t, after.Login.AccessToken); kid != rot.KID {
		t.Fatalf("a token signed after the rotation has kid %s, want %s", kid, rot.KID)
	}
	syncsWith(t, srv, before, before.Login.AccessToken, ids["K1"])
	syncsWith(t, srv, after, after.Login.AccessToken, ids["K1"])

	// A restart loads both keys and signs with the new one.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	srv = servertest.Start(t, servertest.Options{Dir: dir, Now: clock.Now})
	syncsWith(t, srv, before, before.Login.AccessToken, ids["K1"])
	syncsWith(t, srv, after, after.Login.AccessToken, ids["K1"])
	if kid := kidOf(t, srv.Login(t, "a2x", servertest.CityPassword).Login.AccessToken); kid != rot.KID {
		t.Fatalf("after a restart new tokens have kid %s, want %s", kid, rot.KID)
	}

	// Past the access-token lifetime and the margin, the old key's tokens
	// have all expired; the next rotation deletes it.
	clock.Add(auth.DefaultAccessTTL + app.KeyRetentionMargin + time.Minute)
	old := pullRaw(t, srv, before)
	wantError(t, old, http.StatusUnauthorized, syncproto.CodeTokenExpired)
	admin = srv.Admin(t)
	var again app.KeyRotation
	wantOK(t, rotateKey(t, srv, admin.Client.Token()), &again)
	if !slices.Equal(again.Removed, []string{oldKID}) || !slices.Equal(again.Verifying, []string{rot.KID, again.KID}) {
		t.Fatalf("second rotation answered %+v; want %s removed and %s kept", again, oldKID, rot.KID)
	}
	// Its tokens are now refused for their unknown key, not their age; the
	// key retired just now still verifies (its token is only expired).
	e := wantError(t, pullRaw(t, srv, before), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	if e.Message != "the access token's signing key is unknown; sign in again" {
		t.Fatalf("old kid's token refused with %q", e.Message)
	}
	wantError(t, pullRaw(t, srv, after), http.StatusUnauthorized, syncproto.CodeTokenExpired)
	keys, active, err := srv.Store.ListSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || active != again.KID || keys[0].Retired.IsZero() || !keys[1].Retired.IsZero() {
		t.Fatalf("stored keys %+v, active %s", keys, active)
	}
}

// TestKeyRotation_CopiedKey: someone who copied the store (an old backup)
// holds the signing key and can sign what they like. After one rotation
// the server refuses what it would never have made: a token of the old key
// signed after it retired, and one claiming a longer life than the TTL;
// a restart keeps that, since the retirement is stored.
func TestKeyRotation_CopiedKey(t *testing.T) {
	clock := newStepClock()
	dir := t.TempDir()
	srv := servertest.Start(t, servertest.Options{Dir: dir, Now: clock.Now})
	srv.LoadCity(t)
	d := srv.Login(t, "a1", servertest.CityPassword)
	keys, active, err := srv.Store.ListSigningKeys()
	if err != nil || len(keys) != 1 || keys[0].ID != active {
		t.Fatalf("keys %v, active %s: %v", keys, active, err)
	}
	copied := ed25519.NewKeyFromSeed(keys[0].Seed)
	_, claims, _ := jwtParts(t, d.Login.AccessToken)
	forge := func(issued time.Time, life time.Duration) string {
		c := maps.Clone(claims)
		c["iat"], c["exp"] = issued.Unix(), issued.Add(life).Unix()
		input := jwtSigningInput(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": active}, c)
		return input + "." + b64.EncodeToString(ed25519.Sign(copied, []byte(input)))
	}
	pullWith := func(srv *servertest.Server, token string) rawResp {
		return send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: token, ContentType: "application/json",
			Body: mustEncode(t, syncproto.JSON, syncproto.PullRequest{DeviceID: d.ID})})
	}
	// Before the rotation a forgery with the server's own TTL is as good as
	// the real thing (the key is the secret), but not a longer-lived one.
	wantOK(t, pullWith(srv, forge(clock.Now(), auth.DefaultAccessTTL)), nil)
	wantError(t, pullWith(srv, forge(clock.Now(), 365*24*time.Hour)), http.StatusUnauthorized, syncproto.CodeTokenExpired)

	wantOK(t, rotateKey(t, srv, srv.Admin(t).Client.Token()), nil)
	clock.Add(2 * time.Minute)
	after := forge(clock.Now(), auth.DefaultAccessTTL)
	wantError(t, pullWith(srv, after), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	// Backdated to before the rotation, it lives out an honest token's
	// life and no more.
	backdated := forge(clock.Now().Add(-3*time.Minute), auth.DefaultAccessTTL)
	wantOK(t, pullWith(srv, backdated), nil)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = servertest.Start(t, servertest.Options{Dir: dir, Now: clock.Now})
	wantError(t, pullWith(srv, after), http.StatusUnauthorized, syncproto.CodeUnauthorized)
	clock.Add(auth.DefaultAccessTTL)
	wantError(t, pullWith(srv, backdated), http.StatusUnauthorized, syncproto.CodeTokenExpired)
}
