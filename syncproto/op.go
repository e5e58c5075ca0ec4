package syncproto

import (
	"math"
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
	if op.At.Before(minTime) || op.At.After(maxTime) {
		return InvalidField("at", "at must be the device time of the action, after 2000-01-01")
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
		if b.Reason == "" || utf8.RuneCountInString(b.Reason) > MaxCommentLen {
			return InvalidField("body.reason", "reason must say why, in at most %d characters", MaxCommentLen)
		}
	case OpReviewed:
		if b.Decision != DecisionApprove && b.Decision != DecisionReturn {
			return InvalidField("body.decision", "decision must be approve or return")
		}
		if utf8.RuneCountInString(b.Comment) > MaxCommentLen {
			return InvalidField("body.comment", "comment is longer than %d characters", MaxCommentLen)
		}
	default:
		return InvalidField("type", "unknown op type %q", op.Type)
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
	// Written so NaN fails too: JSON cannot carry NaN or infinities.
	if l := b.Location; l != nil && !(l.Lat >= -90 && l.Lat <= 90 && l.Lng >= -180 && l.Lng <= 180 &&
		!math.IsNaN(l.Accuracy) && !math.IsInf(l.Accuracy, 0)) {
		return InvalidField("body.location", "location must be a latitude and longitude in degrees")
	}
	return nil
}

// Validate checks a feed row. Times are checked against now: a warning from
// the future or before 2000 is refused.
func (f *FeedWarning) Validate(now time.Time) *Error {
	switch {
	case f.ExternalID == "" || len(f.ExternalID) > 128:
		return InvalidField("external_id", "external_id is required, at most 128 bytes")
	case f.Name == "" || utf8.RuneCountInString(f.Name) > 100:
		return InvalidField("name", "name is required, at most 100 characters")
	case f.Phone == "" && f.Address == "":
		return InvalidField("phone", "a phone or an address is required to reach the person")
	case len(f.Phone) > 32:
		return InvalidField("phone", "phone is longer than 32 characters")
	case len(f.IDTail) > 8:
		return InvalidField("id_tail", "id_tail is at most the last 8 characters of the ID number")
	case utf8.RuneCountInString(f.Address) > 300:
		return InvalidField("address", "address is longer than 300 characters")
	case UnitLevel(f.Unit) == "":
		return InvalidField("unit", "unit must be a unit code of 4, 6, 9 or 12 digits")
	case f.FraudType == "" || utf8.RuneCountInString(f.FraudType) > 50:
		return InvalidField("fraud_type", "fraud_type is required, at most 50 characters")
	case !ValidRisk(f.Risk):
		return InvalidField("risk", "risk must be high, medium or low")
	case f.WarnedAt.Before(minTime) || f.WarnedAt.After(now.Add(FutureSkew)):
		return InvalidField("warned_at", "warned_at must be a time in the past")
	case f.Deadline != nil && f.Deadline.Before(f.WarnedAt):
		return InvalidField("deadline", "deadline cannot be before warned_at")
	case f.Deadline != nil && f.Deadline.After(maxTime):
		return InvalidField("deadline", "deadline must be before the year 10000")
	}
	return nil
}
