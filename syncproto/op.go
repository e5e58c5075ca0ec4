package syncproto

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Op types (PROTOCOL.md section 6). OpCreated is the server's own entry for a
// warning the feed created; clients never send it.
const (
	OpDispatched = "warning.dispatched"
	OpAssigned   = "warning.assigned"
	OpRecorded   = "dissuasion.recorded"
	OpEscalated  = "warning.escalated"
	OpReviewed   = "warning.reviewed"
	OpCreated    = "warning.created"
	// OpAnswered is a county or center user's reply to a warning's open
	// escalations (an extension of PROTOCOL.md section 6).
	OpAnswered = "escalation.answered"
)

// Review decisions.
const (
	DecisionApprove = "approve"
	DecisionReturn  = "return"
)

// Text limits keep one op small; a cadre's notes fit easily.
const (
	MaxNotesLen   = 4000
	MaxCommentLen = 2000
	MaxPhotos     = 10
)

// Number limits. Every number a client sends is bounded, so that what the
// server adds up from them (a unit's total loss over a year of warnings)
// stays far inside an int64 and cannot wrap.
const (
	// MaxLossFen is the largest loss one attempt may record: 10^12 fen, ten
	// billion yuan, beyond any single fraud case. Even every warning of a
	// store at this maximum sums to less than an int64 holds.
	MaxLossFen = 1_000_000_000_000
	// MaxLocationAccuracy is the largest accuracy radius of a location, in
	// meters: a fix coarser than 1,000 km places nothing.
	MaxLocationAccuracy = 1_000_000
)

// Op is one change a person made, on a phone or at a desk.
type Op struct {
	ID          string    `json:"id"`
	ClientSeq   uint64    `json:"client_seq"`
	Type        string    `json:"type"`
	WarningID   string    `json:"warning_id"`
	BaseVersion uint64    `json:"base_version"`
	At          time.Time `json:"at"`
	Body        OpBody    `json:"body"`
}

// OpBody holds the fields of every op type's body; each type reads its own
// and ignores the rest, as decoders ignore unknown fields.
type OpBody struct {
	// warning.dispatched
	Unit string `json:"unit,omitempty"`
	// warning.assigned
	Assignee string `json:"assignee,omitempty"`
	// dissuasion.recorded
	AttemptID string    `json:"id,omitempty"`
	Method    string    `json:"method,omitempty"`
	Reached   *bool     `json:"reached,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	LossFen   int64     `json:"loss_fen,omitempty"`
	Notes     string    `json:"notes,omitempty"`
	Location  *Location `json:"location,omitempty"`
	Photos    []string  `json:"photos,omitempty"`
	// warning.escalated
	Reason string `json:"reason,omitempty"`
	// warning.reviewed
	Decision string `json:"decision,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// escalation.answered
	Answer string `json:"answer,omitempty"`
}

// ValidUUID reports whether s is a lowercase canonical UUID. It runs for
// every id of every pushed op, so it is a plain loop, not a regexp.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isLowerHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// ValidSHA256 reports whether s is a lowercase hex SHA-256.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < 64; i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// minTime rejects zero and 1970-style times from a broken phone clock.
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// maxTime is the last time JSON can carry (RFC 3339 has four-digit years);
// MessagePack can say more, and a state holding such a time could never be
// served as JSON again.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// ValidateEnvelope checks the fields every op has. Bodies are checked by
// Validate; a push request fails whole only on envelope errors.
func (op *Op) ValidateEnvelope() *Error {
	if !ValidUUID(op.ID) {
		return InvalidField("id", "op id must be a lowercase UUID")
	}
	if op.ClientSeq == 0 {
		return InvalidField("client_seq", "client_seq must start at 1")
	}
	return nil
}

// Validate checks an op's type and body. It returns an invalid_request naming
// the field; the op is then rejected, consuming its client_seq.
func (op *Op) Validate() *Error {
	if err := op.ValidateEnvelope(); err != nil {
		return err
	}
	if !ValidUUID(op.WarningID) {
		return InvalidField("warning_id", "warning_id must be a lowercase UUID")
	}
	if err := validateAt(op.At); err != nil {
		return err
	}
	b := &op.Body
	switch op.Type {
	case OpDispatched:
		if UnitLevel(b.Unit) == "" {
			return InvalidField("body.unit", "unit must be a unit code of 4, 6, 9 or 12 digits")
		}
	case OpAssigned:
		if !ValidUUID(b.Assignee) {
			return InvalidField("body.assignee", "assignee must be a user id")
		}
	case OpRecorded:
		return b.validateAttempt()
	case OpEscalated:
		if b.Reason == "" {
			return InvalidField("body.reason", "reason is required: say why the warning needs escalating")
		}
		return maxText("body.reason", b.Reason)
	case OpReviewed:
		if b.Decision != DecisionApprove && b.Decision != DecisionReturn {
			return InvalidField("body.decision", "decision must be approve or return")
		}
		return maxText("body.comment", b.Comment)
	case OpAnswered:
		return requiredText("body.answer", b.Answer, "answer is required: the reply the township and the cadre will read")
	default:
		return InvalidField("type", "unknown op type %q", op.Type)
	}
	return nil
}

// ValidateNew is Validate for an op a client is making now: a return needs a
// comment (the cadre redoes the work from it alone) and an escalation a
// reason (the county acts on it), more than blanks. The SDK and the console
// check it as they make an op. Validate, which the server applies to pushes,
// requires neither the return's comment nor more than an escalation's
// non-empty reason, as before these rules: a phone with an older app may
// still hold such an op, and refusing it would lose a lead's decision or a
// cadre's call for help (PROTOCOL.md, section 6).
func (op *Op) ValidateNew() *Error {
	if err := op.Validate(); err != nil {
		return err
	}
	switch {
	case op.Type == OpEscalated:
		return requiredText("body.reason", op.Body.Reason, "reason is required: say why the warning needs escalating")
	case op.Type == OpReviewed && op.Body.Decision == DecisionReturn:
		return requiredText("body.comment", op.Body.Comment, "comment is required to return a warning: say what must be redone")
	}
	return nil
}

// requiredText checks a reason a person must give: present, more than
// blanks, and at most MaxCommentLen characters.
func requiredText(field, v, missing string) *Error {
	if strings.TrimSpace(v) == "" {
		return InvalidField(field, "%s", missing)
	}
	return maxText(field, v)
}

// maxText checks that a person's text is at most MaxCommentLen characters.
func maxText(field, v string) *Error {
	if utf8.RuneCountInString(v) > MaxCommentLen {
		return InvalidField(field, "%s is longer than %d characters", field[len("body."):], MaxCommentLen)
	}
	return nil
}

func (b *OpBody) validateAttempt() *Error {
	switch {
	case !ValidUUID(b.AttemptID):
		return InvalidField("body.id", "attempt id must be a lowercase UUID")
	case !ValidMethod(b.Method):
		return InvalidField("body.method", "method must be visit, phone, video or other")
	case b.Reached == nil:
		return InvalidField("body.reached", "reached must say whether the person was reached")
	case !ValidOutcome(b.Outcome):
		return InvalidField("body.outcome", "outcome must be dissuaded, already_defrauded, not_target, unreachable or refused")
	case b.LossFen < 0:
		return InvalidField("body.loss_fen", "loss_fen cannot be negative")
	case b.LossFen > MaxLossFen:
		return InvalidField("body.loss_fen", "loss_fen %d is more than the largest loss an attempt may record, %d fen (ten billion yuan); loss_fen is in fen, a hundredth of a yuan", b.LossFen, int64(MaxLossFen))
	case b.LossFen > 0 && b.Outcome != OutcomeAlreadyDefrauded:
		return InvalidField("body.loss_fen", "loss_fen is only recorded with outcome already_defrauded")
	case utf8.RuneCountInString(b.Notes) > MaxNotesLen:
		return InvalidField("body.notes", "notes are longer than %d characters", MaxNotesLen)
	case len(b.Photos) > MaxPhotos:
		return InvalidField("body.photos", "at most %d photos per attempt", MaxPhotos)
	}
	for _, p := range b.Photos {
		if !ValidSHA256(p) {
			return InvalidField("body.photos", "photos must be lowercase hex SHA-256 hashes")
		}
	}
	if b.Location != nil {
		return b.Location.validate()
	}
	return nil
}

// validate checks a location's numbers. The comparisons are written so that
// NaN fails them too: JSON cannot carry NaN or infinities.
func (l *Location) validate() *Error {
	switch {
	case !(l.Lat >= -90 && l.Lat <= 90):
		return InvalidField("body.location", "location lat %v is not a latitude: it must be from -90 to 90 degrees", l.Lat)
	case !(l.Lng >= -180 && l.Lng <= 180):
		return InvalidField("body.location", "location lng %v is not a longitude: it must be from -180 to 180 degrees", l.Lng)
	case !(l.Accuracy >= 0 && l.Accuracy <= MaxLocationAccuracy):
		return InvalidField("body.location", "location accuracy %v is not a radius in meters from 0 to %d", l.Accuracy, MaxLocationAccuracy)
	}
	return nil
}

// validateAt checks an op's device time, saying which bound it broke.
func validateAt(at time.Time) *Error {
	switch {
	case at.Before(minTime):
		return InvalidField("at", "at %s is before 2000-01-01: the device's clock is wrong; at is the device time of the action", at.UTC().Format(time.RFC3339))
	case at.After(maxTime):
		return InvalidField("at", "at is after the year 9999: the device's clock is wrong; at is the device time of the action")
	}
	return nil
}

// Validate checks a feed row. Times are checked against now: a warning from
// the future or before 2000 is refused. It returns the first of Problems.
func (f *FeedWarning) Validate(now time.Time) *Error {
	if p := f.Problems(now); len(p) > 0 {
		return p[0]
	}
	return nil
}

// Feed problem reasons, in Details["reason"] of each of Problems' errors
// beside Details["field"]: what a reader that speaks another language
// (the console) words for a person.
const (
	ReasonRequired       = "required"         // the field is empty
	ReasonTooLong        = "too_long"         // longer than the field may be
	ReasonInvalid        = "invalid"          // not a value the field takes
	ReasonTooEarly       = "too_early"        // a time before 2000-01-01
	ReasonFuture         = "future"           // a time after the server's now
	ReasonBeforeWarnedAt = "before_warned_at" // a deadline before warned_at
	ReasonTooLate        = "too_late"         // a time after the year 9999
)

// Problems lists every problem of a feed row, one invalid_request per
// field at fault, each naming its field and reason in Details, in the
// order of the row's fields; none when the row is valid. A person fixing
// a file fixes all of a row at once, not one problem per upload.
func (f *FeedWarning) Problems(now time.Time) []*Error {
	var out []*Error
	add := func(field, reason, format string, args ...any) {
		out = append(out, InvalidField(field, format, args...).With("reason", reason))
	}
	switch {
	case f.ExternalID == "":
		add("external_id", ReasonRequired, "external_id is required")
	case len(f.ExternalID) > 128:
		add("external_id", ReasonTooLong, "external_id is longer than 128 bytes")
	}
	switch {
	case f.Name == "":
		add("name", ReasonRequired, "name is required")
	case utf8.RuneCountInString(f.Name) > 100:
		add("name", ReasonTooLong, "name is longer than 100 characters")
	}
	switch {
	case f.Phone == "" && f.Address == "":
		add("phone", ReasonRequired, "a phone or an address is required to reach the person")
	case len(f.Phone) > 32:
		add("phone", ReasonTooLong, "phone is longer than 32 characters")
	}
	if len(f.IDTail) > 8 {
		add("id_tail", ReasonTooLong, "id_tail is at most the last 8 characters of the ID number")
	}
	if utf8.RuneCountInString(f.Address) > 300 {
		add("address", ReasonTooLong, "address is longer than 300 characters")
	}
	if UnitLevel(f.Unit) == "" {
		add("unit", ReasonInvalid, "unit must be a unit code of 4, 6, 9 or 12 digits")
	}
	switch {
	case f.FraudType == "":
		add("fraud_type", ReasonRequired, "fraud_type is required")
	case utf8.RuneCountInString(f.FraudType) > 50:
		add("fraud_type", ReasonTooLong, "fraud_type is longer than 50 characters")
	}
	if !ValidRisk(f.Risk) {
		add("risk", ReasonInvalid, "risk must be high, medium or low")
	}
	switch {
	case f.WarnedAt.IsZero():
		add("warned_at", ReasonRequired, "warned_at is required: the time the warning was issued")
	case f.WarnedAt.Before(minTime):
		add("warned_at", ReasonTooEarly, "warned_at %s is before 2000-01-01; it must be the time the warning was issued", f.WarnedAt.UTC().Format(time.RFC3339))
	case f.WarnedAt.After(now.Add(FutureSkew)):
		add("warned_at", ReasonFuture, "warned_at %s is in the future (the server's time is %s); it must be a time in the past",
			f.WarnedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	switch {
	case f.Deadline != nil && !f.WarnedAt.IsZero() && f.Deadline.Before(f.WarnedAt):
		add("deadline", ReasonBeforeWarnedAt, "deadline cannot be before warned_at")
	case f.Deadline != nil && f.Deadline.After(maxTime):
		add("deadline", ReasonTooLate, "deadline must be before the year 10000")
	}
	return out
}
