package mobile_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/client-sdk/mobile"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestClient_ReturnReasonAndAnswer: the facade shows a cadre why the work
// came back and who sent it, and the county's answer to their request for
// help; a return or answer without text is refused at once.
func TestClient_ReturnReasonAndAnswer(t *testing.T) {
	e := newEnv(t)
	id := e.importWarnings(t, row("M1", servertest.UnitVillA1))["M1"]
	cadre := e.loggedIn(t, "a1")
	if _, err := cadre.RecordAttempt(id, &mobile.AttemptInput{Method: "visit", Reached: true, Outcome: "dissuaded"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cadre.Escalate(id, "家属阻拦"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, cadre)

	lead := e.loggedIn(t, "leadA")
	_, err := lead.Review(id, syncproto.DecisionReturn, "")
	mustCode(t, err, mobile.CodeInvalidRequest)
	if _, err := lead.Review(id, syncproto.DecisionReturn, "请补充现场照片"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, lead)
	county := e.loggedIn(t, "county1")
	if got := county.AllowedActions(id); got != "assign,dispatch,escalate,answer,record" {
		t.Fatalf("the county may %q", got)
	}
	_, err = county.AnswerEscalation(id, "")
	mustCode(t, err, mobile.CodeInvalidRequest)
	if _, err := county.AnswerEscalation(id, "已请派出所协助"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, county)
	mustSync(t, cadre)

	w, err := cadre.Warning(id)
	if err != nil {
		t.Fatal(err)
	}
	if w.ReturnComment != "请补充现场照片" || w.ReturnedByName != "王镇甲" || w.ReturnedBy != e.ids["leadA"] || w.ReturnedAt == 0 {
		t.Fatalf("return: %q by %q (%s) at %d", w.ReturnComment, w.ReturnedByName, w.ReturnedBy, w.ReturnedAt)
	}
	esc := w.LastEscalation()
	if w.EscalationCount() != 1 || esc == nil || esc.Reason != "家属阻拦" || !esc.Answered || esc.Answer != "已请派出所协助" ||
		esc.AnsweredByName != "李县" || esc.AnsweredAt == 0 || w.Escalated {
		t.Fatalf("escalation %+v, escalated %v", esc, w.Escalated)
	}
	if r := w.Review(w.ReviewCount() - 1); r == nil || r.ByName != "王镇甲" {
		t.Fatalf("the review does not name its reviewer: %+v", r)
	}
}
