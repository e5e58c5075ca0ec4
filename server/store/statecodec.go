package store

import (
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The compact form of warning states (schema 14 on). The writer puts a
// warning's state for every op on it (putState), and every list, the
// statistics and the tallies read it; in the older form, the MessagePack
// map of the wire, its twenty-odd keys, its ids as 36 characters each and
// the reviewers' and escalations' ids took more bytes than what the
// warning says. The compact form is the log's (logcodec.go): compactTag,
// then one MessagePack array of the fields in a fixed order, trailing
// empty fields left out, ids that are canonical UUIDs as 16 bytes, and
// from schema 18 the fraud type, risk, status, outcome and a review's
// decision as words (words.go) when they are one:
//
//	state      [id, external_id, name, phone, id_tail, address, unit, fraud_type, risk,
//	            warned_at, received_at, deadline, status, version, reviews, flags,
//	            escalated, dispatched_at, assigned_at, assignee, first_contact_at, outcome,
//	            resolved_at, closed_at, past_assignees, escalations, archived_at, redacted_at]
//	review     [by, decision, comment, at, by_name]
//	flag       [code, op_id, detail, resolved]
//	escalation [by, by_name, reason, at, op_id, answer, answered_by, answered_by_name, answered_at]
//
// The fields come in the order a warning's life fills them, so that a
// young warning's empty ones are the trailing fields left out. Name, phone
// and address stay plain strings in the bytes: a list with a text filter
// looks for the text in a state's bytes before it decodes them
// (listItem). An optional time is nil when absent and a time when present,
// a zero one included; reviews and flags are nil when nil and an array,
// perhaps empty, otherwise, as in the older form; escalations and past
// assignees, which the older form leaves out when empty, are nil when
// empty. A state holds no attempts (records of their own, attempts.go),
// no missing photos and no summary mark (both set only on copies a pull
// or a detail sends): the compact form has no field for them. States of
// the older form stay as they are and are read beside the compact ones.

// Field counts of the arrays: a reader refuses an array longer than it
// knows.
const (
	stateFields      = 28
	reviewFields     = 5
	escalationFields = 9
)

// encodeState is w's state in the compact form: every field but its
// attempts, its missing photos and its summary mark.
func encodeState(w *syncproto.Warning) []byte {
	return encodeCompact(func(p *packer) { p.state(w) })
}

// DecodeState reads a warning's state of bucket warnings, in either form,
// into w. A compact state has no attempts (Attempts nil); one of the older
// form has those it was written with.
func DecodeState(data []byte, w *syncproto.Warning) error {
	return decodeEither(data, w, "warning state", (*unpacker).state)
}

func (p *packer) state(w *syncproto.Warning) {
	a := p.wideArray()
	a.id(w.ID)
	a.str(w.ExternalID)
	a.str(w.Name)
	a.str(w.Phone)
	a.str(w.IDTail)
	a.str(w.Address)
	a.str(w.Unit)
	a.word(w.FraudType)
	a.word(w.Risk)
	a.time(w.WarnedAt)
	a.time(w.ReceivedAt)
	a.time(w.Deadline)
	a.word(w.Status)
	a.uint(w.Version)
	if a.present(w.Reviews != nil) {
		p.arrayLen(len(w.Reviews))
		for i := range w.Reviews {
			p.review(&w.Reviews[i])
		}
	}
	if a.present(w.Flags != nil) {
		p.arrayLen(len(w.Flags))
		for i := range w.Flags {
			p.flag(&w.Flags[i])
		}
	}
	a.bool(w.Escalated)
	p.optTime(a, w.DispatchedAt)
	p.optTime(a, w.AssignedAt)
	a.id(w.Assignee)
	p.optTime(a, w.FirstContactAt)
	a.word(w.Outcome)
	p.optTime(a, w.ResolvedAt)
	p.optTime(a, w.ClosedAt)
	if a.present(len(w.PastAssignees) > 0) {
		p.arrayLen(len(w.PastAssignees))
		for _, id := range w.PastAssignees {
			p.id(id)
		}
	}
	if a.present(len(w.Escalations) > 0) {
		p.arrayLen(len(w.Escalations))
		for i := range w.Escalations {
			p.escalation(&w.Escalations[i])
		}
	}
	p.optTime(a, w.ArchivedAt)
	p.optTime(a, w.RedactedAt)
	a.close()
}

// optTime writes an optional time as a field of a: nil when absent.
func (p *packer) optTime(a *fields, t *time.Time) {
	if a.present(t != nil) {
		p.time(*t)
	}
}

func (p *packer) review(r *syncproto.Review) {
	a := p.array()
	a.id(r.By)
	a.word(r.Decision)
	a.str(r.Comment)
	a.time(r.At)
	a.str(r.ByName)
	a.close()
}

func (p *packer) escalation(e *syncproto.Escalation) {
	a := p.array()
	a.id(e.By)
	a.str(e.ByName)
	a.str(e.Reason)
	a.time(e.At)
	a.id(e.OpID)
	a.str(e.Answer)
	a.id(e.AnsweredBy)
	a.str(e.AnsweredByName)
	p.optTime(a, e.AnsweredAt)
	a.close()
}

func (u *unpacker) state(w *syncproto.Warning) {
	l := u.list(stateFields)
	w.ID = l.id()
	w.ExternalID = l.str()
	w.Name = l.str()
	w.Phone = l.str()
	w.IDTail = l.str()
	w.Address = l.str()
	w.Unit = l.str()
	w.FraudType = l.word()
	w.Risk = l.word()
	w.WarnedAt = l.time()
	w.ReceivedAt = l.time()
	w.Deadline = l.time()
	w.Status = l.word()
	w.Version = l.uint()
	if l.next() {
		w.Reviews = make([]syncproto.Review, u.arrayLen())
		for i := range w.Reviews {
			u.review(&w.Reviews[i])
		}
	}
	if l.next() {
		w.Flags = make([]syncproto.Flag, u.arrayLen())
		for i := range w.Flags {
			w.Flags[i] = u.flag()
		}
	}
	w.Escalated = l.bool()
	w.DispatchedAt = l.optTime()
	w.AssignedAt = l.optTime()
	w.Assignee = l.id()
	w.FirstContactAt = l.optTime()
	w.Outcome = l.word()
	w.ResolvedAt = l.optTime()
	w.ClosedAt = l.optTime()
	if l.next() {
		if n := u.arrayLen(); n > 0 {
			w.PastAssignees = make([]string, n)
			for i := range w.PastAssignees {
				w.PastAssignees[i] = u.id()
			}
		}
	}
	if l.next() {
		if n := u.arrayLen(); n > 0 {
			w.Escalations = make([]syncproto.Escalation, n)
			for i := range w.Escalations {
				u.escalation(&w.Escalations[i])
			}
		}
	}
	w.ArchivedAt = l.optTime()
	w.RedactedAt = l.optTime()
}

// optTime reads what packer.optTime wrote: nil when absent.
func (l *fieldList) optTime() *time.Time {
	if !l.next() {
		return nil
	}
	t := l.u.time()
	return &t
}

func (u *unpacker) review(r *syncproto.Review) {
	l := u.list(reviewFields)
	r.By = l.id()
	r.Decision = l.word()
	r.Comment = l.str()
	r.At = l.time()
	r.ByName = l.str()
}

func (u *unpacker) escalation(e *syncproto.Escalation) {
	l := u.list(escalationFields)
	e.By = l.id()
	e.ByName = l.str()
	e.Reason = l.str()
	e.At = l.time()
	e.OpID = l.id()
	e.Answer = l.str()
	e.AnsweredBy = l.id()
	e.AnsweredByName = l.str()
	e.AnsweredAt = l.optTime()
}
