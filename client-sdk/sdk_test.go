package clientsdk_test

import (
	"context"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSDK_Loop: a cadre records offline, syncs; the lead reviews; the
// cadre sees it closed.
func TestSDK_Loop(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("L1", servertest.UnitVillA1), row("L2", servertest.UnitVillA1))
	cadre := ct.loggedIn(t, "a1")
	lead := ct.loggedIn(t, "leadA")

	if got := cadre.Warnings(clientsdk.Filter{}); len(got) != 2 {
		t.Fatalf("cadre holds %d warnings, want 2", len(got))
	}
	op, err := cadre.RecordAttempt(ids["L1"], visit(syncproto.OutcomeDissuaded))
	if err != nil {
		t.Fatal(err)
	}
	if op.State != "pending" {
		t.Fatalf("new op state %s", op.State)
	}
	w, _ := cadre.Warning(ids["L1"])
	if w.Status != syncproto.WarningResolved || len(w.Ops) != 1 || len(w.Attempts) != 1 {
		t.Fatalf("offline view: %s, %d ops, %d attempts", w.Status, len(w.Ops), len(w.Attempts))
	}
	rep := mustSync(t, cadre)
	if rep.Pushed != 1 || rep.Applied != 1 {
		t.Fatalf("sync report %+v", rep)
	}
	if ops := cadre.Ops(); len(ops) != 0 {
		t.Fatalf("ops left after sync: %+v", ops)
	}
	mustSync(t, lead)
	lw, ok := lead.Warning(ids["L1"])
	if !ok || lw.Status != syncproto.WarningResolved {
		t.Fatalf("lead sees %v %s", ok, lw.Status)
	}
	if _, err := lead.Review(ids["L1"], syncproto.DecisionApprove, "属实"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, lead)
	mustSync(t, cadre)
	if w, _ := cadre.Warning(ids["L1"]); w.Status != syncproto.WarningClosed {
		t.Fatalf("cadre sees %s after approval", w.Status)
	}
	// A rejected op is listed until dismissed and never blocks the next.
	if _, err := cadre.Review(ids["L2"], syncproto.DecisionApprove, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cadre.RecordAttempt(ids["L2"], visit(syncproto.OutcomeRefused)); err != nil {
		t.Fatal(err)
	}
	rep = mustSync(t, cadre)
	if rep.Rejected != 1 || rep.Applied != 1 {
		t.Fatalf("report %+v", rep)
	}
	rej := cadre.Rejected()
	if len(rej) != 1 || rej[0].Code != syncproto.CodeForbidden || rej[0].Message == "" {
		t.Fatalf("rejected = %+v", rej)
	}
	if w, _ := cadre.Warning(ids["L2"]); w.Status != syncproto.WarningInProgress {
		t.Fatalf("L2 = %s", w.Status)
	}
	if err := cadre.Dismiss(rej[0].OpID); err != nil || len(cadre.Rejected()) != 0 {
		t.Fatalf("dismiss: %v", err)
	}
}

// TestSDK_Reopen: what was recorded survives closing the app.
func TestSDK_Reopen(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("R1", servertest.UnitVillA1))
	dir, key := t.TempDir(), testKey(t)
	c := ct.loggedInAt(t, dir, key, "a1")
	if _, err := c.RecordAttempt(ids["R1"], visit(syncproto.OutcomeUnreachable)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := clientsdk.Open(dir, clientsdk.Options{ServerURL: ct.srv.URL, Key: testKey(t)}); err == nil {
		t.Fatal("opened with the wrong key")
	}
	c = ct.phone(t, dir, key, nil)
	if ops := c.Ops(); len(ops) != 1 || ops[0].State != "pending" {
		t.Fatalf("ops after reopen: %+v", ops)
	}
	mustSync(t, c)
	if w, _ := c.Warning(ids["R1"]); len(w.Attempts) != 1 || w.Status != syncproto.WarningInProgress {
		t.Fatalf("after sync: %+v", w.Warning)
	}
}

// TestSDK_Photos: a photo attached offline uploads separately.
func TestSDK_Photos(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("P1", servertest.UnitVillA1))
	c := ct.loggedIn(t, "a1")
	const size = 2004
	a := visit(syncproto.OutcomeDissuaded)
	a.Photos = []string{writePhoto(t, size, 1)}
	if _, err := c.RecordAttempt(ids["P1"], a); err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, c)
	if rep.Photos != 1 {
		t.Fatalf("photos uploaded: %d", rep.Photos)
	}
	w, _ := c.Warning(ids["P1"])
	if len(w.Attempts) != 1 || len(w.Attempts[0].Photos) != 1 || len(w.MissingPhotos) != 0 {
		t.Fatalf("photo state: %+v missing %v", w.Attempts, w.MissingPhotos)
	}
	lead := ct.srv.Login(t, "leadA", servertest.CityPassword)
	data, err := lead.GetBlob(context.Background(), w.Attempts[0].Photos[0])
	if err != nil || len(data) != size {
		t.Fatalf("lead reads photo: %d %v", len(data), err)
	}
}
