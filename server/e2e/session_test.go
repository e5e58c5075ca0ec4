package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// sessionEnded checks that token is refused by every kind of endpoint at
// once: pull and push (which check the device in their own transaction),
// and an endpoint checked before it runs. The answer is 401 token_expired
// with a message that says to sign in again, so a client refreshes, is
// refused, and shows its sign-in screen.
func sessionEnded(t *testing.T, srv *servertest.Server, token, deviceID, warningID string) {
	t.Helper()
	e := wantError(t, send(t, srv.URL, rawReq{Path: "/v1/sync/pull", Token: token, ContentType: syncproto.MediaMsgpack,
		Body: mustEncode(t, syncproto.Msgpack, syncproto.PullRequest{DeviceID: deviceID})}), http.StatusUnauthorized, syncproto.CodeTokenExpired)
	if e.Message != "this device's session has ended (signed out, or its refresh token was used twice); sign in again" {
		t.Errorf("message %q", e.Message)
	}
	escalate := syncproto.Op{ID: uuid.NewString(), ClientSeq: 1, Type: syncproto.OpEscalated, WarningID: warningID, At: time.Now(),
		Body: syncproto.OpBody{Reason: "after sign-out"}}
	wantError(t, send(t, srv.URL, rawReq{Path: "/v1/sync/push", Token: token, ContentType: syncproto.MediaMsgpack,
		Body: mustEncode(t, syncproto.Msgpack, syncproto.PushRequest{DeviceID: deviceID, Ops: []syncproto.Op{escalate}})}),
		http.StatusUnauthorized, syncproto.CodeTokenExpired)
	wantError(t, send(t, srv.URL, rawReq{Method: http.MethodGet, Path: "/v1/blobs/" + emptySHA256, Token: token}),
		http.StatusUnauthorized, syncproto.CodeTokenExpired)
	// Nothing the refused push carried was stored.
	dev, _, err := srv.Store.Device(deviceID)
	if err != nil || dev.LastClientSeq != 0 {
		t.Fatalf("device after the refused push: %+v, %v", dev, err)
	}
	if w, err := srv.Store.Warning(warningID); err != nil || w.Escalated {
		t.Fatalf("warning after the refused push: %+v, %v", w, err)
	}
}

// emptySHA256 names a photo nobody stored; a live token gets 404 for it.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// An access token stops working the moment its device signs out, not when
// it expires 15 minutes later, even after the server has cached it as
// verified.
func TestSession_LogoutEndsAccessToken(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	ids := srv.Import(t, "center1", servertest.FeedRow("SESS-1", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	phone := srv.Login(t, "a1", servertest.CityPassword)
	token := phone.Client.Token()
	wantOK(t, pullRaw(t, srv, phone), nil)
	wantError(t, send(t, srv.URL, rawReq{Method: http.MethodGet, Path: "/v1/blobs/" + emptySHA256, Token: token}),
		http.StatusNotFound, syncproto.CodeNotFound)

	if err := phone.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	sessionEnded(t, srv, token, phone.ID, ids["SESS-1"])

	// Signing in again on the same phone starts a session that works,
	// and the old token stays refused.
	again, err := srv.LoginDevice("a1", servertest.CityPassword, phone.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, pullRaw(t, srv, again), nil)
	sessionEnded(t, srv, token, phone.ID, ids["SESS-1"])
}

// When a spent refresh token comes back after its successor was used, the
// server ends every session of the device: the access tokens issued in it
// stop at once, the thief's as well as the phone's.
func TestSession_RefreshReuseEndsAccessTokens(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	srv.LoadCity(t)
	ids := srv.Import(t, "center1", servertest.FeedRow("SESS-2", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	phone := srv.Login(t, "a1", servertest.CityPassword)
	ctx := context.Background()

	// A thief with a copy of the phone's refresh token refreshes first,
	// and again, so the spent token is past any grace.
	thief := srv.Client()
	stolen, err := thief.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: phone.Login.RefreshToken, DeviceID: phone.ID})
	if err != nil {
		t.Fatal(err)
	}
	stolen2, err := thief.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: stolen.RefreshToken, DeviceID: phone.ID})
	if err != nil {
		t.Fatal(err)
	}
	thief.SetToken(stolen2.AccessToken)
	if _, err := thief.Pull(ctx, syncproto.PullRequest{DeviceID: phone.ID}); err != nil {
		t.Fatalf("the thief's token before the reuse: %v", err)
	}

	// The phone presents its token, now spent: reuse.
	_, err = phone.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: phone.Login.RefreshToken, DeviceID: phone.ID})
	if errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("the spent token: %v, want unauthorized", err)
	}
	for name, token := range map[string]string{"phone": phone.Login.AccessToken, "thief": stolen.AccessToken, "thief's newest": stolen2.AccessToken} {
		t.Run(name, func(t *testing.T) { sessionEnded(t, srv, token, phone.ID, ids["SESS-2"]) })
	}
	if _, err := thief.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: stolen2.RefreshToken, DeviceID: phone.ID}); errCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("the thief's refresh token after the reuse: %v", err)
	}
}
