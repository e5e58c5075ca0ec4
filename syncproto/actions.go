package syncproto

// What a person may do on a warning now, written beside Apply and used by
// it: a console or an app offers exactly the actions AllowedActions lists,
// and Apply refuses every other (forbidden by role or scope, invalid_state
// by the warning's state).

// Actions a person takes on a warning. Approve and return are the two
// decisions of warning.reviewed.
const (
	ActionDispatch = "dispatch" // warning.dispatched
	ActionAssign   = "assign"   // warning.assigned
	ActionRecord   = "record"   // dissuasion.recorded
	ActionEscalate = "escalate" // warning.escalated
	ActionApprove  = "approve"  // warning.reviewed, decision approve
	ActionReturn   = "return"   // warning.reviewed, decision return
	ActionAnswer   = "answer"   // escalation.answered
)

// Actions lists every action, in the order a page offers them.
var Actions = []string{ActionApprove, ActionReturn, ActionAssign, ActionDispatch, ActionEscalate, ActionAnswer, ActionRecord}

// ActionOp returns the op type of an action and, for a review, its
// decision; "" for an unknown action.
func ActionOp(action string) (opType, decision string) {
	switch action {
	case ActionDispatch:
		return OpDispatched, ""
	case ActionAssign:
		return OpAssigned, ""
	case ActionRecord:
		return OpRecorded, ""
	case ActionEscalate:
		return OpEscalated, ""
	case ActionApprove:
		return OpReviewed, DecisionApprove
	case ActionReturn:
		return OpReviewed, DecisionReturn
	case ActionAnswer:
		return OpAnswered, ""
	}
	return "", ""
}

// ActionOf returns the action an op takes, "" for an op type no person
// sends.
func ActionOf(op *Op) string {
	switch op.Type {
	case OpDispatched:
		return ActionDispatch
	case OpAssigned:
		return ActionAssign
	case OpRecorded:
		return ActionRecord
	case OpEscalated:
		return ActionEscalate
	case OpReviewed:
		if op.Body.Decision == DecisionReturn {
			return ActionReturn
		}
		return ActionApprove
	case OpAnswered:
		return ActionAnswer
	}
	return ""
}

// AllowedActions lists the actions a may take on w now, in the order of
// Actions: those whose op Apply accepts from a, given a body that names
// what exists in a's scope. Whether that body is right (an active cadre,
// a unit of the scope) Apply checks when the op comes.
func AllowedActions(w *Warning, a Actor) []string {
	var out []string
	for _, act := range Actions {
		typ, decision := ActionOp(act)
		op := Op{Type: typ, Body: OpBody{Decision: decision}}
		if mayAct(w, typ, a) == nil && stateAllows(w, &op) == nil {
			out = append(out, act)
		}
	}
	return out
}

// stateAllows applies the state rules of PROTOCOL.md section 6: what a
// warning in its status accepts. It returns invalid_state, saying why.
// A cadre may record or escalate whatever the status: what a field worker
// did is never dropped for being late.
func stateAllows(w *Warning, op *Op) *Error {
	switch ActionOf(op) {
	case ActionDispatch, ActionAssign:
		if w.Status == WarningResolved || w.Status == WarningClosed {
			return Errorf(CodeInvalidState, "a %s warning cannot be %s; return it first", w.Status, map[string]string{
				OpDispatched: "dispatched", OpAssigned: "reassigned"}[op.Type])
		}
	case ActionApprove:
		if w.Status != WarningResolved {
			return Errorf(CodeInvalidState, "only a resolved warning can be approved; this one is %s", w.Status)
		}
	case ActionReturn:
		if w.Status != WarningInProgress && w.Status != WarningResolved && w.Status != WarningClosed {
			return Errorf(CodeInvalidState, "only work in progress, resolved or closed can be returned; this one is %s", w.Status)
		}
	case ActionAnswer:
		if !w.Escalated {
			return Errorf(CodeInvalidState, "this warning has no open escalation to answer")
		}
	}
	return nil
}
