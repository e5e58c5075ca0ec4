package syncproto

// The server's policies around Apply: who may read a warning, and what the
// server does with an op before and after Apply decides it. They are pure,
// like Apply, and the store calls them inside its transaction, so each has
// one answer whichever part of the server asks.

// CanRead reports whether a's scope holds w (PROTOCOL.md section 5): for a
// village user, w is theirs (HeldBy); for everyone else, w's unit lies in
// their unit's subtree. A former assignee may still record on w (section
// 6) but no longer reads it. Whoever may not read w is told it does not
// exist.
func CanRead(a Actor, w *Warning) bool {
	if a.Role == RoleVillage {
		return w.HeldBy(a.UserID)
	}
	return InScope(a.Unit, w.Unit)
}

// HeldBy reports whether w is in the scope of the village user userID: it
// is assigned to them and not archived, since an archived warning has left
// its cadre's phone (retention). The server's scope buckets follow it: w is
// in the bucket of its assignee exactly while its assignee holds it.
func (w *Warning) HeldBy(userID string) bool {
	return userID != "" && w.Assignee == userID && w.ArchivedAt == nil
}

// Pushed is what the server makes of one op a device pushed: the answer,
// the warning's new state, and what the log and the warning's history
// keep of the op.
type Pushed struct {
	// Result answers the op; Version is the warning's version after it.
	Result Result
	// Warning is the state to store, or nil when the op changed nothing.
	Warning *Warning
	// Logged is the op as the log keeps it: op itself, or a copy without
	// what it must not keep.
	Logged *Op
	// InHistory reports whether the warning's history, which its leads
	// read, lists the op.
	InHistory bool
}

// ApplyPushed decides a pushed op on w, the warning as stored (nil when
// none has op's id), by Apply and the server's policies around it:
//
//   - A warning that does not exist and one outside the actor's scope get
//     the same answer, forbidden, so that an op cannot tell them apart.
//   - An op refused as from outside the warning's scope is logged without
//     what it says about the person, as no redaction would find it there;
//     one refused for the warning's size (warning_full) without its free
//     text, or a flood of them would grow the log. Neither is part of the
//     warning's history.
//   - A warning that leaves closed (returned) is no longer archived: it
//     goes back to its cadre's phone.
//   - An op on a warning already redacted (from a phone offline for
//     months) is erased at once, in the state and in the log.
//
// env.Version is the op's log sequence. Like Apply, ApplyPushed modifies
// neither w nor op.
func ApplyPushed(w *Warning, op *Op, env Env) Pushed {
	p := Pushed{Result: Result{OpID: op.ID, ClientSeq: op.ClientSeq}, Logged: op}
	var applied Applied
	var rejection *Error
	if w == nil {
		if rejection = op.Validate(); rejection == nil {
			rejection = Errorf(CodeForbidden, "warning %s is unknown or outside your scope", op.WarningID)
		}
	} else {
		applied, rejection = Apply(w, op, env)
	}
	res := &p.Result
	switch {
	case rejection != nil:
		res.Status, res.Code, res.Message = StatusRejected, rejection.Code, rejection.Message
		if res.Code == CodeNotFound {
			res.Code = CodeForbidden
		}
		switch res.Code {
		case CodeForbidden:
			p.Logged = op.withoutPersonal()
		case CodeWarningFull:
			p.Logged = op.withoutText()
		}
	case !applied.Changed:
		res.Status, res.Version = StatusApplied, w.Version
	default:
		res.Status, res.Version, res.Flags = StatusApplied, env.Version, applied.Flags
		p.Warning = applied.Warning
		if p.Warning.Status != WarningClosed {
			p.Warning.ArchivedAt = nil
		}
		if w.RedactedAt != nil {
			p.Warning.Redact()
			p.Logged = op.withoutPersonal()
		}
	}
	p.InHistory = w != nil && res.Code != CodeForbidden && res.Code != CodeWarningFull
	return p
}

// withoutPersonal is a copy of op without what it says about the person:
// notes and location.
func (op *Op) withoutPersonal() *Op {
	c := *op
	c.Body.Notes, c.Body.Location = "", nil
	return &c
}

// withoutText is a copy of op without its free text: notes, location,
// comment, reason and answer.
func (op *Op) withoutText() *Op {
	c := op.withoutPersonal()
	c.Body.Comment, c.Body.Reason, c.Body.Answer = "", "", ""
	return c
}
