package clientsdk_test

import (
	"context"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSDK_AwayPastTheTombstoneHorizon: a lead's phone is offline for 10
// days with an op pending, while a warning leaves its township; the server
// compacts away that remove, from the township's scope, with a 7-day horizon (shorter than the refresh
// token's life, so the phone is still signed in). At the next sync the phone is reset: its op is
// pushed first and applied once, and it no longer holds the warning that
// left, which it would keep for ever without the reset.
func TestSDK_AwayPastTheTombstoneHorizon(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.At(time.Now().Add(-10*24*time.Hour - time.Hour))
	ct := newCityWith(t, clock, servertest.Options{AccessTTL: 100 * 24 * time.Hour})
	var rows []syncproto.FeedWarning
	for ext, unit := range map[string]string{"H1": servertest.UnitVillA1, "H2": servertest.UnitVillA2, "H3": servertest.UnitVillA2, "H4": servertest.UnitVillA1} {
		r := row(ext, unit)
		r.WarnedAt = clock.Now().Add(-time.Hour)
		rows = append(rows, r)
	}
	ids := ct.importWarnings(t, rows...)
	lead := ct.loggedIn(t, "leadA")
	if got := lead.Warnings(clientsdk.Filter{}); len(got) != 4 {
		t.Fatalf("the lead holds %d warnings", len(got))
	}

	// Offline: the lead escalates H1.
	pending, err := lead.Escalate(ids["H1"], "家属不配合")
	if err != nil {
		t.Fatal(err)
	}
	dispatch := func(id string) {
		t.Helper()
		ct.applyAs(t, "center1", ct.op(t, syncproto.OpDispatched, id, syncproto.OpBody{Unit: servertest.UnitVillB1}))
	}
	clock.Add(time.Hour)
	dispatch(ids["H2"]) // to the other township, 10 days ago
	clock.Add(10 * 24 * time.Hour)
	dispatch(ids["H3"]) // and another, today

	rep, err := ct.srv.Store.CompactIndex(ctx, 7*24*time.Hour)
	if err != nil || rep.Tombstones == 0 || rep.HorizonSeq == 0 || rep.ScopesMoved == 0 {
		t.Fatalf("compaction: %+v %v", rep, err)
	}
	// H2's remove was dropped from the lead's own scope: that is what
	// resets it (a scope that lost no tombstone would carry on).
	if h := ct.srv.Store.HorizonOf(store.UnitScope(servertest.UnitTownA)); h == 0 {
		t.Fatal("the lead's township lost H2's remove, yet its horizon did not move")
	}

	first := mustSync(t, lead)
	if !first.Reset || first.Applied != 1 {
		t.Fatalf("sync after 10 days away: %+v, want a reset and the pending op applied", first)
	}
	held := map[string]bool{}
	for _, w := range lead.Warnings(clientsdk.Filter{}) {
		held[w.ID] = true
	}
	if len(held) != 2 || !held[ids["H1"]] || !held[ids["H4"]] {
		t.Fatalf("the lead holds %v, want H1 and H4 only", held)
	}
	if w, _ := lead.Warning(ids["H1"]); !w.Escalated {
		t.Fatal("the escalation made offline is not in the lead's view")
	}
	if n := len(opsInLog(t, ct.srv)[pending.OpID]); n != 1 {
		t.Fatalf("the pending op is %d times in the server's log", n)
	}
	if rep := mustSync(t, lead); rep.Reset {
		t.Fatal("a second sync reset again")
	}
}
