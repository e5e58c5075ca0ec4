package syncproto

import (
	"fmt"
	"slices"
	"time"
)

// Directory answers the questions Apply asks about units and users. The
// server answers from its store; the SDK from the directory it pulled.
type Directory interface {
	// Unit returns the unit with code, if it exists.
	Unit(code string) (Unit, bool)
	// User returns the user with id, if it exists.
	User(id string) (DirectoryUser, bool)
	// SoleActiveCadre returns the id of the only active village user of a
	// village unit, and false when it has none or more than one.
	SoleActiveCadre(unit string) (string, bool)
}

// MapDirectory is a Directory held in memory, units by code and users by
// id: the SDK's copy of the directory it pulled, and tests' directories.
type MapDirectory struct {
	Units map[string]Unit
	Users map[string]DirectoryUser
}

var _ Directory = MapDirectory{}

// Unit returns the unit with code, if the map holds it.
func (d MapDirectory) Unit(code string) (Unit, bool) {
	u, ok := d.Units[code]
	return u, ok
}

// User returns the user with id, if the map holds them.
func (d MapDirectory) User(id string) (DirectoryUser, bool) {
	u, ok := d.Users[id]
	return u, ok
}

// SoleActiveCadre returns the only active user of unit. It does not check
// the unit's level: Apply must not auto-assign above a village even when
// a directory answers for a township.
func (d MapDirectory) SoleActiveCadre(unit string) (string, bool) {
	found := ""
	for _, u := range d.Users {
		if u.Unit != unit || !u.Active {
			continue
		}
		if found != "" {
			return "", false
		}
		found = u.ID
	}
	return found, found != ""
}

// Env is what Apply needs besides the warning and the op.
type Env struct {
	Actor Actor
	// Version is the version the warning takes if the op changes it: the
	// op's log sequence on the server.
	Version uint64
	// Now is when the server (or, for a pending op, the phone) received it.
	Now time.Time
	Dir Directory
	// Limits bound the warning's growth: the server's, so that it answers
	// warning_full. The zero value sets none: a phone applying its
	// pending ops shows them as made, and learns of a limit from the
	// server's rejection.
	Limits WarningLimits
}

// Applied is what applying an op did.
type Applied struct {
	// Warning is the new state; it is the input itself when nothing changed.
	Warning *Warning
	// Changed is false when the op had no effect (an attempt already held).
	Changed bool
	// Flags are the flags this op raised.
	Flags []Flag
	// Moved is true when the unit or assignee changed, so scope indexes move.
	Moved bool
}

// Apply applies op, made by env.Actor, to w and returns the new state. w is
// never modified. A rule that forbids the op returns an *Error with code
// forbidden, invalid_state or invalid_request, and the op is rejected; so
// does an op that would take the warning past env.Limits, with
// warning_full.
//
// Apply is pure: the same inputs give the same result on the server and on
// a phone.
func Apply(w *Warning, op *Op, env Env) (Applied, *Error) {
	if err := op.Validate(); err != nil {
		return Applied{}, err
	}
	if w == nil {
		return Applied{}, Errorf(CodeNotFound, "warning %s does not exist", op.WarningID)
	}
	if w.ID != op.WarningID {
		return Applied{}, InvalidField("warning_id", "op is for another warning")
	}
	if err := authorize(w, op, env); err != nil {
		return Applied{}, err
	}
	if err := stateAllows(w, op); err != nil {
		return Applied{}, err
	}
	n := w.Clone()
	var flags []Flag
	flag := func(code, detail string) {
		flags = append(flags, Flag{Code: code, OpID: op.ID, Detail: detail})
	}
	if op.At.After(env.Now.Add(FutureSkew)) {
		flag(FlagFutureTime, fmt.Sprintf("device time %s is %s ahead of the server", op.At.UTC().Format(time.RFC3339), op.At.Sub(env.Now).Round(time.Second)))
	}
	b := &op.Body
	switch op.Type {
	case OpDispatched:
		n.dispatch(b.Unit, env)
	case OpAssigned:
		u, _ := env.Dir.User(b.Assignee)
		n.assign(u, env.Now)
	case OpRecorded:
		if slices.ContainsFunc(n.Attempts, func(a Attempt) bool { return a.ID == b.AttemptID }) {
			return Applied{Warning: w}, nil
		}
		if err := env.Limits.roomForAttempt(n); err != nil {
			return Applied{}, err
		}
		n.record(op, env, flag)
	case OpEscalated:
		if slices.ContainsFunc(n.Escalations, func(e Escalation) bool { return e.OpID == op.ID }) {
			return Applied{Warning: w}, nil
		}
		n.Escalated = true
		n.Escalations = append(n.Escalations, Escalation{
			By: env.Actor.UserID, ByName: env.userName(env.Actor.UserID), Reason: b.Reason, At: op.At.UTC(), OpID: op.ID,
		})
	case OpAnswered:
		n.answer(op, env)
	case OpReviewed:
		n.review(op, env, flag)
	}
	n.Flags = append(n.Flags, flags...)
	n.Version = env.Version
	if err := env.Limits.checkSize(op.Type, n); err != nil {
		return Applied{}, err
	}
	// Compared after the op, since a dispatch may also auto-assign.
	moved := n.Unit != w.Unit || n.Assignee != w.Assignee
	return Applied{Warning: n, Changed: true, Flags: flags, Moved: moved}, nil
}

// authorize applies the "who" column of PROTOCOL.md section 6: who may
// make an op of its type on w (mayAct), then what its body names.
func authorize(w *Warning, op *Op, env Env) *Error {
	if err := mayAct(w, op.Type, env.Actor); err != nil {
		return err
	}
	a := env.Actor
	switch op.Type {
	case OpDispatched:
		if !InScope(a.Unit, op.Body.Unit) {
			return Errorf(CodeForbidden, "unit %s is outside your unit", op.Body.Unit)
		}
		if _, ok := env.Dir.Unit(op.Body.Unit); !ok {
			return InvalidField("body.unit", "unit %s does not exist", op.Body.Unit)
		}
	case OpAssigned:
		u, ok := env.Dir.User(op.Body.Assignee)
		switch {
		case !ok || UnitLevel(u.Unit) != RoleVillage:
			return InvalidField("body.assignee", "assignee must be a village user")
		case !u.Active:
			return InvalidField("body.assignee", "assignee %s is disabled", u.Username)
		case !InScope(a.Unit, u.Unit):
			return Errorf(CodeForbidden, "assignee is outside your unit")
		}
	}
	return nil
}

// mayAct reports whether a may make an op of type opType on w, whatever
// its body: by role, and by scope or past assignment.
func mayAct(w *Warning, opType string, a Actor) *Error {
	inScope := InScope(a.Unit, w.Unit)
	switch opType {
	case OpDispatched, OpAssigned, OpReviewed:
		if !IsManager(a.Role) {
			return Errorf(CodeForbidden, "only township, county and center users may %s", verb(opType))
		}
		if !inScope {
			return Errorf(CodeForbidden, "warning is outside your unit")
		}
	case OpRecorded, OpEscalated:
		if !inScope && !(a.Role == RoleVillage && w.everAssigned(a.UserID)) {
			return Errorf(CodeForbidden, "warning is outside your scope")
		}
	case OpAnswered:
		if a.Role != RoleCounty && a.Role != RoleCenter {
			return Errorf(CodeForbidden, "only county and center users may answer an escalation")
		}
		if !inScope {
			return Errorf(CodeForbidden, "warning is outside your unit")
		}
	}
	return nil
}

func verb(opType string) string {
	switch opType {
	case OpDispatched:
		return "dispatch"
	case OpAssigned:
		return "assign"
	}
	return "review"
}

func (w *Warning) everAssigned(userID string) bool {
	return userID != "" && (w.Assignee == userID || slices.Contains(w.PastAssignees, userID))
}

func (w *Warning) dispatch(unit string, env Env) {
	w.Unit = unit
	w.setAssignee("")
	w.Status = WarningDispatched
	w.DispatchedAt = timePtr(env.Now)
	w.autoAssign(env)
}

// autoAssign gives a warning at a village with exactly one active cadre to
// that cadre in the same step.
func (w *Warning) autoAssign(env Env) {
	if UnitLevel(w.Unit) != RoleVillage || env.Dir == nil {
		return
	}
	if id, ok := env.Dir.SoleActiveCadre(w.Unit); ok {
		if u, ok := env.Dir.User(id); ok {
			w.assign(u, env.Now)
		}
	}
}

func (w *Warning) assign(u DirectoryUser, now time.Time) {
	w.Unit = u.Unit
	w.setAssignee(u.ID)
	w.Status = WarningAssigned
	w.AssignedAt = timePtr(now)
	if w.DispatchedAt == nil {
		w.DispatchedAt = timePtr(now)
	}
}

func (w *Warning) setAssignee(id string) {
	if w.Assignee != "" && w.Assignee != id && !slices.Contains(w.PastAssignees, w.Assignee) {
		w.PastAssignees = append(w.PastAssignees, w.Assignee)
	}
	w.Assignee = id
}

func (w *Warning) record(op *Op, env Env, flag func(code, detail string)) {
	b := &op.Body
	a := env.Actor
	if a.Role == RoleVillage && a.UserID != w.Assignee {
		if w.everAssigned(a.UserID) {
			flag(FlagStaleAssignee, "recorded by a former assignee after the warning was reassigned")
		} else {
			flag(FlagStaleAssignee, "recorded by a cadre who is not the assignee")
		}
	}
	if w.Status == WarningClosed {
		flag(FlagAfterClose, "recorded after the warning was closed")
	}
	if Conclusive(b.Outcome) && w.Outcome != "" && Conclusive(w.Outcome) && w.Outcome != b.Outcome {
		flag(FlagConflictingOutcomes, fmt.Sprintf("outcome %s after an earlier %s", b.Outcome, w.Outcome))
	}
	w.Attempts = append(w.Attempts, Attempt{
		ID:         b.AttemptID,
		By:         a.UserID,
		DeviceID:   a.DeviceID,
		Method:     b.Method,
		Reached:    *b.Reached,
		Outcome:    b.Outcome,
		LossFen:    b.LossFen,
		Notes:      b.Notes,
		At:         op.At.UTC(),
		ReceivedAt: env.Now.UTC(),
		Location:   b.Location,
		Photos:     append([]string(nil), b.Photos...),
		Version:    env.Version,
	})
	if *b.Reached {
		// The device clock dates the contact, since the cadre may sync hours
		// later; but it is untrusted, so it is kept between the warning and
		// the moment the server heard of it.
		t := op.At.UTC()
		if t.After(env.Now) {
			t = env.Now.UTC()
		}
		if t.Before(w.WarnedAt) {
			t = w.WarnedAt
		}
		if w.FirstContactAt == nil || t.Before(*w.FirstContactAt) {
			w.FirstContactAt = &t
		}
	}
	if Conclusive(b.Outcome) || !Conclusive(w.Outcome) {
		w.Outcome = b.Outcome
	}
	switch {
	case w.Status == WarningClosed || w.Status == WarningResolved:
		// An inconclusive attempt never undoes a resolution, and nothing
		// reopens a closed warning: a lead returns it if it must be redone.
	case Conclusive(b.Outcome):
		w.Status = WarningResolved
		w.ResolvedAt = timePtr(env.Now)
	default:
		w.Status = WarningInProgress
	}
}

func (w *Warning) review(op *Op, env Env, flag func(code, detail string)) {
	b := &op.Body
	switch b.Decision {
	case DecisionApprove:
		for i := range w.Flags {
			w.Flags[i].Resolved = true
		}
		w.Status = WarningClosed
		w.ClosedAt = timePtr(env.Now)
	case DecisionReturn:
		w.Status = WarningAssigned
		if w.Assignee == "" {
			w.Status = WarningDispatched
		}
		w.ResolvedAt, w.ClosedAt = nil, nil
	}
	if newest := w.newestAttemptVersion(); newest > op.BaseVersion {
		flag(FlagStaleReview, fmt.Sprintf("%s made on version %d, before the attempt of version %d", b.Decision, op.BaseVersion, newest))
	}
	w.Reviews = append(w.Reviews, Review{By: env.Actor.UserID, Decision: b.Decision, Comment: b.Comment, At: op.At.UTC(),
		ByName: env.userName(env.Actor.UserID)})
}

// answer records a county or center user's reply on every open
// escalation: one reply answers them all, and the warning is no longer
// escalated.
func (w *Warning) answer(op *Op, env Env) {
	name := env.userName(env.Actor.UserID)
	for i := range w.Escalations {
		e := &w.Escalations[i]
		if e.Answered() {
			continue
		}
		e.Answer, e.AnsweredBy, e.AnsweredByName, e.AnsweredAt = op.Body.Answer, env.Actor.UserID, name, timePtr(op.At)
	}
	w.Escalated = false
}

// userName is the name the directory gives a user, or "" when it does not
// know them (a phone knows only village users).
func (env Env) userName(id string) string {
	if env.Dir == nil {
		return ""
	}
	u, _ := env.Dir.User(id)
	return u.Name
}

func (w *Warning) newestAttemptVersion() uint64 {
	var v uint64
	for _, a := range w.Attempts {
		v = max(v, a.Version)
	}
	return v
}

// DeadlinePolicy gives the time allowed to reach a warning of each risk
// when the feed gives no deadline.
type DeadlinePolicy map[string]time.Duration

// DefaultDeadlines are the limits of a city center: high risk in 2 hours,
// medium in 12, low in 48.
var DefaultDeadlines = DeadlinePolicy{RiskHigh: 2 * time.Hour, RiskMedium: 12 * time.Hour, RiskLow: 48 * time.Hour}

// Create makes the state of a warning the feed brought, imported by
// env.Actor: `new` at the importer's own unit, `dispatched` when deeper, and
// assigned at once when its village has exactly one active cadre.
func Create(id string, f *FeedWarning, env Env, deadlines DeadlinePolicy) *Warning {
	w := &Warning{
		ID:         id,
		ExternalID: f.ExternalID,
		Name:       f.Name,
		Phone:      f.Phone,
		IDTail:     f.IDTail,
		Address:    f.Address,
		Unit:       f.Unit,
		FraudType:  f.FraudType,
		Risk:       f.Risk,
		WarnedAt:   f.WarnedAt.UTC(),
		ReceivedAt: env.Now.UTC(),
		Status:     WarningNew,
		Attempts:   []Attempt{},
		Reviews:    []Review{},
		Flags:      []Flag{},
		Version:    env.Version,
	}
	if f.Deadline != nil {
		w.Deadline = f.Deadline.UTC()
	} else {
		limit, ok := deadlines[f.Risk]
		if !ok {
			limit = DefaultDeadlines[f.Risk]
		}
		w.Deadline = w.WarnedAt.Add(limit)
	}
	if f.Unit != env.Actor.Unit {
		w.Status = WarningDispatched
		w.DispatchedAt = timePtr(env.Now)
		w.autoAssign(env)
	}
	return w
}

// Overdue reports whether w is still open past its deadline at now.
func (w *Warning) Overdue(now time.Time) bool {
	return IsOverdue(w.Status, w.Deadline, now)
}

func timePtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}
