package syncproto

import (
	"encoding/json"
	"errors"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxFeedRows is the most warnings one feed import may carry.
const MaxFeedRows = 100_000

// Push and feed bodies are lists. Their decoders read the list's length
// first and refuse one over the limit before allocating it: a megabyte of
// empty ops would otherwise cost hundreds of megabytes of Op structs.

// UnmarshalJSON decodes a push, refusing more than MaxPushOps ops.
func (r *PushRequest) UnmarshalJSON(b []byte) error {
	var raw struct {
		DeviceID string          `json:"device_id"`
		Ops      json.RawMessage `json:"ops"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = PushRequest{DeviceID: raw.DeviceID}
	return unmarshalJSONList(raw.Ops, "ops", MaxPushOps, &r.Ops)
}

// UnmarshalJSON decodes a pull, refusing more than MaxPullLimit have
// entries before it decodes them.
func (p *PullRequest) UnmarshalJSON(b []byte) error {
	var raw struct {
		Have json.RawMessage `json:"have"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw.Have) > 0 && string(raw.Have) != "null" && jsonArrayLen(raw.Have) > MaxPullLimit {
		return tooMany("have", MaxPullLimit)
	}
	type plain PullRequest
	*p = PullRequest{}
	return json.Unmarshal(b, (*plain)(p))
}

// DecodeMsgpack decodes a push, refusing more than MaxPushOps ops.
func (r *PushRequest) DecodeMsgpack(dec *msgpack.Decoder) error {
	return r.decodeFields(libReader{dec})
}

// decodeFields reads a push's fields, in any key order.
func (r *PushRequest) decodeFields(mr msgReader) error {
	*r = PushRequest{}
	return readMap(mr, func(key string) (err error) {
		switch key {
		case "device_id":
			r.DeviceID, err = mr.str()
		case "ops":
			r.Ops, err = readListMax[Op](mr, "ops", MaxPushOps)
		default:
			err = mr.skip()
		}
		return err
	})
}

// UnmarshalJSON decodes a feed, refusing more than MaxFeedRows rows.
func (r *FeedRequest) UnmarshalJSON(b []byte) error {
	var raw struct {
		Warnings json.RawMessage `json:"warnings"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = FeedRequest{}
	return unmarshalJSONList(raw.Warnings, "warnings", MaxFeedRows, &r.Warnings)
}

// DecodeMsgpack decodes a feed, refusing more than MaxFeedRows rows.
func (r *FeedRequest) DecodeMsgpack(dec *msgpack.Decoder) error {
	*r = FeedRequest{}
	return decodeMsgpackMap(dec, func(key string) error {
		if key == "warnings" {
			return decodeMsgpackList(dec, "warnings", MaxFeedRows, &r.Warnings)
		}
		return dec.Skip()
	})
}

func tooMany(field string, max int) *Error {
	return Errorf(CodePayloadTooLarge, "%s holds more than %d items; split it", field, max).With("field", field)
}

func unmarshalJSONList[T any](raw json.RawMessage, field string, max int, list *[]T) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if jsonArrayLen(raw) > max {
		return tooMany(field, max)
	}
	err := json.Unmarshal(raw, list)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		// Name the field from the body's top: "ops.client_seq".
		typeErr.Field = joinField(field, typeErr.Field)
	}
	return err
}

func joinField(parent, field string) string {
	if field == "" {
		return parent
	}
	return parent + "." + field
}

// jsonArrayLen counts the items of a JSON array without decoding them; for
// anything but an array it returns 0 and leaves the error to the decoder.
func jsonArrayLen(b []byte) int {
	commas, items := 0, false
	scanJSON(b, func(c byte, depth int) bool {
		switch {
		case depth == 1 && c == ',':
			commas++
		case depth >= 1 && c != ' ' && c != '\t' && c != '\r' && c != '\n' && !(depth == 1 && c == '['):
			// Anything inside the array but its own bracket and spaces.
			items = true
		}
		return true
	})
	if !items {
		return 0
	}
	return commas + 1
}

func decodeMsgpackMap(dec *msgpack.Decoder, field func(key string) error) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		key, err := dec.DecodeString()
		if err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
	return nil
}

func decodeMsgpackList[T any](dec *msgpack.Decoder, field string, max int, list *[]T) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n > max {
		return tooMany(field, max)
	}
	if n < 0 {
		*list = nil
		return nil
	}
	*list = make([]T, n)
	for i := range *list {
		if err := dec.Decode(&(*list)[i]); err != nil {
			return err
		}
	}
	return nil
}

// WarningLimits bound how far ops can make one warning grow. Every pull of
// its scope carries a warning whole, to every lead above it, so a warning
// swollen by a careless or hostile phone costs every device of the county
// and the city on each sync. An op past a limit is rejected with
// CodeWarningFull (PROTOCOL.md section 6).
type WarningLimits struct {
	// MaxAttempts is the most attempts a warning holds; 0 sets no limit.
	MaxAttempts int
	// MaxBytes is the most bytes its MessagePack encoding (as a full
	// pull carries it) may take after an attempt or an escalation; 0
	// sets no limit. A lead's dispatch, assignment or review may go
	// LeadRoom further, so a warning cadres filled can still be moved,
	// returned or closed.
	MaxBytes int
}

// DefaultWarningLimits are the server's limits unless configured: far
// above real work (a warning takes about 1 KB and a handful of attempts;
// 200 attempts with notes of 200 characters take about 200 KB), far below
// what a flood of attempts made (6.9 MB).
var DefaultWarningLimits = WarningLimits{MaxAttempts: 200, MaxBytes: 256 << 10}

// LeadRoom is how far past MaxBytes the ops of leads may take a warning:
// a quarter of MaxBytes, ten reviews with the longest comments.
func (l WarningLimits) LeadRoom() int { return l.MaxBytes / 4 }

// roomForAttempt refuses an attempt on a warning that holds MaxAttempts.
func (l WarningLimits) roomForAttempt(w *Warning) *Error {
	if l.MaxAttempts > 0 && len(w.Attempts) >= l.MaxAttempts {
		return Errorf(CodeWarningFull, "this warning already holds %d attempts, the most one may hold; "+
			"the attempt was not added: ask your township lead to review the warning", len(w.Attempts))
	}
	return nil
}

// checkSize refuses the state an op made when it encodes larger than the
// op's type may make it.
func (l WarningLimits) checkSize(opType string, after *Warning) *Error {
	if l.MaxBytes <= 0 {
		return nil
	}
	limit := l.MaxBytes
	if opType == OpDispatched || opType == OpAssigned || opType == OpReviewed || opType == OpAnswered {
		limit += l.LeadRoom()
	}
	n, err := MsgpackSize(after)
	if err != nil {
		return Errorf(CodeInvalidRequest, "the warning cannot be encoded: %v", err)
	}
	if n <= limit {
		return nil
	}
	if opType == OpRecorded {
		return Errorf(CodeWarningFull, "this attempt would make the warning %d bytes, more than the %d one may take; "+
			"the attempt was not added: shorten its notes, or ask your township lead to review the warning", n, limit)
	}
	return Errorf(CodeWarningFull, "this %s would make the warning %d bytes, more than the %d one may take; it was not applied", opType, n, limit)
}
