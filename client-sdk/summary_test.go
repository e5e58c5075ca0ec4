package clientsdk_test

import (
	"context"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A county lead's phone pulls summaries by default: attempts without
// notes or places, so its first sync carries fewer bytes. Opening a
// warning fetches it whole; its next change brings a summary again.
func TestSDK_CountyLeadPullsSummaries(t *testing.T) {
	ct := newCity(t)
	ids := ct.importWarnings(t, row("S1", servertest.UnitVillA1))
	id := ids["S1"]
	cadre := ct.loggedIn(t, "a1")
	a := visit(syncproto.OutcomeUnreachable)
	a.Reached = false
	a.Location = &syncproto.Location{Lat: 34.03, Lng: 113.85, Accuracy: 12}
	if _, err := cadre.RecordAttempt(id, a); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)

	county := ct.loggedIn(t, "county1")
	w, ok := county.Warning(id)
	if !ok {
		t.Fatal("the county lead's phone lacks the warning")
	}
	if !w.Summary || len(w.Attempts) != 1 {
		t.Fatalf("county copy: summary %v, %d attempts; want a summary with 1", w.Summary, len(w.Attempts))
	}
	if got := w.Attempts[0]; got.Notes != "" || got.Location != nil || got.ID != "" || got.Outcome != syncproto.OutcomeUnreachable ||
		got.Method != syncproto.MethodVisit || got.At.IsZero() || got.By == "" {
		t.Fatalf("summary attempt: %+v", got)
	}

	whole, err := county.FetchWarning(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Summary || whole.Attempts[0].Notes != a.Notes || whole.Attempts[0].Location == nil {
		t.Fatalf("fetched: summary %v, attempt %+v", whole.Summary, whole.Attempts[0])
	}
	if w, _ := county.Warning(id); w.Summary || w.Attempts[0].Notes != a.Notes {
		t.Fatal("the fetched warning was not kept on the phone")
	}
	// A sync with nothing new keeps the whole copy.
	mustSync(t, county)
	if w, _ := county.Warning(id); w.Summary {
		t.Fatal("a sync with no change put the summary back")
	}

	if _, err := cadre.RecordAttempt(id, visit(syncproto.OutcomeDissuaded)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)
	mustSync(t, county)
	if w, _ := county.Warning(id); !w.Summary || len(w.Attempts) != 2 || w.Attempts[1].Notes != "" {
		t.Fatalf("after a new attempt: summary %v, %d attempts", w.Summary, len(w.Attempts))
	}

	// A warning out of the lead's scope cannot be fetched.
	other := ct.importWarnings(t, row("S2", servertest.UnitVillA1))
	leadB := ct.loggedIn(t, "leadB")
	if _, err := leadB.FetchWarning(context.Background(), other["S2"]); syncproto.ErrorCode(err) != syncproto.CodeNotFound {
		t.Fatalf("fetch out of scope: %v, want not_found", err)
	}
}

// PullDetail overrides the role's default both ways.
func TestSDK_PullDetailOption(t *testing.T) {
	ct := newCity(t)
	id := ct.importWarnings(t, row("S1", servertest.UnitVillA1))["S1"]
	cadre := ct.loggedIn(t, "a1")
	if _, err := cadre.RecordAttempt(id, visit(syncproto.OutcomeDissuaded)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)
	for _, tc := range []struct {
		user, detail string
		summary      bool
	}{
		{"county1", syncproto.DetailFull, false},
		{"leadA", "", false},
		{"leadA", syncproto.DetailSummary, true},
	} {
		c := openPhone(t, t.TempDir(), clientsdk.Options{ServerURL: ct.srv.URL, Key: testKey(t), PullDetail: tc.detail})
		signIn(t, c, tc.user)
		mustSync(t, c)
		w, ok := c.Warning(id)
		if !ok || w.Summary != tc.summary || (w.Attempts[0].Notes == "") != tc.summary {
			t.Fatalf("%s with PullDetail %q: on phone %v, summary %v, notes %q", tc.user, tc.detail, ok, w.Summary, w.Attempts[0].Notes)
		}
	}
}
