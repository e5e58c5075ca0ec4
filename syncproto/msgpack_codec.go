package syncproto

import (
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
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
func readMap(d *msgpack.Decoder, field func(key string) error) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		k, err := d.DecodeString()
		if err != nil {
			return err
		}
		if err := field(k); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func readUint(d *msgpack.Decoder) (uint64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	if c >= msgpcode.NegFixedNumLow || (c >= msgpcode.Int8 && c <= msgpcode.Int64) {
		n, err := d.DecodeInt64()
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return 0, fmt.Errorf("msgpack: negative number %d for an unsigned field", n)
		}
		return uint64(n), nil
	}
	return d.DecodeUint64()
}

func readTime(d *msgpack.Decoder) (time.Time, error) {
	c, err := d.PeekCode()
	if err != nil {
		return time.Time{}, err
	}
	switch c {
	case msgpcode.Nil:
		return time.Time{}, d.DecodeNil()
	case msgpcode.FixExt4, msgpcode.FixExt8, msgpcode.Ext8:
		t, err := d.DecodeTime()
		return t.UTC(), err
	}
	// The protocol's times are the timestamp extension; the library would
	// also read strings and numbers.
	return time.Time{}, fmt.Errorf("msgpack: a time must be the timestamp extension, not code 0x%02x", c)
}

func readTimePtr(d *msgpack.Decoder) (*time.Time, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if c == msgpcode.Nil {
		return nil, d.DecodeNil()
	}
	t, err := readTime(d)
	return &t, err
}

func readStrings(d *msgpack.Decoder) ([]string, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = d.DecodeString(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readList[T any, P interface {
	*T
	msgpack.CustomDecoder
}](d *msgpack.Decoder) ([]T, error) {
	n, err := d.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]T, n)
	for i := range out {
		if err := P(&out[i]).DecodeMsgpack(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// isNil consumes a nil and reports it, for pointer fields.
func isNil(d *msgpack.Decoder) (bool, error) {
	c, err := d.PeekCode()
	if err != nil {
		return false, err
	}
	if c == msgpcode.Nil {
		return true, d.DecodeNil()
	}
	return false, nil
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
func (w *Warning) DecodeMsgpack(d *msgpack.Decoder) error {
	*w = Warning{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "id":
			w.ID, err = d.DecodeString()
		case "external_id":
			w.ExternalID, err = d.DecodeString()
		case "name":
			w.Name, err = d.DecodeString()
		case "phone":
			w.Phone, err = d.DecodeString()
		case "id_tail":
			w.IDTail, err = d.DecodeString()
		case "address":
			w.Address, err = d.DecodeString()
		case "unit":
			w.Unit, err = d.DecodeString()
		case "fraud_type":
			w.FraudType, err = d.DecodeString()
		case "risk":
			w.Risk, err = d.DecodeString()
		case "warned_at":
			w.WarnedAt, err = readTime(d)
		case "received_at":
			w.ReceivedAt, err = readTime(d)
		case "deadline":
			w.Deadline, err = readTime(d)
		case "dispatched_at":
			w.DispatchedAt, err = readTimePtr(d)
		case "assigned_at":
			w.AssignedAt, err = readTimePtr(d)
		case "status":
			w.Status, err = d.DecodeString()
		case "assignee":
			w.Assignee, err = d.DecodeString()
		case "outcome":
			w.Outcome, err = d.DecodeString()
		case "escalated":
			w.Escalated, err = d.DecodeBool()
		case "first_contact_at":
			w.FirstContactAt, err = readTimePtr(d)
		case "resolved_at":
			w.ResolvedAt, err = readTimePtr(d)
		case "closed_at":
			w.ClosedAt, err = readTimePtr(d)
		case "archived_at":
			w.ArchivedAt, err = readTimePtr(d)
		case "redacted_at":
			w.RedactedAt, err = readTimePtr(d)
		case "attempts":
			w.Attempts, err = readList[Attempt](d)
		case "reviews":
			w.Reviews, err = readList[Review](d)
		case "flags":
			w.Flags, err = readList[Flag](d)
		case "escalations":
			w.Escalations, err = readList[Escalation](d)
		case "past_assignees":
			w.PastAssignees, err = readStrings(d)
		case "missing_photos":
			w.MissingPhotos, err = readStrings(d)
		case "version":
			w.Version, err = readUint(d)
		case "summary":
			w.Summary, err = d.DecodeBool()
		default:
			err = d.Skip()
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
func (a *Attempt) DecodeMsgpack(d *msgpack.Decoder) error {
	*a = Attempt{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "id":
			a.ID, err = d.DecodeString()
		case "by":
			a.By, err = d.DecodeString()
		case "device_id":
			a.DeviceID, err = d.DecodeString()
		case "method":
			a.Method, err = d.DecodeString()
		case "reached":
			a.Reached, err = d.DecodeBool()
		case "outcome":
			a.Outcome, err = d.DecodeString()
		case "loss_fen":
			a.LossFen, err = d.DecodeInt64()
		case "notes":
			a.Notes, err = d.DecodeString()
		case "at":
			a.At, err = readTime(d)
		case "received_at":
			a.ReceivedAt, err = readTime(d)
		case "location":
			a.Location, err = readLocation(d)
		case "photos":
			a.Photos, err = readStrings(d)
		case "version":
			a.Version, err = readUint(d)
		default:
			err = d.Skip()
		}
		return err
	})
}

func readLocation(d *msgpack.Decoder) (*Location, error) {
	if null, err := isNil(d); null || err != nil {
		return nil, err
	}
	l := &Location{}
	return l, l.DecodeMsgpack(d)
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
func (l *Location) DecodeMsgpack(d *msgpack.Decoder) error {
	*l = Location{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "lat":
			l.Lat, err = d.DecodeFloat64()
		case "lng":
			l.Lng, err = d.DecodeFloat64()
		case "accuracy":
			l.Accuracy, err = d.DecodeFloat64()
		default:
			err = d.Skip()
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
func (r *Review) DecodeMsgpack(d *msgpack.Decoder) error {
	*r = Review{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "by":
			r.By, err = d.DecodeString()
		case "decision":
			r.Decision, err = d.DecodeString()
		case "comment":
			r.Comment, err = d.DecodeString()
		case "at":
			r.At, err = readTime(d)
		case "by_name":
			r.ByName, err = d.DecodeString()
		default:
			err = d.Skip()
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
func (x *Escalation) DecodeMsgpack(d *msgpack.Decoder) error {
	*x = Escalation{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "by":
			x.By, err = d.DecodeString()
		case "by_name":
			x.ByName, err = d.DecodeString()
		case "reason":
			x.Reason, err = d.DecodeString()
		case "at":
			x.At, err = readTime(d)
		case "op_id":
			x.OpID, err = d.DecodeString()
		case "answer":
			x.Answer, err = d.DecodeString()
		case "answered_by":
			x.AnsweredBy, err = d.DecodeString()
		case "answered_by_name":
			x.AnsweredByName, err = d.DecodeString()
		case "answered_at":
			x.AnsweredAt, err = readTimePtr(d)
		default:
			err = d.Skip()
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
func (f *Flag) DecodeMsgpack(d *msgpack.Decoder) error {
	*f = Flag{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "code":
			f.Code, err = d.DecodeString()
		case "op_id":
			f.OpID, err = d.DecodeString()
		case "detail":
			f.Detail, err = d.DecodeString()
		case "resolved":
			f.Resolved, err = d.DecodeBool()
		default:
			err = d.Skip()
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
func (op *Op) DecodeMsgpack(d *msgpack.Decoder) error {
	*op = Op{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "id":
			op.ID, err = d.DecodeString()
		case "client_seq":
			op.ClientSeq, err = readUint(d)
		case "type":
			op.Type, err = d.DecodeString()
		case "warning_id":
			op.WarningID, err = d.DecodeString()
		case "base_version":
			op.BaseVersion, err = readUint(d)
		case "at":
			op.At, err = readTime(d)
		case "body":
			err = op.Body.DecodeMsgpack(d)
		default:
			err = d.Skip()
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
func (b *OpBody) DecodeMsgpack(d *msgpack.Decoder) error {
	*b = OpBody{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "unit":
			b.Unit, err = d.DecodeString()
		case "assignee":
			b.Assignee, err = d.DecodeString()
		case "id":
			b.AttemptID, err = d.DecodeString()
		case "method":
			b.Method, err = d.DecodeString()
		case "reached":
			var null bool
			if null, err = isNil(d); !null && err == nil {
				var v bool
				v, err = d.DecodeBool()
				b.Reached = &v
			}
		case "outcome":
			b.Outcome, err = d.DecodeString()
		case "loss_fen":
			b.LossFen, err = d.DecodeInt64()
		case "notes":
			b.Notes, err = d.DecodeString()
		case "location":
			b.Location, err = readLocation(d)
		case "photos":
			b.Photos, err = readStrings(d)
		case "reason":
			b.Reason, err = d.DecodeString()
		case "decision":
			b.Decision, err = d.DecodeString()
		case "comment":
			b.Comment, err = d.DecodeString()
		case "answer":
			b.Answer, err = d.DecodeString()
		default:
			err = d.Skip()
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
func (r *Result) DecodeMsgpack(d *msgpack.Decoder) error {
	*r = Result{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "op_id":
			r.OpID, err = d.DecodeString()
		case "client_seq":
			r.ClientSeq, err = readUint(d)
		case "status":
			r.Status, err = d.DecodeString()
		case "code":
			r.Code, err = d.DecodeString()
		case "message":
			r.Message, err = d.DecodeString()
		case "version":
			r.Version, err = readUint(d)
		case "flags":
			r.Flags, err = readList[Flag](d)
		default:
			err = d.Skip()
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
func (it *WarningItem) DecodeMsgpack(d *msgpack.Decoder) error {
	*it = WarningItem{}
	return readMap(d, func(k string) (err error) {
		switch k {
		case "id":
			it.ID, err = d.DecodeString()
		case "external_id":
			it.ExternalID, err = d.DecodeString()
		case "name":
			it.Name, err = d.DecodeString()
		case "phone":
			it.Phone, err = d.DecodeString()
		case "address":
			it.Address, err = d.DecodeString()
		case "unit":
			it.Unit, err = d.DecodeString()
		case "fraud_type":
			it.FraudType, err = d.DecodeString()
		case "risk":
			it.Risk, err = d.DecodeString()
		case "status":
			it.Status, err = d.DecodeString()
		case "assignee":
			it.Assignee, err = d.DecodeString()
		case "outcome":
			it.Outcome, err = d.DecodeString()
		case "escalated":
			it.Escalated, err = d.DecodeBool()
		case "open_flags":
			it.OpenFlags, err = d.DecodeInt()
		case "overdue":
			it.Overdue, err = d.DecodeBool()
		case "warned_at":
			it.WarnedAt, err = readTime(d)
		case "received_at":
			it.ReceivedAt, err = readTime(d)
		case "deadline":
			it.Deadline, err = readTime(d)
		case "version":
			it.Version, err = readUint(d)
		default:
			err = d.Skip()
		}
		return err
	})
}
