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

// devicesOf counts the devices the store keeps for a user.
func devicesOf(t *testing.T, srv *servertest.Server, userID string) int {
	t.Helper()
	devices, err := srv.Store.DevicesOf(map[string]bool{userID: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(devices)
}

// loginDevice signs a1 in from deviceID over HTTP, as a phone would.
func loginDevice(t *testing.T, srv *servertest.Server, deviceID string) rawResp {
	t.Helper()
	return send(t, srv.URL, rawReq{Path: "/v1/auth/login", ContentType: syncproto.MediaJSON,
		Body: mustEncode(t, syncproto.JSON, syncproto.LoginRequest{Username: "a1", Password: servertest.CityPassword, DeviceID: deviceID, DeviceName: "phone", Platform: "test"})})
}

// wantTooManyDevices checks the refusal of a sign-in past the cap.
func wantTooManyDevices(t *testing.T, r rawResp, max int) {
	t.Helper()
	e := wantError(t, r, http.StatusForbidden, syncproto.CodeTooManyDevices)
	if got, _ := e.Details["max_devices"].(float64); int(got) != max {
		t.Fatalf("details.max_devices = %v, want %d", e.Details["max_devices"], max)
	}
	want := "this account is already signed in on as many devices as allowed (3); sign out on a device you no longer use, or ask an administrator to revoke it, then sign in again"
	if e.Message != want {
		t.Fatalf("message %q", e.Message)
	}
}

// Signing in again and again from new devices used to register a device
// each time. Past the cap a sign-in is refused with a clear error and
// stores nothing; a device that signs out makes room, and one that never
// sent an op is then forgotten.
func TestDevices_CapPerUser(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{MaxDevicesPerUser: 3})
	ids := srv.LoadCity(t)
	var phones []*servertest.Device
	for i := 0; i < 3; i++ {
		phones = append(phones, srv.Login(t, "a1", servertest.CityPassword))
	}
	for i := 0; i < 20; i++ {
		wantTooManyDevices(t, loginDevice(t, srv, uuid.NewString()), 3)
	}
	if n := devicesOf(t, srv, ids["a1"]); n != 3 {
		t.Fatalf("after the refused sign-ins the store keeps %d devices of a1, want 3", n)
	}
	// A phone already signed in may sign in again: it is not one more.
	wantOK(t, loginDevice(t, srv, phones[0].ID), nil)
	// The other users are not touched by a1's cap.
	srv.Login(t, "a2x", servertest.CityPassword)

	if err := phones[1].Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	newPhone := uuid.NewString()
	wantOK(t, loginDevice(t, srv, newPhone), nil)
	if _, ok, _ := srv.Store.Device(phones[1].ID); ok {
		t.Fatal("the device signed out, which sent nothing, is still kept")
	}
	if n := devicesOf(t, srv, ids["a1"]); n != 3 {
		t.Fatalf("the store keeps %d devices of a1, want 3", n)
	}
	wantTooManyDevices(t, loginDevice(t, srv, uuid.NewString()), 3)

	// An administrator's revocation makes room too.
	if _, err := srv.Admin(t).RevokeDevice(context.Background(), phones[2].ID, false); err != nil {
		t.Fatal(err)
	}
	wantOK(t, loginDevice(t, srv, uuid.NewString()), nil)
}

// A device unseen for the device expiry must sign in again and no longer
// counts; it is forgotten, at its user's next sign-in from a new device or
// by the daily upkeep, unless it sent ops, whose client_seq the phone
// needs to go on where it stopped.
func TestDevices_Expiry(t *testing.T) {
	clock := newStepClock()
	srv := servertest.Start(t, servertest.Options{Now: clock.Now, MaxDevicesPerUser: 3, DeviceExpiry: 48 * time.Hour})
	ids := srv.LoadCity(t)
	warning := srv.Import(t, "center1", servertest.FeedRow("DEV-1", servertest.UnitVillA1, syncproto.RiskHigh, clock.Now().Add(-time.Hour)))["DEV-1"]
	idle := srv.Login(t, "a1", servertest.CityPassword)
	worker := srv.Login(t, "a1", servertest.CityPassword)
	mustApplied(t, push(t, worker, op(worker, syncproto.OpEscalated, warning, 0, syncproto.OpBody{Reason: "急"})).Results[0])
	srv.Login(t, "a1", servertest.CityPassword)
	wantTooManyDevices(t, loginDevice(t, srv, uuid.NewString()), 3)
	other := srv.Login(t, "b1", servertest.CityPassword)

	clock.Add(48 * time.Hour)
	e := wantError(t, send(t, srv.URL, rawReq{Path: "/v1/auth/refresh", ContentType: syncproto.MediaJSON,
		Body: mustEncode(t, syncproto.JSON, syncproto.RefreshRequest{RefreshToken: idle.Login.RefreshToken, DeviceID: idle.ID})}),
		http.StatusUnauthorized, syncproto.CodeUnauthorized)
	if e.Message != "this device was not used for 2 days; sign in again" {
		t.Fatalf("message %q", e.Message)
	}
	wantOK(t, loginDevice(t, srv, uuid.NewString()), nil)
	if _, ok, _ := srv.Store.Device(idle.ID); ok {
		t.Fatal("the expired device that sent nothing is still kept after a1 signed in")
	}
	if d, ok, _ := srv.Store.Device(worker.ID); !ok || d.LastClientSeq != 1 {
		t.Fatalf("the device that sent an op: %+v, kept %v", d, ok)
	}
	if n := devicesOf(t, srv, ids["a1"]); n != 2 {
		t.Fatalf("the store keeps %d devices of a1, want 2 (the new one and the one that sent an op)", n)
	}

	// b1 never signs in again: the upkeep forgets its device.
	if n, err := srv.Store.ExpireDevices(context.Background()); err != nil || n == 0 {
		t.Fatalf("ExpireDevices forgot %d devices, %v", n, err)
	}
	if _, ok, _ := srv.Store.Device(other.ID); ok {
		t.Fatal("b1's expired device is still kept")
	}
	if _, ok, _ := srv.Store.Device(worker.ID); !ok {
		t.Fatal("the upkeep forgot the device that sent an op")
	}
	// The phone that sent an op signs in again and goes on from its seq.
	again, err := srv.LoginDevice("a1", servertest.CityPassword, worker.ID)
	if err != nil {
		t.Fatal(err)
	}
	again.NextSeq()
	mustApplied(t, push(t, again, op(again, syncproto.OpEscalated, warning, 0, syncproto.OpBody{Reason: "再次"})).Results[0])
}
