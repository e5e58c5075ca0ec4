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

// DecodeMsgpack decodes a push, refusing more than MaxPushOps ops.
func (r *PushRequest) DecodeMsgpack(dec *msgpack.Decoder) error {
	*r = PushRequest{}
	return decodeMsgpackMap(dec, func(key string) error {
		switch key {
		case "device_id":
			return dec.Decode(&r.DeviceID)
		case "ops":
			return decodeMsgpackList(dec, "ops", MaxPushOps, &r.Ops)
		}
		return dec.Skip()
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
