package syncproto

import "time"

// Warning statuses (PROTOCOL.md section 7).
const (
	WarningNew        = "new"
	WarningDispatched = "dispatched"
	WarningAssigned   = "assigned"
	WarningInProgress = "in_progress"
	WarningResolved   = "resolved"
	WarningClosed     = "closed"
)

// Risks.
const (
	RiskHigh   = "high"
	RiskMedium = "medium"
	RiskLow    = "low"
)

// Dissuasion methods.
const (
	MethodVisit = "visit"
	MethodPhone = "phone"
	MethodVideo = "video"
	MethodOther = "other"
)

// Dissuasion outcomes. The first three are conclusive: they resolve the
// warning.
const (
	OutcomeDissuaded        = "dissuaded"
	OutcomeAlreadyDefrauded = "already_defrauded"
	OutcomeNotTarget        = "not_target"
	OutcomeUnreachable      = "unreachable"
	OutcomeRefused          = "refused"
)

// Flag codes: conflicts kept for a person to review.
const (
	FlagStaleAssignee       = "stale_assignee"
	FlagAfterClose          = "after_close"
	FlagConflictingOutcomes = "conflicting_outcomes"
	FlagStaleReview         = "stale_review"
	FlagFutureTime          = "future_time"
)

// ValidRisk reports whether r is a known risk.
func ValidRisk(r string) bool { return r == RiskHigh || r == RiskMedium || r == RiskLow }

// ValidMethod reports whether m is a known dissuasion method.
func ValidMethod(m string) bool {
	return m == MethodVisit || m == MethodPhone || m == MethodVideo || m == MethodOther
}

// ValidOutcome reports whether o is a known outcome.
func ValidOutcome(o string) bool {
	return Conclusive(o) || o == OutcomeUnreachable || o == OutcomeRefused
}

// Conclusive reports whether an attempt with outcome o resolves its warning.
func Conclusive(o string) bool {
	return o == OutcomeDissuaded || o == OutcomeAlreadyDefrauded || o == OutcomeNotTarget
}

// Warning is the state of one warning target: the `data` of a put.
//
// Name, Phone, IDTail and Address are personal data of a person at risk;
// nothing may log them.
type Warning struct {
	ID             string     `json:"id"`
	ExternalID     string     `json:"external_id"`
	Name           string     `json:"name"`
	Phone          string     `json:"phone"`
	IDTail         string     `json:"id_tail"`
	Address        string     `json:"address"`
	Unit           string     `json:"unit"`
	FraudType      string     `json:"fraud_type"`
	Risk           string     `json:"risk"`
	WarnedAt       time.Time  `json:"warned_at"`
	ReceivedAt     time.Time  `json:"received_at"`
	Deadline       time.Time  `json:"deadline"`
	DispatchedAt   *time.Time `json:"dispatched_at,omitempty"`
	AssignedAt     *time.Time `json:"assigned_at,omitempty"`
	Status         string     `json:"status"`
	Assignee       string     `json:"assignee,omitempty"`
	Outcome        string     `json:"outcome,omitempty"`
	Escalated      bool       `json:"escalated"`
	FirstContactAt *time.Time `json:"first_contact_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
	// ArchivedAt is set by the server when a closed warning has left its
	// cadre's device under the retention policy; RedactedAt when its
	// personal data was erased. Apply leaves both alone.
	ArchivedAt *time.Time `json:"archived_at,omitempty"`
	RedactedAt *time.Time `json:"redacted_at,omitempty"`
	Attempts   []Attempt  `json:"attempts"`
	Reviews    []Review   `json:"reviews"`
	Flags      []Flag     `json:"flags"`
	// Escalations are the requests for help made on the warning, oldest
	// first, each with its answer once a county or center user gave one.
	// Escalated is true while the newest is unanswered.
	Escalations []Escalation `json:"escalations,omitempty"`
	// PastAssignees lists every user the warning was assigned to before its
	// current assignee: a former assignee may still record what they did.
	PastAssignees []string `json:"past_assignees,omitempty"`
	// MissingPhotos lists the photos its attempts name that the server has
	// not received yet. The server fills it in when it sends the state; it
	// is not part of what Apply computes.
	MissingPhotos []string `json:"missing_photos,omitempty"`
	Version       uint64   `json:"version"`
	// Summary marks a warning sent in a summary pull (Summarize): its
	// attempts lack their detail, and it has no past assignees.
	Summary bool `json:"summary,omitempty"`
}

// Location is where a dissuasion attempt was made, if the phone knew.
type Location struct {
	Lat      float64 `json:"lat"`
	Lng      float64 `json:"lng"`
	Accuracy float64 `json:"accuracy,omitempty"`
}

// Attempt is one dissuasion attempt: a visit, call or video call.
type Attempt struct {
	ID         string    `json:"id"`
	By         string    `json:"by"`
	DeviceID   string    `json:"device_id"`
	Method     string    `json:"method"`
	Reached    bool      `json:"reached"`
	Outcome    string    `json:"outcome"`
	LossFen    int64     `json:"loss_fen"`
	Notes      string    `json:"notes"`
	At         time.Time `json:"at"`
	ReceivedAt time.Time `json:"received_at"`
	Location   *Location `json:"location,omitempty"`
	Photos     []string  `json:"photos,omitempty"`
	// Version is the warning version this attempt produced; a review made on
	// an older base_version did not see it (stale_review).
	Version uint64 `json:"version,omitempty"`
}

// Review is a lead's approval or return of a warning's work.
type Review struct {
	By       string    `json:"by"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment"`
	At       time.Time `json:"at"`
	// ByName is the reviewer's name as the server's directory had it:
	// a cadre's phone knows only village users, and must still say who
	// returned the work.
	ByName string `json:"by_name,omitempty"`
}

// Escalation is one request for help (warning.escalated) and its answer
// (escalation.answered). Names are kept beside ids for the same reason as
// Review.ByName.
type Escalation struct {
	By     string    `json:"by"`
	ByName string    `json:"by_name,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// OpID is the escalation's op, so that the same request is never
	// kept twice.
	OpID string `json:"op_id"`
	// The answer, empty until a county or center user replies.
	Answer         string     `json:"answer,omitempty"`
	AnsweredBy     string     `json:"answered_by,omitempty"`
	AnsweredByName string     `json:"answered_by_name,omitempty"`
	AnsweredAt     *time.Time `json:"answered_at,omitempty"`
}

// Answered reports whether a county or center user replied.
func (e *Escalation) Answered() bool { return e.AnsweredAt != nil }

// LastReturn is the newest review that returned the work, and false when
// the work was never returned: what the cadre must redo, and who said so.
func (w *Warning) LastReturn() (Review, bool) {
	for i := len(w.Reviews) - 1; i >= 0; i-- {
		if w.Reviews[i].Decision == DecisionReturn {
			return w.Reviews[i], true
		}
	}
	return Review{}, false
}

// LastEscalation is the newest request for help, with its answer if it
// has one, and false when nobody escalated the warning.
func (w *Warning) LastEscalation() (Escalation, bool) {
	if len(w.Escalations) == 0 {
		return Escalation{}, false
	}
	e := w.Escalations[len(w.Escalations)-1]
	e.AnsweredAt = cloneTime(e.AnsweredAt)
	return e, true
}

// Flag is a conflict kept for review. Resolved turns true when a lead
// approves the warning.
type Flag struct {
	Code     string `json:"code"`
	OpID     string `json:"op_id"`
	Detail   string `json:"detail"`
	Resolved bool   `json:"resolved"`
}

// OpenFlags counts the flags not yet resolved.
func (w *Warning) OpenFlags() int {
	n := 0
	for _, f := range w.Flags {
		if !f.Resolved {
			n++
		}
	}
	return n
}

// Clone returns a deep copy of w, so Apply never changes its input.
func (w *Warning) Clone() *Warning {
	c := *w
	c.DispatchedAt = cloneTime(w.DispatchedAt)
	c.AssignedAt = cloneTime(w.AssignedAt)
	c.FirstContactAt = cloneTime(w.FirstContactAt)
	c.ResolvedAt = cloneTime(w.ResolvedAt)
	c.ClosedAt = cloneTime(w.ClosedAt)
	c.ArchivedAt = cloneTime(w.ArchivedAt)
	c.RedactedAt = cloneTime(w.RedactedAt)
	c.Attempts = make([]Attempt, len(w.Attempts))
	for i, a := range w.Attempts {
		if a.Location != nil {
			l := *a.Location
			a.Location = &l
		}
		a.Photos = append([]string(nil), a.Photos...)
		c.Attempts[i] = a
	}
	c.Reviews = append(make([]Review, 0, len(w.Reviews)), w.Reviews...)
	c.Flags = append(make([]Flag, 0, len(w.Flags)), w.Flags...)
	if w.Escalations != nil {
		c.Escalations = make([]Escalation, len(w.Escalations))
		for i, e := range w.Escalations {
			e.AnsweredAt = cloneTime(e.AnsweredAt)
			c.Escalations[i] = e
		}
	}
	c.PastAssignees = append([]string(nil), w.PastAssignees...)
	c.MissingPhotos = append([]string(nil), w.MissingPhotos...)
	return &c
}

// Summarize returns w as a summary pull sends it (DetailSummary): the
// warning's own fields, reviews, flags and missing photos as they are;
// of each attempt who made it, how, when, whether the person was reached,
// the outcome and any loss, without its notes, place, photos and ids;
// no past assignees. What a lead above a township needs to watch the
// loop, in about half the bytes of a warning with attempts.
func (w *Warning) Summarize() *Warning {
	c := *w
	c.Summary = true
	c.PastAssignees = nil
	if w.Attempts != nil {
		c.Attempts = make([]Attempt, len(w.Attempts))
		for i, a := range w.Attempts {
			c.Attempts[i] = Attempt{By: a.By, Method: a.Method, Reached: a.Reached, Outcome: a.Outcome, LossFen: a.LossFen, At: a.At}
		}
	}
	return &c
}

// Redact clears the personal fields; what remains is enough for statistics.
func (w *Warning) Redact() {
	w.Name, w.Phone, w.IDTail, w.Address = "", "", "", ""
	for i := range w.Attempts {
		w.Attempts[i].Notes = ""
		w.Attempts[i].Location = nil
	}
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
