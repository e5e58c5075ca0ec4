package clientsdk_test

import (
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSDK_WarningFullRejected: an attempt the server refuses because the
// warning is full shows in Rejected with the server's code and sentence,
// and does not block the cadre's other work.
func TestSDK_WarningFullRejected(t *testing.T) {
	ct := newCityWith(t, nil, servertest.Options{WarningLimits: syncproto.WarningLimits{MaxAttempts: 2}})
	ids := ct.importWarnings(t, row("F1", servertest.UnitVillA1), row("F2", servertest.UnitVillA1))
	cadre := ct.loggedIn(t, "a1")
	for range 3 {
		if _, err := cadre.RecordAttempt(ids["F1"], visit(syncproto.OutcomeUnreachable)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cadre.RecordAttempt(ids["F2"], visit(syncproto.OutcomeDissuaded)); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, cadre); rep.Applied != 3 || rep.Rejected != 1 {
		t.Fatalf("report %+v, want 3 applied and 1 rejected", rep)
	}
	rej := cadre.Rejected()
	if len(rej) != 1 || rej[0].Code != syncproto.CodeWarningFull || !strings.Contains(rej[0].Message, "township lead") {
		t.Fatalf("rejected = %+v", rej)
	}
	if w, _ := cadre.Warning(ids["F1"]); len(w.Attempts) != 2 {
		t.Fatalf("F1 shows %d attempts, want the 2 the server holds", len(w.Attempts))
	}
	if w, _ := cadre.Warning(ids["F2"]); w.Status != syncproto.WarningResolved {
		t.Fatalf("F2 = %s", w.Status)
	}
}

// TestSDK_PhotoQuotaShown: a photo past the device's quota of the day
// stays on the phone, and the status says why in the server's words; the
// sync itself succeeds.
func TestSDK_PhotoQuotaShown(t *testing.T) {
	ct := newCityWith(t, nil, servertest.Options{PhotoQuota: 3000})
	ids := ct.importWarnings(t, row("Q1", servertest.UnitVillA1), row("Q2", servertest.UnitVillA1))
	c := ct.loggedIn(t, "a1")
	for i, ext := range []string{"Q1", "Q2"} {
		a := visit(syncproto.OutcomeDissuaded)
		a.Photos = []string{writePhoto(t, 2005, i)}
		if _, err := c.RecordAttempt(ids[ext], a); err != nil {
			t.Fatal(err)
		}
	}
	if rep := mustSync(t, c); rep.Photos != 1 || rep.PhotosFailed != 1 {
		t.Fatalf("report %+v, want one photo sent and one refused", rep)
	}
	st := c.Status()
	if st.PhotosPending != 1 || !strings.HasPrefix(st.PhotoError, syncproto.CodePhotoQuotaExceeded+": ") || !strings.Contains(st.PhotoError, "midnight") {
		t.Fatalf("status: %d pending, error %q", st.PhotosPending, st.PhotoError)
	}
}
