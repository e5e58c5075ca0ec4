package e2e_test

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestFeedback: outcomes go back upstream incrementally, keyed by
// external_id, within the caller's unit.
func TestFeedback(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.Msgpack, nil)
	center, leadA, leadB := c.dev["center1"], c.dev["leadA"], c.dev["leadB"]
	a1, b1 := c.dev["a1"], c.dev["b1"]
	warned := time.Now().Add(-time.Hour)
	resp, err := center.ImportFeed(ctx, []syncproto.FeedWarning{
		servertest.FeedRow("F1", unitVillA1, syncproto.RiskHigh, warned),
		servertest.FeedRow("F2", unitVillB1, syncproto.RiskLow, warned),
		servertest.FeedRow("F3", unitTownA, syncproto.RiskMedium, warned),
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, cr := range resp.Created {
		ids[cr.ExternalID] = cr.ID
	}
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, ids["F1"], 0, recordBody(syncproto.OutcomeDissuaded, true))).Results[0])
	lost := recordBody(syncproto.OutcomeAlreadyDefrauded, true)
	lost.LossFen = 1234500
	mustApplied(t, push(t, b1, op(b1, syncproto.OpRecorded, ids["F2"], 0, lost)).Results[0])

	all, err := center.Feedback(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	byExt := map[string]syncproto.FeedbackItem{}
	for _, it := range all.Items {
		byExt[it.ExternalID] = it
	}
	if len(all.Items) != 3 || all.More {
		t.Fatalf("center feedback: %d items more=%v, want 3", len(all.Items), all.More)
	}
	if f1 := byExt["F1"]; f1.Outcome != syncproto.OutcomeDissuaded || !f1.Reached || f1.Status != syncproto.WarningResolved ||
		f1.FirstContactAt == nil || f1.ResolvedAt == nil || f1.Cadre != c.userIDs["a1"] || f1.CadreName == "" {
		t.Fatalf("F1 = %+v", f1)
	}
	if f2 := byExt["F2"]; f2.LossFen != 1234500 || f2.Outcome != syncproto.OutcomeAlreadyDefrauded {
		t.Fatalf("F2 = %+v", f2)
	}
	if f3 := byExt["F3"]; f3.Outcome != "" || f3.Reached || f3.Status != syncproto.WarningDispatched {
		t.Fatalf("F3 = %+v", f3)
	}

	// Incremental: only what changed after the cursor.
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpReviewed, ids["F1"], byExt["F1"].Version, syncproto.OpBody{Decision: syncproto.DecisionApprove})).Results[0])
	next, err := center.Feedback(ctx, all.Cursor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Items) != 1 || next.Items[0].ExternalID != "F1" || next.Items[0].ClosedAt == nil {
		t.Fatalf("after approval: %+v", next.Items)
	}
	if again, err := center.Feedback(ctx, next.Cursor, 0); err != nil || len(again.Items) != 0 {
		t.Fatalf("nothing new: %+v %v", again, err)
	}

	// Paging.
	seen := map[string]bool{}
	cursor := ""
	for range 10 {
		page, err := center.Feedback(ctx, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			seen[it.ExternalID] = true
		}
		cursor = page.Cursor
		if !page.More {
			break
		}
	}
	if len(seen) != 3 {
		t.Fatalf("paged feedback saw %v", seen)
	}

	// Scope.
	a, err := leadA.Feedback(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range a.Items {
		if !strings.HasPrefix(it.Unit, unitTownA) {
			t.Fatalf("leadA got feedback of unit %s", it.Unit)
		}
	}
	if len(a.Items) != 2 {
		t.Fatalf("leadA got %d items, want F1 and F3", len(a.Items))
	}
	if _, err := leadB.Feedback(ctx, a.Cursor, 0); errCode(err) != syncproto.CodeCursorExpired {
		t.Fatalf("leadB with leadA's cursor: %v", err)
	}
	if _, err := a1.Feedback(ctx, "", 0); errCode(err) != syncproto.CodeForbidden {
		t.Fatalf("cadre feedback: %v", err)
	}
	if _, err := center.Feedback(ctx, "not-a-cursor", 0); errCode(err) != syncproto.CodeCursorExpired {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, err := center.Feedback(ctx, "", syncproto.MaxPullLimit+1); errCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("bad limit: %v", err)
	}

	// CSV for the platform's import.
	var raw []byte
	if err := center.DoRaw(ctx, "GET", "/v1/feedback?format=csv", "", nil, &raw); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "external_id" {
		t.Fatalf("feedback CSV: %q %v", raw, err)
	}
	for _, row := range rows[1:] {
		if row[0] == "F2" && row[4] != "1234500" {
			t.Fatalf("F2 row %v", row)
		}
		if strings.Contains(strings.Join(row, ","), "测试") {
			t.Fatalf("personal data in feedback: %v", row)
		}
	}
}
