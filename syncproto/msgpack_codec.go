package syncproto

import (
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The types every push, pull and store write carries are encoded by hand:
// the reflection path of the MessagePack library cost a quarter of the
// server's CPU. The encoding is the one reflection gives (a map keyed by
// the JSON field names, omitempty honoured), so any MessagePack client
// reads it; the decoders take keys in any order and skip unknown ones.

// mapWriter writes one map's entries, keeping the first error.
type mapWriter struct {
	e   *msgpack.Encoder
	err error
}

func newMapWriter(e *msgpack.Encoder, n int) *mapWriter {
	return &mapWriter{e: e, err: e.EncodeMapLen(n)}
}

func (m *mapWriter) key(k string) bool {
	if m.err == nil {
		m.err = m.e.EncodeString(k)
	}
	return m.err == nil
}

func (m *mapWriter) str(k, v string) {
	if m.key(k) {
		m.err = m.e.EncodeString(v)
	}
}

func (m *mapWriter) uint(k string, v uint64) {
	if m.key(k) {
		m.err = m.e.EncodeUint(v)
	}
}

func (m *mapWriter) int(k string, v int64) {
	if m.key(k) {
		m.err = m.e.EncodeInt(v)
	}
}

func (m *mapWriter) bool(k string, v bool) {
	if m.key(k) {
		m.err = m.e.EncodeBool(v)
	}
}

func (m *mapWriter) time(k string, v time.Time) {
	if m.key(k) {
		m.err = m.e.EncodeTime(v)
	}
}

func (m *mapWriter) timePtr(k string, v *time.Time) {
	if v != nil {
		m.time(k, *v)
	}
}

func (m *mapWriter) float(k string, v float64) {
	if m.key(k) {
		m.err = m.e.EncodeFloat64(v)
	}
}

func (m *mapWriter) strings(k string, v []string) {
	if !m.key(k) {
		return
	}
	if v == nil {
		m.err = m.e.EncodeNil()
		return
	}
	if m.err = m.e.EncodeArrayLen(len(v)); m.err != nil {
		return
	}
	for _, s := range v {
		if m.err = m.e.EncodeString(s); m.err != nil {
			return
		}
	}
}

func (m *mapWriter) value(k string, v msgpack.CustomEncoder) {
	if m.key(k) {
		m.err = v.EncodeMsgpack(m.e)
	}
}

func writeList[T any, P interface {
	*T
	msgpack.CustomEncoder
}](m *mapWriter, k string, list []T) {
	if !m.key(k) {
		return
	}
	if list == nil {
		m.err = m.e.EncodeNil()
		return
	}
	if m.err = m.e.EncodeArrayLen(len(list)); m.err != nil {
		return
	}
	for i := range list {
		if m.err = P(&list[i]).EncodeMsgpack(m.e); m.err != nil {
			return
		}
	}
}

func count(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// readMap calls field for each key of a map; a nil map is no fields.
func readMap(r msgReader, field func(key string) error) error {
	return readFields(r, r.mapLen, field)
}

// readFields calls field for each key of the map whose header length
// reads.
func readFields(r msgReader, length func() (int, error), field func(key string) error) error {
	n, err := length()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		k, err := r.key()
		if err != nil {
			return err
		}
		if err := field(k); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	r.done(n)
	return nil
}

func readTimePtr(r msgReader) (*time.Time, error) {
	if null, err := r.isNil(); null || err != nil {
		return nil, err
	}
	t, err := r.time()
	return &t, err
}

func readStrings(r msgReader) ([]string, error) {
	n, err := r.arrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = r.str(); err != nil {
			return nil, err
		}
	}
	r.done(n)
	return out, nil
}

func readList[T any, P interface {
	*T
	fieldsDecoder
}](r msgReader) ([]T, error) {
	return readListMax[T, P](r, "", 0)
}

// readListMax is readList refusing a list of more than max items (when
// max > 0) before it allocates it: a payload_too_large naming field.
func readListMax[T any, P interface {
	*T
	fieldsDecoder
}](r msgReader, field string, max int) ([]T, error) {
	n, err := r.arrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if max > 0 && n > max {
		return nil, tooMany(field, max)
	}
	out := make([]T, n)
	for i := range out {
		if err := P(&out[i]).decodeFields(r); err != nil {
			return nil, err
		}
	}
	r.done(n)
	return out, nil
}

// EncodeMsgpack writes the warning as a map keyed by its JSON names.
func (w *Warning) EncodeMsgpack(e *msgpack.Encoder) error {
	// A summary (Summarize) leaves out what is empty in it: escalated
	// when false and its attempts' missing fields. A full warning keeps
	// every key, for clients that expect them.
	m := newMapWriter(e, 17+count(w.DispatchedAt != nil, w.AssignedAt != nil, w.Assignee != "", w.Outcome != "",
		!w.Summary || w.Escalated, w.FirstContactAt != nil, w.ResolvedAt != nil, w.ClosedAt != nil, w.ArchivedAt != nil,
		w.RedactedAt != nil, len(w.Escalations) > 0, len(w.PastAssignees) > 0, len(w.MissingPhotos) > 0, w.Summary))
	m.str("id", w.ID)
	m.str("external_id", w.ExternalID)
	m.str("name", w.Name)
	m.str("phone", w.Phone)
	m.str("id_tail", w.IDTail)
	m.str("address", w.Address)
	m.str("unit", w.Unit)
	m.str("fraud_type", w.FraudType)
	m.str("risk", w.Risk)
	m.time("warned_at", w.WarnedAt)
	m.time("received_at", w.ReceivedAt)
	m.time("deadline", w.Deadline)
	m.timePtr("dispatched_at", w.DispatchedAt)
	m.timePtr("assigned_at", w.AssignedAt)
	m.str("status", w.Status)
	if w.Assignee != "" {
		m.str("assignee", w.Assignee)
	}
	if w.Outcome != "" {
		m.str("outcome", w.Outcome)
	}
	if !w.Summary || w.Escalated {
		m.bool("escalated", w.Escalated)
	}
	m.timePtr("first_contact_at", w.FirstContactAt)
	m.timePtr("resolved_at", w.ResolvedAt)
	m.timePtr("closed_at", w.ClosedAt)
	m.timePtr("archived_at", w.ArchivedAt)
	m.timePtr("redacted_at", w.RedactedAt)
	if w.Summary {
		writeList(m, "attempts", summaryAttempts(w.Attempts))
	} else {
		writeList(m, "attempts", w.Attempts)
	}
	writeList(m, "reviews", w.Reviews)
	writeList(m, "flags", w.Flags)
	if len(w.Escalations) > 0 {
		writeList(m, "escalations", w.Escalations)
	}
	if len(w.PastAssignees) > 0 {
		m.strings("past_assignees", w.PastAssignees)
	}
	if len(w.MissingPhotos) > 0 {
		m.strings("missing_photos", w.MissingPhotos)
	}
	m.uint("version", w.Version)
	if w.Summary {
		m.bool("summary", true)
	}
	return m.err
}

// summaryAttempt is an attempt of a summary warning: its fields left
// empty by Summarize are not written.
type summaryAttempt Attempt

func summaryAttempts(as []Attempt) []summaryAttempt {
	if as == nil {
		return nil
	}
	out := make([]summaryAttempt, len(as))
	for i := range as {
		out[i] = summaryAttempt(as[i])
	}
	return out
}

// EncodeMsgpack writes the attempt's non-empty fields, keyed by their
// JSON names; Attempt.DecodeMsgpack reads it back.
func (a *summaryAttempt) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, count(a.ID != "", a.By != "", a.DeviceID != "", a.Method != "", a.Reached, a.Outcome != "",
		a.LossFen != 0, a.Notes != "", !a.At.IsZero(), !a.ReceivedAt.IsZero(), a.Location != nil, len(a.Photos) > 0,
		a.Version != 0))
	for _, f := range []struct{ k, v string }{{"id", a.ID}, {"by", a.By}, {"device_id", a.DeviceID},
		{"method", a.Method}, {"outcome", a.Outcome}, {"notes", a.Notes}} {
		if f.v != "" {
			m.str(f.k, f.v)
		}
	}
	if a.Reached {
		m.bool("reached", true)
	}
	if a.LossFen != 0 {
		m.int("loss_fen", a.LossFen)
	}
	if !a.At.IsZero() {
		m.time("at", a.At)
	}
	if !a.ReceivedAt.IsZero() {
		m.time("received_at", a.ReceivedAt)
	}
	writeAttemptOptionals(m, (*Attempt)(a))
	return m.err
}

// writeAttemptOptionals writes the attempt fields that are left out when
// empty in every encoding.
func writeAttemptOptionals(m *mapWriter, a *Attempt) {
	if a.Location != nil {
		m.value("location", a.Location)
	}
	if len(a.Photos) > 0 {
		m.strings("photos", a.Photos)
	}
	if a.Version != 0 {
		m.uint("version", a.Version)
	}
}

// DecodeMsgpack reads what EncodeMsgpack writes, in any key order.
func (w *Warning) DecodeMsgpack(d *msgpack.Decoder) error { return w.decodeFields(libReader{d}) }

// decodeFields reads the warning's fields, in any key order.
func (w *Warning) decodeFields(r msgReader) error {
	*w = Warning{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "id":
			w.ID, err = r.str()
		case "external_id":
			w.ExternalID, err = r.str()
		case "name":
			w.Name, err = r.str()
		case "phone":
			w.Phone, err = r.str()
		case "id_tail":
			w.IDTail, err = r.str()
		case "address":
			w.Address, err = r.str()
		case "unit":
			w.Unit, err = r.str()
		case "fraud_type":
			w.FraudType, err = r.str()
		case "risk":
			w.Risk, err = r.str()
		case "warned_at":
			w.WarnedAt, err = r.time()
		case "received_at":
			w.ReceivedAt, err = r.time()
		case "deadline":
			w.Deadline, err = r.time()
		case "dispatched_at":
			w.DispatchedAt, err = readTimePtr(r)
		case "assigned_at":
			w.AssignedAt, err = readTimePtr(r)
		case "status":
			w.Status, err = r.str()
		case "assignee":
			w.Assignee, err = r.str()
		case "outcome":
			w.Outcome, err = r.str()
		case "escalated":
			w.Escalated, err = r.bool()
		case "first_contact_at":
			w.FirstContactAt, err = readTimePtr(r)
		case "resolved_at":
			w.ResolvedAt, err = readTimePtr(r)
		case "closed_at":
			w.ClosedAt, err = readTimePtr(r)
		case "archived_at":
			w.ArchivedAt, err = readTimePtr(r)
		case "redacted_at":
			w.RedactedAt, err = readTimePtr(r)
		case "attempts":
			w.Attempts, err = readList[Attempt](r)
		case "reviews":
			w.Reviews, err = readList[Review](r)
		case "flags":
			w.Flags, err = readList[Flag](r)
		case "escalations":
			w.Escalations, err = readList[Escalation](r)
		case "past_assignees":
			w.PastAssignees, err = readStrings(r)
		case "missing_photos":
			w.MissingPhotos, err = readStrings(r)
		case "version":
			w.Version, err = r.uint()
		case "summary":
			w.Summary, err = r.bool()
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the attempt as a map keyed by its JSON names.
func (a *Attempt) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 10+count(a.Location != nil, len(a.Photos) > 0, a.Version != 0))
	m.str("id", a.ID)
	m.str("by", a.By)
	m.str("device_id", a.DeviceID)
	m.str("method", a.Method)
	m.bool("reached", a.Reached)
	m.str("outcome", a.Outcome)
	m.int("loss_fen", a.LossFen)
	m.str("notes", a.Notes)
	m.time("at", a.At)
	m.time("received_at", a.ReceivedAt)
	writeAttemptOptionals(m, a)
	return m.err
}

// DecodeMsgpack reads what EncodeMsgpack writes, in any key order.
func (a *Attempt) DecodeMsgpack(d *msgpack.Decoder) error { return a.decodeFields(libReader{d}) }

// decodeFields reads the attempt's fields, in any key order.
func (a *Attempt) decodeFields(r msgReader) error {
	*a = Attempt{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "id":
			a.ID, err = r.str()
		case "by":
			a.By, err = r.str()
		case "device_id":
			a.DeviceID, err = r.str()
		case "method":
			a.Method, err = r.str()
		case "reached":
			a.Reached, err = r.bool()
		case "outcome":
			a.Outcome, err = r.str()
		case "loss_fen":
			a.LossFen, err = r.int()
		case "notes":
			a.Notes, err = r.str()
		case "at":
			a.At, err = r.time()
		case "received_at":
			a.ReceivedAt, err = r.time()
		case "location":
			a.Location, err = readLocation(r)
		case "photos":
			a.Photos, err = readStrings(r)
		case "version":
			a.Version, err = r.uint()
		default:
			err = r.skip()
		}
		return err
	})
}

func readLocation(r msgReader) (*Location, error) {
	if null, err := r.isNil(); null || err != nil {
		return nil, err
	}
	l := &Location{}
	return l, l.decodeFields(r)
}

// EncodeMsgpack writes the location as a map keyed by its JSON names.
func (l *Location) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 2+count(l.Accuracy != 0))
	m.float("lat", l.Lat)
	m.float("lng", l.Lng)
	if l.Accuracy != 0 {
		m.float("accuracy", l.Accuracy)
	}
	return m.err
}

// DecodeMsgpack reads a location.
func (l *Location) DecodeMsgpack(d *msgpack.Decoder) error { return l.decodeFields(libReader{d}) }

// decodeFields reads the location's fields, in any key order.
func (l *Location) decodeFields(r msgReader) error {
	*l = Location{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "lat":
			l.Lat, err = r.float()
		case "lng":
			l.Lng, err = r.float()
		case "accuracy":
			l.Accuracy, err = r.float()
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the review as a map keyed by its JSON names.
func (r *Review) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 4+count(r.ByName != ""))
	m.str("by", r.By)
	m.str("decision", r.Decision)
	m.str("comment", r.Comment)
	m.time("at", r.At)
	if r.ByName != "" {
		m.str("by_name", r.ByName)
	}
	return m.err
}

// DecodeMsgpack reads a review.
func (r *Review) DecodeMsgpack(d *msgpack.Decoder) error { return r.decodeFields(libReader{d}) }

// decodeFields reads the review's fields, in any key order.
func (rv *Review) decodeFields(r msgReader) error {
	*rv = Review{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "by":
			rv.By, err = r.str()
		case "decision":
			rv.Decision, err = r.str()
		case "comment":
			rv.Comment, err = r.str()
		case "at":
			rv.At, err = r.time()
		case "by_name":
			rv.ByName, err = r.str()
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the escalation as a map keyed by its JSON names.
func (x *Escalation) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 4+count(x.ByName != "", x.Answer != "", x.AnsweredBy != "", x.AnsweredByName != "", x.AnsweredAt != nil))
	m.str("by", x.By)
	if x.ByName != "" {
		m.str("by_name", x.ByName)
	}
	m.str("reason", x.Reason)
	m.time("at", x.At)
	m.str("op_id", x.OpID)
	for _, f := range []struct{ k, v string }{{"answer", x.Answer}, {"answered_by", x.AnsweredBy}, {"answered_by_name", x.AnsweredByName}} {
		if f.v != "" {
			m.str(f.k, f.v)
		}
	}
	m.timePtr("answered_at", x.AnsweredAt)
	return m.err
}

// DecodeMsgpack reads an escalation.
func (x *Escalation) DecodeMsgpack(d *msgpack.Decoder) error { return x.decodeFields(libReader{d}) }

// decodeFields reads the escalation's fields, in any key order.
func (x *Escalation) decodeFields(r msgReader) error {
	*x = Escalation{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "by":
			x.By, err = r.str()
		case "by_name":
			x.ByName, err = r.str()
		case "reason":
			x.Reason, err = r.str()
		case "at":
			x.At, err = r.time()
		case "op_id":
			x.OpID, err = r.str()
		case "answer":
			x.Answer, err = r.str()
		case "answered_by":
			x.AnsweredBy, err = r.str()
		case "answered_by_name":
			x.AnsweredByName, err = r.str()
		case "answered_at":
			x.AnsweredAt, err = readTimePtr(r)
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the flag as a map keyed by its JSON names.
func (f *Flag) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 4)
	m.str("code", f.Code)
	m.str("op_id", f.OpID)
	m.str("detail", f.Detail)
	m.bool("resolved", f.Resolved)
	return m.err
}

// DecodeMsgpack reads a flag.
func (f *Flag) DecodeMsgpack(d *msgpack.Decoder) error { return f.decodeFields(libReader{d}) }

// decodeFields reads the flag's fields, in any key order.
func (f *Flag) decodeFields(r msgReader) error {
	*f = Flag{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "code":
			f.Code, err = r.str()
		case "op_id":
			f.OpID, err = r.str()
		case "detail":
			f.Detail, err = r.str()
		case "resolved":
			f.Resolved, err = r.bool()
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the op as a map keyed by its JSON names.
func (op *Op) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 7)
	m.str("id", op.ID)
	m.uint("client_seq", op.ClientSeq)
	m.str("type", op.Type)
	m.str("warning_id", op.WarningID)
	m.uint("base_version", op.BaseVersion)
	m.time("at", op.At)
	m.value("body", &op.Body)
	return m.err
}

// DecodeMsgpack reads an op.
func (op *Op) DecodeMsgpack(d *msgpack.Decoder) error { return op.decodeFields(libReader{d}) }

// decodeFields reads the op's fields, in any key order.
func (op *Op) decodeFields(r msgReader) error {
	*op = Op{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "id":
			op.ID, err = r.str()
		case "client_seq":
			op.ClientSeq, err = r.uint()
		case "type":
			op.Type, err = r.str()
		case "warning_id":
			op.WarningID, err = r.str()
		case "base_version":
			op.BaseVersion, err = r.uint()
		case "at":
			op.At, err = r.time()
		case "body":
			err = op.Body.decodeFields(r)
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the body's fields that are set.
func (b *OpBody) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, count(b.Unit != "", b.Assignee != "", b.AttemptID != "", b.Method != "", b.Reached != nil,
		b.Outcome != "", b.LossFen != 0, b.Notes != "", b.Location != nil, len(b.Photos) > 0, b.Reason != "",
		b.Decision != "", b.Comment != "", b.Answer != ""))
	if b.Unit != "" {
		m.str("unit", b.Unit)
	}
	if b.Assignee != "" {
		m.str("assignee", b.Assignee)
	}
	if b.AttemptID != "" {
		m.str("id", b.AttemptID)
	}
	if b.Method != "" {
		m.str("method", b.Method)
	}
	if b.Reached != nil {
		m.bool("reached", *b.Reached)
	}
	if b.Outcome != "" {
		m.str("outcome", b.Outcome)
	}
	if b.LossFen != 0 {
		m.int("loss_fen", b.LossFen)
	}
	if b.Notes != "" {
		m.str("notes", b.Notes)
	}
	if b.Location != nil {
		m.value("location", b.Location)
	}
	if len(b.Photos) > 0 {
		m.strings("photos", b.Photos)
	}
	if b.Reason != "" {
		m.str("reason", b.Reason)
	}
	if b.Decision != "" {
		m.str("decision", b.Decision)
	}
	if b.Comment != "" {
		m.str("comment", b.Comment)
	}
	if b.Answer != "" {
		m.str("answer", b.Answer)
	}
	return m.err
}

// DecodeMsgpack reads a body.
func (b *OpBody) DecodeMsgpack(d *msgpack.Decoder) error { return b.decodeFields(libReader{d}) }

// decodeFields reads the op body's fields, in any key order.
func (b *OpBody) decodeFields(r msgReader) error {
	*b = OpBody{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "unit":
			b.Unit, err = r.str()
		case "assignee":
			b.Assignee, err = r.str()
		case "id":
			b.AttemptID, err = r.str()
		case "method":
			b.Method, err = r.str()
		case "reached":
			var null bool
			if null, err = r.isNil(); !null && err == nil {
				var v bool
				v, err = r.bool()
				b.Reached = &v
			}
		case "outcome":
			b.Outcome, err = r.str()
		case "loss_fen":
			b.LossFen, err = r.int()
		case "notes":
			b.Notes, err = r.str()
		case "location":
			b.Location, err = readLocation(r)
		case "photos":
			b.Photos, err = readStrings(r)
		case "reason":
			b.Reason, err = r.str()
		case "decision":
			b.Decision, err = r.str()
		case "comment":
			b.Comment, err = r.str()
		case "answer":
			b.Answer, err = r.str()
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the result as a map keyed by its JSON names.
func (r *Result) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 3+count(r.Code != "", r.Message != "", r.Version != 0, len(r.Flags) > 0))
	m.str("op_id", r.OpID)
	m.uint("client_seq", r.ClientSeq)
	m.str("status", r.Status)
	if r.Code != "" {
		m.str("code", r.Code)
	}
	if r.Message != "" {
		m.str("message", r.Message)
	}
	if r.Version != 0 {
		m.uint("version", r.Version)
	}
	if len(r.Flags) > 0 {
		writeList(m, "flags", r.Flags)
	}
	return m.err
}

// DecodeMsgpack reads a result.
func (r *Result) DecodeMsgpack(d *msgpack.Decoder) error { return r.decodeFields(libReader{d}) }

// decodeFields reads the result's fields, in any key order.
func (res *Result) decodeFields(r msgReader) error {
	*res = Result{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "op_id":
			res.OpID, err = r.str()
		case "client_seq":
			res.ClientSeq, err = r.uint()
		case "status":
			res.Status, err = r.str()
		case "code":
			res.Code, err = r.str()
		case "message":
			res.Message, err = r.str()
		case "version":
			res.Version, err = r.uint()
		case "flags":
			res.Flags, err = readList[Flag](r)
		default:
			err = r.skip()
		}
		return err
	})
}

// EncodeMsgpack writes the list item as a map keyed by its JSON names.
func (it *WarningItem) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newMapWriter(e, 16+count(it.Assignee != "", it.Outcome != ""))
	m.str("id", it.ID)
	m.str("external_id", it.ExternalID)
	m.str("name", it.Name)
	m.str("phone", it.Phone)
	m.str("address", it.Address)
	m.str("unit", it.Unit)
	m.str("fraud_type", it.FraudType)
	m.str("risk", it.Risk)
	m.str("status", it.Status)
	if it.Assignee != "" {
		m.str("assignee", it.Assignee)
	}
	if it.Outcome != "" {
		m.str("outcome", it.Outcome)
	}
	m.bool("escalated", it.Escalated)
	m.int("open_flags", int64(it.OpenFlags))
	m.bool("overdue", it.Overdue)
	m.time("warned_at", it.WarnedAt)
	m.time("received_at", it.ReceivedAt)
	m.time("deadline", it.Deadline)
	m.uint("version", it.Version)
	return m.err
}

// DecodeMsgpack reads a list item.
func (it *WarningItem) DecodeMsgpack(d *msgpack.Decoder) error { return it.decodeFields(libReader{d}) }

// decodeFields reads the list item's fields, in any key order.
func (it *WarningItem) decodeFields(r msgReader) error {
	*it = WarningItem{}
	return readMap(r, func(k string) (err error) {
		switch k {
		case "id":
			it.ID, err = r.str()
		case "external_id":
			it.ExternalID, err = r.str()
		case "name":
			it.Name, err = r.str()
		case "phone":
			it.Phone, err = r.str()
		case "address":
			it.Address, err = r.str()
		case "unit":
			it.Unit, err = r.str()
		case "fraud_type":
			it.FraudType, err = r.str()
		case "risk":
			it.Risk, err = r.str()
		case "status":
			it.Status, err = r.str()
		case "assignee":
			it.Assignee, err = r.str()
		case "outcome":
			it.Outcome, err = r.str()
		case "escalated":
			it.Escalated, err = r.bool()
		case "open_flags":
			it.OpenFlags, err = readInt(r)
		case "overdue":
			it.Overdue, err = r.bool()
		case "warned_at":
			it.WarnedAt, err = r.time()
		case "received_at":
			it.ReceivedAt, err = r.time()
		case "deadline":
			it.Deadline, err = r.time()
		case "version":
			it.Version, err = r.uint()
		default:
			err = r.skip()
		}
		return err
	})
}
