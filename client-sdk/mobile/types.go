package mobile

import (
	"strings"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Times are Unix milliseconds (Java: new Date(ms); Swift:
// Date(timeIntervalSince1970: Double(ms) / 1000)); 0 means "not set".
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func millisPtr(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return millis(*t)
}

// User is a signed-in user.
type User struct {
	ID       string
	Username string
	Name     string
	// Role is "village", "township", "county" or "center".
	Role string
	// Unit is the user's unit code.
	Unit  string
	Admin bool
}

func newUser(u syncproto.UserInfo) *User {
	return &User{ID: u.ID, Username: u.Username, Name: u.Name, Role: u.Role, Unit: u.Unit, Admin: u.Admin}
}

// Warning is one warning target as the person sees it: the server's state
// with this device's unsent work applied on top. It is a snapshot: read it
// again (Client.Warning) after an OnChange for its id.
type Warning struct {
	ID         string
	ExternalID string
	// Name, Phone, IDTail (the last digits of the ID card) and Address are
	// personal data: do not log them.
	Name    string
	Phone   string
	IDTail  string
	Address string
	// Unit is the unit code; UnitName its name when the directory has it
	// (township, county and center devices).
	Unit      string
	UnitName  string
	FraudType string
	// Risk is "high", "medium" or "low".
	Risk string
	// Status is "new", "dispatched", "assigned", "in_progress",
	// "resolved" or "closed".
	Status string
	// Assignee is the assigned cadre's user id; AssigneeName their name
	// when known ("" otherwise).
	Assignee     string
	AssigneeName string
	// Outcome is the latest conclusive outcome, else the latest one.
	Outcome string
	// Escalated: a request for help is open (not answered yet).
	Escalated bool
	// ReturnComment is why a lead last returned the work ("" if it never
	// was): what the cadre must redo. ReturnedBy and ReturnedByName say
	// who, ReturnedAt when (Unix ms).
	ReturnComment  string
	ReturnedBy     string
	ReturnedByName string
	ReturnedAt     int64
	// Overdue: still open past its deadline.
	Overdue bool

	// Times in Unix milliseconds; 0 when not set.
	WarnedAt       int64
	ReceivedAt     int64
	Deadline       int64
	DispatchedAt   int64
	AssignedAt     int64
	FirstContactAt int64
	ResolvedAt     int64
	ClosedAt       int64

	// Version is the server's version of the warning.
	Version int64
	// Summary: the phone holds the warning as a summary pull brought it
	// (Config.PullDetail): its attempts lack notes, places and photos.
	// FetchWarning brings it whole.
	Summary bool
	// OpenFlags counts the conflicts waiting for a lead's review.
	OpenFlags int
	// PendingOps counts this device's ops on it the server has not
	// confirmed yet; RejectedOps those it refused that are not dismissed.
	PendingOps  int
	RejectedOps int
	// SyncState sums up those ops for a list badge: "rejected" when one
	// was refused, else "pending" (not sent yet), "sent" (no answer
	// yet), "applied" (accepted, waiting for the next pull), or "synced".
	SyncState string

	attempts    []*Attempt
	reviews     []*Review
	escalations []*Escalation
	flags       []*Flag
	ops         []*OpStatus
	missing     []string
}

// EscalationCount is the number of requests for help, oldest first.
func (w *Warning) EscalationCount() int { return len(w.escalations) }

// Escalation returns request for help i, or nil.
func (w *Warning) Escalation(i int) *Escalation { return at(w.escalations, i) }

// LastEscalation returns the newest request for help with its answer,
// or nil when nobody asked.
func (w *Warning) LastEscalation() *Escalation { return at(w.escalations, len(w.escalations)-1) }

// AttemptCount is the number of dissuasion attempts, oldest first.
func (w *Warning) AttemptCount() int { return len(w.attempts) }

// Attempt returns attempt i (0 <= i < AttemptCount), or nil.
func (w *Warning) Attempt(i int) *Attempt { return at(w.attempts, i) }

// ReviewCount is the number of reviews, oldest first.
func (w *Warning) ReviewCount() int { return len(w.reviews) }

// Review returns review i, or nil.
func (w *Warning) Review(i int) *Review { return at(w.reviews, i) }

// FlagCount is the number of conflict flags, resolved or not.
func (w *Warning) FlagCount() int { return len(w.flags) }

// Flag returns flag i, or nil.
func (w *Warning) Flag(i int) *Flag { return at(w.flags, i) }

// OpCount is the number of this device's ops on the warning that a pull
// has not confirmed yet, then its rejected ones.
func (w *Warning) OpCount() int { return len(w.ops) }

// Op returns op i, or nil.
func (w *Warning) Op(i int) *OpStatus { return at(w.ops, i) }

// MissingPhotoCount is the number of photos the attempts refer to that
// have not reached the server yet.
func (w *Warning) MissingPhotoCount() int { return len(w.missing) }

// MissingPhoto returns the SHA-256 (hex) of missing photo i, or "".
func (w *Warning) MissingPhoto(i int) string {
	if i < 0 || i >= len(w.missing) {
		return ""
	}
	return w.missing[i]
}

func at[T any](s []*T, i int) *T {
	if i < 0 || i >= len(s) {
		return nil
	}
	return s[i]
}

// names resolves user ids and unit codes for display.
type names struct {
	users map[string]string
	units map[string]string
}

func (c *Client) names() names {
	n := names{users: map[string]string{}, units: map[string]string{}}
	for _, u := range c.sdk.Cadres() {
		n.users[u.ID] = u.Name
	}
	for _, u := range c.sdk.Units() {
		n.units[u.Code] = u.Name
	}
	if u, _ := c.sdk.User(); u.ID != "" {
		n.users[u.ID] = u.Name
	}
	return n
}

// name is the directory's name of user id, else the name the server
// wrote beside it (a lead's, whom a cadre's directory does not hold).
func (n names) name(id, written string) string {
	if name := n.users[id]; name != "" {
		return name
	}
	return written
}

func newWarning(v *clientsdk.Warning, rejected []clientsdk.OpStatus, n names) *Warning {
	w := &Warning{
		ID: v.ID, ExternalID: v.ExternalID, Name: v.Name, Phone: v.Phone, IDTail: v.IDTail, Address: v.Address,
		Unit: v.Unit, UnitName: n.units[v.Unit], FraudType: v.FraudType, Risk: v.Risk, Status: v.Status,
		Assignee: v.Assignee, AssigneeName: n.users[v.Assignee], Outcome: v.Outcome, Escalated: v.Escalated,
		Overdue:  v.Overdue,
		WarnedAt: millis(v.WarnedAt), ReceivedAt: millis(v.ReceivedAt), Deadline: millis(v.Deadline),
		DispatchedAt: millisPtr(v.DispatchedAt), AssignedAt: millisPtr(v.AssignedAt),
		FirstContactAt: millisPtr(v.FirstContactAt), ResolvedAt: millisPtr(v.ResolvedAt), ClosedAt: millisPtr(v.ClosedAt),
		Version: int64(v.Version), Summary: v.Summary, OpenFlags: v.OpenFlags(), PendingOps: len(v.Ops), RejectedOps: len(rejected),
		missing: append([]string(nil), v.MissingPhotos...),
	}
	for i := range v.Attempts {
		w.attempts = append(w.attempts, newAttempt(&v.Attempts[i], n))
	}
	for _, r := range v.Reviews {
		w.reviews = append(w.reviews, &Review{By: r.By, ByName: n.name(r.By, r.ByName), Decision: r.Decision, Comment: r.Comment, At: millis(r.At)})
	}
	if r, ok := v.LastReturn(); ok {
		w.ReturnComment, w.ReturnedBy, w.ReturnedByName, w.ReturnedAt = r.Comment, r.By, n.name(r.By, r.ByName), millis(r.At)
	}
	for i := range v.Escalations {
		w.escalations = append(w.escalations, newEscalation(&v.Escalations[i], n))
	}
	for _, f := range v.Flags {
		w.flags = append(w.flags, newFlag(f))
	}
	for i := range v.Ops {
		w.ops = append(w.ops, newOpStatus(&v.Ops[i]))
	}
	for i := range rejected {
		w.ops = append(w.ops, newOpStatus(&rejected[i]))
	}
	w.SyncState = syncState(w.ops)
	return w
}

// syncState is the least settled state among ops.
func syncState(ops []*OpStatus) string {
	rank := map[string]int{"rejected": 4, "pending": 3, "sent": 2, "applied": 1}
	best := ""
	for _, o := range ops {
		if rank[o.State] > rank[best] {
			best = o.State
		}
	}
	if best == "" {
		return "synced"
	}
	return best
}

// Attempt is one dissuasion attempt on a warning.
type Attempt struct {
	ID string
	// By is the user id of who recorded it; ByName their name when known.
	By       string
	ByName   string
	DeviceID string
	// Method is "visit", "phone", "video" or "other".
	Method  string
	Reached bool
	// Outcome is "dissuaded", "already_defrauded", "not_target",
	// "unreachable" or "refused".
	Outcome string
	// LossFen is the money already lost, in fen (1/100 yuan).
	LossFen int64
	Notes   string
	// At is when the person acted (the phone's clock); ReceivedAt when
	// the server got it (0 while it has not).
	At         int64
	ReceivedAt int64
	// HasLocation says whether Lat, Lng and Accuracy (meters) are set.
	HasLocation bool
	Lat         float64
	Lng         float64
	Accuracy    float64

	photos []string
}

func newAttempt(a *syncproto.Attempt, n names) *Attempt {
	out := &Attempt{
		ID: a.ID, By: a.By, ByName: n.users[a.By], DeviceID: a.DeviceID, Method: a.Method, Reached: a.Reached,
		Outcome: a.Outcome, LossFen: a.LossFen, Notes: a.Notes, At: millis(a.At), ReceivedAt: millis(a.ReceivedAt),
		photos: append([]string(nil), a.Photos...),
	}
	if a.Location != nil {
		out.HasLocation, out.Lat, out.Lng, out.Accuracy = true, a.Location.Lat, a.Location.Lng, a.Location.Accuracy
	}
	return out
}

// PhotoCount is the number of photos attached.
func (a *Attempt) PhotoCount() int { return len(a.photos) }

// Photo returns the SHA-256 (hex) of photo i, or "".
func (a *Attempt) Photo(i int) string {
	if i < 0 || i >= len(a.photos) {
		return ""
	}
	return a.photos[i]
}

// Review is a lead's decision on the work.
type Review struct {
	By     string
	ByName string
	// Decision is "approve" or "return".
	Decision string
	Comment  string
	At       int64
}

// Escalation is a request for help on a warning and, once a county or
// center user replied, the answer.
type Escalation struct {
	// By is who asked (user id), ByName their name when known.
	By     string
	ByName string
	Reason string
	// At is when they asked (Unix ms).
	At int64
	// Answered: a county or center user replied; Answer is the reply,
	// AnsweredBy and AnsweredByName who, AnsweredAt when (Unix ms).
	Answered       bool
	Answer         string
	AnsweredBy     string
	AnsweredByName string
	AnsweredAt     int64
}

func newEscalation(e *syncproto.Escalation, n names) *Escalation {
	return &Escalation{
		By: e.By, ByName: n.name(e.By, e.ByName), Reason: e.Reason, At: millis(e.At), Answered: e.Answered(),
		Answer: e.Answer, AnsweredBy: e.AnsweredBy, AnsweredByName: n.name(e.AnsweredBy, e.AnsweredByName), AnsweredAt: millisPtr(e.AnsweredAt),
	}
}

// Flag is a conflict kept for review: "stale_assignee", "after_close",
// "conflicting_outcomes", "stale_review" or "future_time".
type Flag struct {
	Code   string
	OpID   string
	Detail string
	// Resolved turns true when a lead approves the warning.
	Resolved bool
}

func newFlag(f syncproto.Flag) *Flag {
	return &Flag{Code: f.Code, OpID: f.OpID, Detail: f.Detail, Resolved: f.Resolved}
}

// OpStatus is one thing the person did, and where it stands.
type OpStatus struct {
	OpID      string
	WarningID string
	// Type is "dissuasion.recorded", "warning.reviewed",
	// "warning.assigned", "warning.dispatched", "warning.escalated" or
	// "escalation.answered".
	Type      string
	ClientSeq int64
	// State is "pending" (not sent), "sent" (no answer yet), "applied"
	// (accepted; it leaves the list at the next pull) or "rejected".
	State string
	// Code and Message say why the server rejected it: show Message,
	// then let the person Dismiss it.
	Code    string
	Message string
	// At is when the person did it.
	At int64

	flags []*Flag
}

func newOpStatus(o *clientsdk.OpStatus) *OpStatus {
	out := &OpStatus{
		OpID: o.OpID, WarningID: o.WarningID, Type: o.Type, ClientSeq: int64(o.ClientSeq),
		State: o.State, Code: o.Code, Message: o.Message, At: millis(o.At),
	}
	for _, f := range o.Flags {
		out.flags = append(out.flags, newFlag(f))
	}
	return out
}

// FlagCount is the number of flags the server raised on this op.
func (o *OpStatus) FlagCount() int { return len(o.flags) }

// Flag returns flag i, or nil.
func (o *OpStatus) Flag(i int) *Flag { return at(o.flags, i) }

// WarningList is a list of warnings, most urgent first.
type WarningList struct{ items []*Warning }

// Len is the number of warnings.
func (l *WarningList) Len() int { return len(l.items) }

// Get returns warning i (0 <= i < Len), or nil.
func (l *WarningList) Get(i int) *Warning { return at(l.items, i) }

// OpList is a list of ops, in the order they were made.
type OpList struct{ items []*OpStatus }

// Len is the number of ops.
func (l *OpList) Len() int { return len(l.items) }

// Get returns op i, or nil.
func (l *OpList) Get(i int) *OpStatus { return at(l.items, i) }

func newOpList(ops []clientsdk.OpStatus) *OpList {
	l := &OpList{items: make([]*OpStatus, len(ops))}
	for i := range ops {
		l.items[i] = newOpStatus(&ops[i])
	}
	return l
}

// Unit is a unit of the directory, for the dispatch picker.
type Unit struct {
	Code string
	Name string
	// Level is "center", "county", "township" or "village".
	Level string
}

// UnitList is the units of the directory, by code.
type UnitList struct{ items []*Unit }

// Len is the number of units.
func (l *UnitList) Len() int { return len(l.items) }

// Get returns unit i, or nil.
func (l *UnitList) Get(i int) *Unit { return at(l.items, i) }

// Cadre is a village user of the directory, for the assignment picker.
type Cadre struct {
	ID       string
	Username string
	Name     string
	Unit     string
	Active   bool
}

// CadreList is the village users of the directory, by unit.
type CadreList struct{ items []*Cadre }

// Len is the number of cadres.
func (l *CadreList) Len() int { return len(l.items) }

// Get returns cadre i, or nil.
func (l *CadreList) Get(i int) *Cadre { return at(l.items, i) }

// SyncReport says what one Sync did.
type SyncReport struct {
	// Pushed ops were sent; the server Applied or Rejected each.
	Pushed   int
	Applied  int
	Rejected int
	// Pulled changes came down; Removed warnings left this device.
	Pulled  int
	Removed int
	// Kept warnings the pull left out: the phone had computed their
	// state after its push, and the server confirmed it.
	Kept int
	// Reset: the server made the device start its copy afresh.
	Reset bool
	// Photos uploaded; PhotosFailed did not finish and wait for the next
	// sync (they resume where they stopped).
	Photos       int
	PhotosFailed int
	// Attempts is how many tries it took.
	Attempts int
}

// SyncStatus is the device's sync state, for a status line.
type SyncStatus struct {
	LoggedIn bool
	// Username of the signed-in (or last) user.
	Username string
	DeviceID string
	// Revoked: this device may not sync again. Wiped: its warnings were
	// deleted; HandOver ops remain unsent (see Client.HandOverJSON).
	Revoked  bool
	Wiped    bool
	HandOver int
	// Pending ops wait to be sent or confirmed; Rejected ones wait to be
	// dismissed.
	Pending  int
	Rejected int
	// PhotosPending photos are on the phone only; PhotosFailed of them
	// failed their last upload, PhotoError says why the newest did.
	PhotosPending int
	PhotosFailed  int
	PhotoError    string
	// LastSync is when a sync last succeeded (Unix ms, 0: never).
	LastSync int64
	// LastError and LastErrorCode describe the last sync's failure ("" if
	// it succeeded).
	LastError     string
	LastErrorCode string
	// BackgroundSync is true between StartBackgroundSync and
	// StopBackgroundSync.
	BackgroundSync bool
}

func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
