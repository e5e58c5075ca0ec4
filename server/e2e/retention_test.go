package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestRetention: a closed warning leaves its cadre's phone after the
// retention period (a remove in the pull) and stays with the leads; later
// its personal data is erased on the server, down to the log, while the
// statistics and the feedback keep what they need.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	clock := &fakeclock.Offset{}
	c := newCity(t, syncproto.Msgpack, clock.Now)
	// Moving the clock by days expires the access tokens: sign in again
	// on the same device, keeping its client_seq.
	relogin := func(name string) *servertest.Device {
		t.Helper()
		d, err := c.srv.LoginDevice(name, testPassword, c.dev[name].ID)
		if err != nil {
			t.Fatalf("login %s: %v", name, err)
		}
		c.dev[name].SetToken(d.Token())
		return c.dev[name]
	}
	resp, err := c.dev["center1"].ImportFeed(ctx, []syncproto.FeedWarning{
		servertest.FeedRow("R1", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)),
		servertest.FeedRow("R2", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := resp.Created[0].ID, resp.Created[1].ID
	a1, leadA := c.dev["a1"], c.dev["leadA"]
	body := recordBody(syncproto.OutcomeDissuaded, true)
	body.Notes = "对方说出了银行卡号"
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, r1, 0, body)).Results[0])
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpReviewed, r1, 0, syncproto.OpBody{Decision: syncproto.DecisionApprove})).Results[0])
	_, cadreBefore := pullAll(t, a1, "", 0)
	statsBefore := cityStats(t, c.dev["center1"])

	// Not yet due: nothing happens.
	if n, m, err := c.srv.App.Sweep(ctx); err != nil || n+m != 0 {
		t.Fatalf("early sweep: %d %d %v", n, m, err)
	}
	clock.Add(31 * 24 * time.Hour)
	if n, m, err := c.srv.App.Sweep(ctx); err != nil || n != 1 || m != 0 {
		t.Fatalf("sweep after 31 days: archived %d redacted %d %v", n, m, err)
	}
	a1, leadA = relogin("a1"), relogin("leadA")
	page, err := a1.Pull(ctx, syncproto.PullRequest{DeviceID: a1.ID, Cursor: cadreBefore.Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].Kind != syncproto.ChangeRemove || page.Changes[0].ID != r1 {
		t.Fatalf("cadre's pull after retention: %+v", page.Changes)
	}
	if got, _ := pullAll(t, a1, "", 0); len(warningIDs(got)) != 1 || !warningIDs(got)[r2] {
		t.Fatalf("cadre still holds %v", warningIDs(got))
	}
	lead, _ := pullAll(t, leadA, "", 0)
	if w := warningOf(t, lead, r1); w.ArchivedAt == nil || w.Name == "" {
		t.Fatalf("lead's copy after archiving: archived %v name %q", w.ArchivedAt, w.Name)
	}

	// R2 is closed and archived too, then returned: it goes back to the
	// cadre, and is not redacted with R1.
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, r2, 0, recordBody(syncproto.OutcomeNotTarget, true))).Results[0])
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpReviewed, r2, 0, syncproto.OpBody{Decision: syncproto.DecisionApprove})).Results[0])
	clock.Add(31 * 24 * time.Hour)
	if n, _, err := c.srv.App.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("R2 archived: %d %v", n, err)
	}
	a1, leadA = relogin("a1"), relogin("leadA")
	if got, _ := pullAll(t, a1, "", 0); len(warningIDs(got)) != 0 {
		t.Fatalf("cadre holds %v after both were archived", warningIDs(got))
	}
	mustApplied(t, push(t, leadA, op(leadA, syncproto.OpReviewed, r2, 0, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "补充"})).Results[0])
	if got, _ := pullAll(t, a1, "", 0); !warningIDs(got)[r2] {
		t.Fatal("a returned warning did not come back to its cadre")
	}

	clock.Add(310 * 24 * time.Hour)
	if n, m, err := c.srv.App.Sweep(ctx); err != nil || n != 0 || m != 1 {
		t.Fatalf("sweep after a year: archived %d redacted %d %v", n, m, err)
	}
	leadA, center := relogin("leadA"), relogin("center1")
	lead, _ = pullAll(t, leadA, "", 0)
	w := warningOf(t, lead, r1)
	if w.RedactedAt == nil || w.Name != "" || w.Phone != "" || w.Address != "" || w.IDTail != "" || w.Attempts[0].Notes != "" {
		t.Fatalf("redacted warning still holds personal data: %+v", w)
	}
	if w.Outcome != syncproto.OutcomeDissuaded || w.Status != syncproto.WarningClosed || w.ExternalID == "" {
		t.Fatalf("redaction lost what is not personal: %+v", w)
	}
	if w2 := warningOf(t, lead, r2); w2.Name == "" {
		t.Fatal("an open warning was redacted")
	}
	var d warningDetail
	if err := leadA.Do(ctx, http.MethodGet, "/v1/warnings/"+r1, nil, &d); err != nil {
		t.Fatal(err)
	}
	for _, h := range d.History {
		if h.Op != nil && h.Op.Body.Notes != "" {
			t.Fatalf("the log still holds notes: %+v", h.Op.Body)
		}
	}
	// A phone offline for a year records on the redacted warning: what it
	// says is erased at once.
	a1 = relogin("a1")
	late := recordBody(syncproto.OutcomeDissuaded, true)
	late.Notes = "迟到的记录含有姓名"
	late.Location = &syncproto.Location{Lat: 34.02, Lng: 113.85}
	mustApplied(t, push(t, a1, op(a1, syncproto.OpRecorded, r1, 0, late)).Results[0])
	if err := leadA.Do(ctx, http.MethodGet, "/v1/warnings/"+r1, nil, &d); err != nil {
		t.Fatal(err)
	}
	for _, a := range d.Warning.Attempts {
		if a.Notes != "" || a.Location != nil {
			t.Fatalf("a late attempt on a redacted warning kept %q %v", a.Notes, a.Location)
		}
	}
	for _, h := range d.History {
		if h.Op != nil && (h.Op.Body.Notes != "" || h.Op.Body.Location != nil) {
			t.Fatalf("the log kept a late attempt's notes: %+v", h.Op.Body)
		}
	}
	if got := cityStats(t, center); got.Closed != statsBefore.Closed || got.Dissuaded != statsBefore.Dissuaded || got.Received != statsBefore.Received {
		t.Fatalf("statistics changed by retention: before %+v after %+v", statsBefore, got)
	}
	fb, err := center.Feedback(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range fb.Items {
		found = found || it.ExternalID == "R1" && it.Outcome == syncproto.OutcomeDissuaded
	}
	if !found {
		t.Fatal("feedback lost the redacted warning's outcome")
	}
}

// cityStats reads the city's figures for the days around the real today,
// when the test's warnings were warned.
func cityStats(t *testing.T, d *servertest.Device) syncproto.Figures {
	t.Helper()
	from := time.Now().AddDate(0, 0, -2).In(syncproto.Beijing).Format(time.DateOnly)
	to := time.Now().AddDate(0, 0, 1).In(syncproto.Beijing).Format(time.DateOnly)
	var s syncproto.StatsResponse
	if err := d.Do(context.Background(), http.MethodGet, "/v1/stats?from="+from+"&to="+to, nil, &s); err != nil {
		t.Fatal(err)
	}
	return s.Total
}
