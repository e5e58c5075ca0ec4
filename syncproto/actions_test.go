package syncproto_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fieldsync/fieldsync/syncproto"
)

// actionOp is an op of action with a body that names what exists in the
// scope of every actor of the table, so that only the role, the scope and
// the state decide.
func actionOp(action string) *syncproto.Op {
	switch action {
	case syncproto.ActionDispatch:
		return dispatchOp(villageTwo)
	case syncproto.ActionAssign:
		return assignOp(cadreTwoB)
	case syncproto.ActionRecord:
		return recordOp(id(9100), syncproto.OutcomeRefused, true)
	case syncproto.ActionEscalate:
		return escalateOp("需要派出所协助")
	case syncproto.ActionApprove:
		return reviewOp(syncproto.DecisionApprove, 10)
	case syncproto.ActionReturn:
		return reviewOp(syncproto.DecisionReturn, 10)
	case syncproto.ActionAnswer:
		return answerOp("已联系派出所，今晚上门")
	}
	panic("no op for action " + action)
}

func answerOp(answer string) *syncproto.Op {
	return newOp(syncproto.OpAnswered, syncproto.OpBody{Answer: answer})
}

// TestAllowedActions_AgreesWithApply: for every status, open escalation or
// not, and every kind of actor, each action AllowedActions lists applies,
// and every other is refused as forbidden or invalid_state.
func TestAllowedActions_AgreesWithApply(t *testing.T) {
	actors := map[string]syncproto.Actor{
		"assignee": cadre(cadreTwoA), "sameVillage": cadre(cadreTwoB), "formerAssignee": cadre(cadreOther),
		"otherCadre": cadre(cadreFar), "township": townActor, "otherTownship": otherTownActor,
		"county": countyActor, "center": centerActor,
	}
	statuses := []string{syncproto.WarningNew, syncproto.WarningDispatched, syncproto.WarningAssigned,
		syncproto.WarningInProgress, syncproto.WarningResolved, syncproto.WarningClosed}
	for _, status := range statuses {
		for _, escalated := range []bool{false, true} {
			for name, a := range actors {
				w := newWarning(status, villageTwo, cadreTwoA)
				w.PastAssignees = []string{cadreOther}
				w.Escalated = escalated
				allowed := syncproto.AllowedActions(w, a)
				for _, action := range syncproto.Actions {
					_, err := syncproto.Apply(w, actionOp(action), testEnv(a))
					if slices.Contains(allowed, action) {
						if err != nil {
							t.Errorf("%s %s escalated=%v: %s is allowed but Apply refused it: %v", name, status, escalated, action, err)
						}
						continue
					}
					if err == nil || (err.Code != syncproto.CodeForbidden && err.Code != syncproto.CodeInvalidState) {
						t.Errorf("%s %s escalated=%v: %s is not allowed but Apply answered %v", name, status, escalated, action, err)
					}
				}
			}
		}
	}
}

// TestAllowedActions_ByState spells out what a township lead, a county
// user and the cadre may do at each step, as the console offers it.
func TestAllowedActions_ByState(t *testing.T) {
	for _, tc := range []struct {
		status    string
		escalated bool
		actor     syncproto.Actor
		want      []string
	}{
		{syncproto.WarningAssigned, false, townActor, []string{"assign", "dispatch", "escalate", "record"}},
		{syncproto.WarningInProgress, false, townActor, []string{"return", "assign", "dispatch", "escalate", "record"}},
		{syncproto.WarningResolved, false, townActor, []string{"approve", "return", "escalate", "record"}},
		{syncproto.WarningClosed, false, townActor, []string{"return", "escalate", "record"}},
		{syncproto.WarningInProgress, true, townActor, []string{"return", "assign", "dispatch", "escalate", "record"}},
		{syncproto.WarningInProgress, true, countyActor, []string{"return", "assign", "dispatch", "escalate", "answer", "record"}},
		{syncproto.WarningInProgress, false, countyActor, []string{"return", "assign", "dispatch", "escalate", "record"}},
		{syncproto.WarningResolved, true, cadre(cadreTwoA), []string{"escalate", "record"}},
		{syncproto.WarningResolved, true, otherTownActor, nil},
	} {
		w := newWarning(tc.status, villageTwo, cadreTwoA)
		w.Escalated = tc.escalated
		if d := cmp.Diff(tc.want, syncproto.AllowedActions(w, tc.actor)); d != "" {
			t.Errorf("%s %s escalated=%v (-want +got):\n%s", tc.actor.Role, tc.status, tc.escalated, d)
		}
	}
}

// TestApply_Answer: a county or center user's answer reaches every open
// escalation, with who and when, and the warning is no longer escalated.
func TestApply_Answer(t *testing.T) {
	escalated := func() *syncproto.Warning {
		w := newWarning(syncproto.WarningInProgress, villageTwo, cadreTwoA)
		return mustApply(t, w, escalateOp("家属阻拦"), testEnv(cadre(cadreTwoA))).Warning
	}
	t.Run("County", func(t *testing.T) {
		op := answerOp("已联系派出所，今晚上门")
		res := mustApply(t, escalated(), op, testEnv(countyActor))
		e, ok := res.Warning.LastEscalation()
		at := op.At.UTC()
		want := syncproto.Escalation{By: cadreTwoA, ByName: "王芳", Reason: "家属阻拦", At: e.At, OpID: e.OpID,
			Answer: "已联系派出所，今晚上门", AnsweredBy: countyUser, AnsweredAt: &at}
		if d := cmp.Diff(want, e); !ok || d != "" {
			t.Fatalf("last escalation (-want +got):\n%s", d)
		}
		if res.Warning.Escalated || !e.Answered() {
			t.Fatal("the warning is still escalated after the answer")
		}
	})
	t.Run("TownshipForbidden", func(t *testing.T) {
		mustReject(t, escalated(), answerOp("x"), testEnv(townActor), syncproto.CodeForbidden)
	})
	t.Run("NothingToAnswer", func(t *testing.T) {
		w := newWarning(syncproto.WarningInProgress, villageTwo, cadreTwoA)
		mustReject(t, w, answerOp("x"), testEnv(centerActor), syncproto.CodeInvalidState)
	})
	t.Run("EscalatedAgainAfterAnswer", func(t *testing.T) {
		w := mustApply(t, escalated(), answerOp("已处理"), testEnv(countyActor)).Warning
		w = mustApply(t, w, escalateOp("又联系不上了"), testEnv(cadre(cadreTwoA))).Warning
		e, _ := w.LastEscalation()
		if !w.Escalated || e.Answered() || len(w.Escalations) != 2 || w.Escalations[0].Answer != "已处理" {
			t.Fatalf("escalated %v, escalations %+v", w.Escalated, w.Escalations)
		}
	})
}

// TestApply_ReturnKeepsReasonAndReviewer: the cadre's phone learns why the
// work came back and who sent it, by name.
func TestApply_ReturnKeepsReasonAndReviewer(t *testing.T) {
	dir := newDir()
	dir.Users[townLead] = syncproto.DirectoryUser{ID: townLead, Username: "lead", Name: "陈主任", Unit: townUnit, Active: true}
	env := testEnv(townActor)
	env.Dir = dir
	op := newOp(syncproto.OpReviewed, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: "请上门核实本人"})
	w := mustApply(t, newWarning(syncproto.WarningResolved, villageTwo, cadreTwoA), op, env).Warning
	r, ok := w.LastReturn()
	want := syncproto.Review{By: townLead, ByName: "陈主任", Decision: syncproto.DecisionReturn, Comment: "请上门核实本人", At: op.At.UTC()}
	if d := cmp.Diff(want, r); !ok || d != "" {
		t.Fatalf("last return (-want +got):\n%s", d)
	}
}

// TestValidate_RequiredReasons: an op made now (ValidateNew) needs a
// return's comment, an escalation's reason and an answer's text, blanks not
// counting; a pushed op (Validate) from an older app may lack the return's
// comment or hold a blank reason and is accepted, so that neither a lead's
// decision nor a cadre's call for help is lost.
func TestValidate_RequiredReasons(t *testing.T) {
	for _, tc := range []struct {
		name   string
		op     *syncproto.Op
		field  string
		pushed bool // Validate accepts it
	}{
		{"ReturnNoComment", newOp(syncproto.OpReviewed, syncproto.OpBody{Decision: syncproto.DecisionReturn}), "body.comment", true},
		{"ReturnBlankComment", newOp(syncproto.OpReviewed, syncproto.OpBody{Decision: syncproto.DecisionReturn, Comment: " \n\t　"}), "body.comment", true},
		{"EscalateBlankReason", escalateOp("  "), "body.reason", true},
		{"EscalateNoReason", escalateOp(""), "body.reason", false},
		{"AnswerEmpty", answerOp(""), "body.answer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op.ValidateNew()
			if err == nil || err.Code != syncproto.CodeInvalidRequest || err.Details["field"] != tc.field {
				t.Fatalf("ValidateNew = %v, want invalid_request on %s", err, tc.field)
			}
			if err := tc.op.Validate(); (err == nil) != tc.pushed {
				t.Fatalf("Validate = %v; a pushed op is accepted: %v", err, tc.pushed)
			}
		})
	}
	approve := newOp(syncproto.OpReviewed, syncproto.OpBody{Decision: syncproto.DecisionApprove})
	if err := approve.ValidateNew(); err != nil {
		t.Fatalf("an approval needs no comment: %v", err)
	}
}
