package clientsdk_test

import (
	"slices"
	"testing"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestReturnReasonReachesCadre: a lead cannot return work without saying
// why; the reason and the lead's name reach the cadre's phone at its next
// sync, though a cadre's directory does not hold leads.
func TestReturnReasonReachesCadre(t *testing.T) {
	ct := newCity(t)
	id := ct.importWarnings(t, row("RR1", servertest.UnitVillA1))["RR1"]
	cadre := ct.loggedIn(t, "a1")
	if _, err := cadre.RecordAttempt(id, visit(syncproto.OutcomeDissuaded)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)
	lead := ct.loggedIn(t, "leadA")

	_, err := lead.Review(id, syncproto.DecisionReturn, " ")
	if e := syncproto.AsError(err); e == nil || e.Code != syncproto.CodeInvalidRequest || e.Details["field"] != "body.comment" {
		t.Fatalf("a return without a reason: %v", err)
	}
	if _, err := lead.Review(id, syncproto.DecisionReturn, "请上门核实本人，补充照片"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, lead)
	mustSync(t, cadre)

	w, ok := cadre.Warning(id)
	if !ok {
		t.Fatal("the returned warning is not on the cadre's phone")
	}
	r, ok := w.LastReturn()
	if !ok || r.Comment != "请上门核实本人，补充照片" || r.ByName != "王镇甲" || w.Status != syncproto.WarningAssigned {
		t.Fatalf("the cadre sees status %s, last return %+v (%v)", w.Status, r, ok)
	}
}

// TestEscalationAnswerReachesCadre: the cadre asks for help, the county
// answers from its own device, and the answer with the county user's
// name reaches the cadre and the township; the warning is no longer
// escalated. A township lead cannot answer.
func TestEscalationAnswerReachesCadre(t *testing.T) {
	ct := newCity(t)
	id := ct.importWarnings(t, row("EA1", servertest.UnitVillA1))["EA1"]
	cadre := ct.loggedIn(t, "a1")
	if _, err := cadre.Escalate(id, ""); syncproto.ErrorCode(err) != syncproto.CodeInvalidRequest {
		t.Fatalf("an escalation without a reason: %v", err)
	}
	if _, err := cadre.Escalate(id, "家属阻拦，需民警上门"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)

	lead := ct.loggedIn(t, "leadA")
	if _, err := lead.AnswerEscalation(id, "我来答复"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, lead)
	if rej := lead.Rejected(); len(rej) != 1 || rej[0].Code != syncproto.CodeForbidden {
		t.Fatalf("a township lead's answer: %+v", rej)
	}

	county := ct.loggedIn(t, "county1")
	if w, _ := county.Warning(id); !w.Escalated {
		t.Fatal("the county does not see the open request")
	}
	if got := county.AllowedActions(id); !slices.Contains(got, syncproto.ActionAnswer) {
		t.Fatalf("the county may %v", got)
	}
	if got := lead.AllowedActions(id); slices.Contains(got, syncproto.ActionAnswer) {
		t.Fatalf("the township lead may %v", got)
	}
	if _, err := county.AnswerEscalation(id, "已联系派出所，今晚上门"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, county)
	mustSync(t, cadre)
	mustSync(t, lead)

	for who, c := range map[string]*clientsdk.Client{"cadre": cadre, "township": lead} {
		w, _ := c.Warning(id)
		e, ok := w.LastEscalation()
		if !ok || e.Reason != "家属阻拦，需民警上门" || e.ByName != "刘村一" || e.Answer != "已联系派出所，今晚上门" || e.AnsweredByName != "李县" || w.Escalated {
			t.Errorf("the %s sees escalated %v, %+v", who, w.Escalated, e)
		}
	}
}
