package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestReasons_ReturnNeedsComment: the SDK and the console require a
// return's comment, but a push from an older app holding a return without
// one is applied, not refused (the lead's decision is not lost); with a
// comment the return is applied and the state keeps it with the reviewer's
// name.
func TestReasons_ReturnNeedsComment(t *testing.T) {
	c := newCity(t, syncproto.JSON, nil)
	ids := c.srv.Import(t, "center1", servertest.FeedRow("RN1", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)),
		servertest.FeedRow("RN2", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	id := ids["RN1"]
	mustApplied(t, push(t, c.dev["a1"], op(c.dev["a1"], syncproto.OpRecorded, id, 0, recordBody(syncproto.OutcomeDissuaded, true))).Results[0])
	mustApplied(t, push(t, c.dev["a1"], op(c.dev["a1"], syncproto.OpRecorded, ids["RN2"], 0, recordBody(syncproto.OutcomeDissuaded, true))).Results[0])

	lead := c.dev["leadA"]
	old := op(lead, syncproto.OpReviewed, ids["RN2"], 0, syncproto.OpBody{Decision: syncproto.DecisionReturn})
	mustApplied(t, push(t, lead, old).Results[0])

	good := op(lead, syncproto.OpReviewed, id, 0, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "请补充现场照片"})
	mustApplied(t, push(t, lead, good).Results[0])
	var d struct {
		Warning syncproto.Warning `json:"warning"`
	}
	if err := lead.Do(context.Background(), http.MethodGet, "/v1/warnings/"+id, nil, &d); err != nil {
		t.Fatal(err)
	}
	if r, ok := d.Warning.LastReturn(); !ok || r.Comment != "请补充现场照片" || r.ByName != "王镇甲" || len(d.Warning.Reviews) != 1 {
		t.Fatalf("reviews %+v", d.Warning.Reviews)
	}
}

// TestReasons_EscalationQueue: an open escalation is in the county's list
// with escalated=1; a township lead cannot answer it, the county can, and
// then it leaves the queue with the answer kept on the warning.
func TestReasons_EscalationQueue(t *testing.T) {
	ctx := context.Background()
	c := newCity(t, syncproto.Msgpack, nil)
	ids := c.srv.Import(t, "center1",
		servertest.FeedRow("EQ1", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)),
		servertest.FeedRow("EQ2", unitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	a1 := c.dev["a1"]
	mustApplied(t, push(t, a1, op(a1, syncproto.OpEscalated, ids["EQ1"], 0, syncproto.OpBody{Reason: "家属阻拦"})).Results[0])

	queue := func() []string {
		t.Helper()
		var page syncproto.WarningList
		if err := c.dev["county1"].Do(ctx, http.MethodGet, "/v1/warnings?escalated=1", nil, &page); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range page.Items {
			out = append(out, it.ExternalID)
		}
		return out
	}
	if q := queue(); len(q) != 1 || q[0] != "EQ1" {
		t.Fatalf("the county's queue: %v", q)
	}
	lead := c.dev["leadA"]
	res := push(t, lead, op(lead, syncproto.OpAnswered, ids["EQ1"], 0, syncproto.OpBody{Answer: "我来答复"})).Results[0]
	if res.Status != syncproto.StatusRejected || res.Code != syncproto.CodeForbidden {
		t.Fatalf("a township lead's answer: %+v", res)
	}
	county := c.dev["county1"]
	res = push(t, county, op(county, syncproto.OpAnswered, ids["EQ2"], 0, syncproto.OpBody{Answer: "没有求助"})).Results[0]
	if res.Status != syncproto.StatusRejected || res.Code != syncproto.CodeInvalidState {
		t.Fatalf("an answer with nothing to answer: %+v", res)
	}
	mustApplied(t, push(t, county, op(county, syncproto.OpAnswered, ids["EQ1"], 0, syncproto.OpBody{Answer: "已联系派出所"})).Results[0])
	if q := queue(); len(q) != 0 {
		t.Fatalf("the queue after the answer: %v", q)
	}
	got, _ := pullAll(t, a1, "", syncproto.MaxPullLimit)
	w := got["warning/"+ids["EQ1"]].Data.(*syncproto.Warning)
	if e, ok := w.LastEscalation(); !ok || e.Answer != "已联系派出所" || e.AnsweredByName != "李县" || e.ByName != "刘村一" || w.Escalated {
		t.Fatalf("the cadre pulls escalated %v, %+v", w.Escalated, e)
	}
}
