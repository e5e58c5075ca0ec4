package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// consoleWorld is a store with the small city, a phone cap of 1, and a
// clock that moves only when the test moves it.
func consoleWorld(t *testing.T) (*store.Store, *fakeclock.Clock, store.User) {
	t.Helper()
	clock := fakeclock.At(fixtureStart)
	st, err := store.Open(t.TempDir(), store.Options{Create: true, NoSync: true, Now: clock.Now, MaxDevicesPerUser: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, clock, servertest.LoadStore(t, st, servertest.City())["leadA"]
}

func consoleToken(n int) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "console token %d", n)) }

// A console session's refresh never moves its end past the lifetime it
// signed in with, and one unheard of for its idle limit is refused; a
// phone past the phone cap is still refused while console sessions are
// signed in.
func TestStore_ConsoleSessionLimits(t *testing.T) {
	ctx := context.Background()
	st, clock, lead := consoleWorld(t)
	device := "00000000-0000-4000-8000-00000000c001"
	in := store.SignIn{DeviceID: device, RefreshHash: consoleToken(0), RefreshTTL: 2 * time.Hour, Console: true, Idle: time.Hour}
	if _, err := st.Login(ctx, &lead, in); err != nil {
		t.Fatal(err)
	}
	phone := store.SignIn{DeviceID: "00000000-0000-4000-8000-00000000b001", RefreshHash: consoleToken(100), RefreshTTL: 24 * time.Hour}
	if _, err := st.Login(ctx, &lead, phone); err != nil {
		t.Fatalf("the phone beside a console session: %v", err)
	}
	phone.DeviceID, phone.RefreshHash = "00000000-0000-4000-8000-00000000b002", consoleToken(101)
	if _, err := st.Login(ctx, &lead, phone); syncproto.ErrorCode(err) != syncproto.CodeTooManyDevices {
		t.Fatalf("a second phone past the cap of 1: %v", err)
	}
	for n := range 2 {
		clock.Add(50 * time.Minute) // busy: never idle
		if _, err := st.Refresh(ctx, consoleToken(n), device, consoleToken(n+1), 30*24*time.Hour, 0); err != nil {
			t.Fatalf("refresh %d of a busy session: %v", n+1, err)
		}
	}
	clock.Add(21 * time.Minute) // 2h01m after the sign-in
	if _, err := st.Refresh(ctx, consoleToken(2), device, consoleToken(3), 30*24*time.Hour, 0); syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("refresh past the lifetime: %v, want unauthorized", err)
	}

	idle := "00000000-0000-4000-8000-00000000c002"
	in.DeviceID, in.RefreshHash = idle, consoleToken(10)
	if _, err := st.Login(ctx, &lead, in); err != nil {
		t.Fatal(err)
	}
	clock.Add(61 * time.Minute)
	if _, err := st.Refresh(ctx, consoleToken(10), idle, consoleToken(11), 30*24*time.Hour, 0); syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("refresh of an idle session: %v, want unauthorized", err)
	}
	// Both ended: the upkeep forgets them, and keeps the phone.
	if _, err := st.ExpireDevices(ctx); err != nil {
		t.Fatal(err)
	}
	devices, err := st.DevicesOf(map[string]bool{lead.ID: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != 1 || devices[0].Console {
		t.Fatalf("after the upkeep: %+v, want the phone alone", devices)
	}
}

// The console's per-sign-in devices of before sessions (网页控制台 on
// platform web, signed in as phones were) are forgotten with the sessions
// at the first start: they no longer fill the phone cap. A phone stays.
func TestStore_EndConsoleSessions_OldConsoleDevices(t *testing.T) {
	ctx := context.Background()
	st, _, lead := consoleWorld(t)
	old := store.SignIn{DeviceID: "00000000-0000-4000-8000-00000000c0d1", Name: "网页控制台", Platform: "web",
		RefreshHash: consoleToken(0), RefreshTTL: 24 * time.Hour}
	if _, err := st.Login(ctx, &lead, old); err != nil {
		t.Fatal(err)
	}
	phone := store.SignIn{DeviceID: "00000000-0000-4000-8000-00000000b001", Name: "手机", Platform: "android",
		RefreshHash: consoleToken(1), RefreshTTL: 24 * time.Hour}
	if _, err := st.Login(ctx, &lead, phone); syncproto.ErrorCode(err) != syncproto.CodeTooManyDevices {
		t.Fatalf("the old console device should fill the cap of 1 before the start: %v", err)
	}
	if n, err := st.EndConsoleSessions(ctx, ""); err != nil || n != 1 {
		t.Fatalf("ended %d, %v; want the old console device", n, err)
	}
	if _, err := st.Login(ctx, &lead, phone); err != nil {
		t.Fatalf("the phone after the old console device went: %v", err)
	}
	if n, err := st.EndConsoleSessions(ctx, ""); err != nil || n != 0 {
		t.Fatalf("a second start ended %d, %v; the phone must stay", n, err)
	}
}

// On a cluster a node that starts ends the console sessions it held in
// its memory and those that name no node, never another node's: that
// node's browsers are still signed in.
func TestStore_EndConsoleSessions_OfOneNode(t *testing.T) {
	ctx := context.Background()
	st, _, lead := consoleWorld(t)
	for i, node := range []string{"node1", "node2", ""} {
		in := store.SignIn{DeviceID: fmt.Sprintf("00000000-0000-4000-8000-00000000c00%d", i), RefreshHash: consoleToken(i),
			RefreshTTL: time.Hour, Console: true, Idle: time.Hour, Node: node}
		if _, err := st.Login(ctx, &lead, in); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.EndConsoleSessions(ctx, "node1"); err != nil || n != 2 {
		t.Fatalf("node1's start ended %d, %v; want its own and the one of no node", n, err)
	}
	if _, err := st.Refresh(ctx, consoleToken(1), "00000000-0000-4000-8000-00000000c001", consoleToken(11), time.Hour, 0); err != nil {
		t.Fatalf("node2's session after node1 started: %v", err)
	}
	if _, err := st.Refresh(ctx, consoleToken(0), "00000000-0000-4000-8000-00000000c000", consoleToken(10), time.Hour, 0); syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("node1's own session after its start: %v, want unauthorized", err)
	}
	if n, err := st.EndConsoleSessions(ctx, ""); err != nil || n != 1 {
		t.Fatalf("one node's start ended %d, %v; want every session left", n, err)
	}
}
